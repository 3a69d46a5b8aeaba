"""Shapes met on a real tree (Haxxnet/Compose-Examples, hand-checked findings, issue 24): what a
compose example writes where a secret goes is often an instruction, a description, a link or a
path — not a secret — while a real value in the same places still is. One finding per secret, and
the variable it suggests is the one the file names."""

from __future__ import annotations

import pytest

from kb.ingest.secrets import is_placeholder
from tests.test_ingest.test_secrets_round_two import scan

NOT_SECRETS = [
    "ghp_...",  # an example cut short
    "sk-…",
    "%kernel.project_dir%/config/jwt/private.pem",  # a parameter inside a path
    "config/jwt/private.pem",  # a key file's path, not the key
    "access_token_secret",  # a description of what goes there
    "chrome_token",
    "unsecure_jwt_secret",
    "super_strong_password",
    "!changeme!",
    "change_me!",
    "pls-changeme-to-strong-pw",
    "https://dashboard.ngrok.com/get-started/your-authtoken",  # where to get a token
    "${MONGO_PASS:?Missing MONGO_PASS}",  # the error message of a required variable
    "ChooseYourOwnPasswordHere1234",  # instructions written as one identifier
    "MySecureLoginPasswordForPhotoprism",
    "ThisIsAVerySecretString",
    "My-Secure-Password5",
    "1234567890abcdefghifjkl",  # typed in order (authelia's reference config)
    "mysmtppassword",  # "my SMTP password"
    "AKIXXXXXX",  # masked
]
SECRETS = [
    "changeme123",
    "Dl2PassLong",
    "SuperDuperAdminPW",
    "Tr0ub4dor&3",
    "password1",
    "AaAa1234",
    "https://discord.com/api/webhooks/123456789012345678/AbCdEfGhIjKlMnOpQrSt",  # a webhook with its token
    "${X:-realPw9x}",  # the default is stored in clear
    "discolor-subtitle-seducing-result-ceramics",
]


@pytest.mark.parametrize("value", NOT_SECRETS)
def test_instructions_descriptions_links_and_paths_are_placeholders(value: str):
    assert is_placeholder(value)


@pytest.mark.parametrize("value", SECRETS)
def test_real_values_in_the_same_places_are_not(value: str):
    assert not is_placeholder(value)


def secrets_of(name: str, text: str) -> list:
    return [p for p in scan(name, text).problems if p.rule == "plaintext-secret"]


def test_a_compose_list_item_is_one_finding_named_by_its_variable():
    text = (
        "services:\n"
        "  app:\n"
        "    environment:\n"
        "      - POSTGRES_PASSWORD=${DB_PASSWORD:-koillection}\n"
        "      - CMD_SESSION_SECRET=discolor-subtitle-seducing-result-ceramics\n"
        "      - ADMIN_PASSWORD=Xk9vT2mQ8rLw\n"
        "      - ACCESS_TOKEN_SECRET=access_token_secret\n"
        "      - JWT_SECRET_KEY=%kernel.project_dir%/config/jwt/private.pem\n"
    )
    found = secrets_of("docker-compose.yml", text)
    assert sorted(p.line for p in found) == [4, 5, 6]  # one each; lines 7 and 8 are not secrets
    by_line = {p.line: p.message for p in found}
    assert "e.g. ${CMD_SESSION_SECRET}" in by_line[5] and "(CMD_SESSION_SECRET)" in by_line[5]
    assert "e.g. ${ADMIN_PASSWORD}" in by_line[6]
    assert "${ENVIRONMENT}" not in " ".join(by_line.values())


def test_a_required_variables_message_in_a_script_is_not_a_secret():
    text = '#!/bin/sh\n: "${MONGO_PASS:?Missing MONGO_PASS}"\nmongo -u root -p "$MONGO_PASS"\n'
    assert secrets_of("init-mongo.sh", text) == []


def test_a_comment_linking_to_where_a_token_is_made_is_not_a_secret():
    text = "# 3. Copy YourNgrokAuthToken: https://dashboard.ngrok.com/get-started/your-authtoken\nNGROK_TOKEN=\n"
    assert secrets_of(".env", text) == []


def scan_code(name: str, text: str) -> list:
    """The findings ingest makes of a file (:func:`kb.ingest.secrets.redact_file`: its format, path
    and ``#!`` line decide how it is read)."""
    from pathlib import PurePosixPath

    from kb.ingest.parsers.base import Limits, format_for, parse_text
    from kb.ingest.secrets import redact_file

    fmt = format_for(PurePosixPath(name))
    parsed = redact_file(parse_text(fmt, text, PurePosixPath(name), Limits()), text, name, fmt)
    return [p for p in parsed.problems if p.rule == "plaintext-secret"]


def test_in_source_code_only_a_string_literal_is_a_credential():
    """docker/awesome-compose's app sources: expressions that read a password are not one."""
    assert scan_code("backend/hello.py", "conn = connect(\n    password=pf.read(),\n)\n") == []
    assert scan_code("backend/Program.cs", 'string password = File.ReadAllText("/run/secrets/db-password");\n') == []
    assert scan_code("lib/jquery.js", "token = tokens[i];\nvar autoToken = /\\s?auto?\\s?/i\n") == []
    assert scan_code("src/postgres.rs", "cfg.password = Some(password);\n") == []
    found = scan_code("settings.py", 'DB_PASSWORD = "Xk9vT2mQ8rLw"\n')
    assert [p.line for p in found] == [1]
    # the same lines in a configuration file are still read as assignments
    assert [p.line for p in secrets_of("app.conf", "password = Xk9vT2mQ8rLw\n")] == [1]


def test_a_secret_is_reported_where_a_key_names_it_as_what_the_key_says():
    text = "services:\n  app:\n    environment:\n      DATABASE_URL: mysql://root:whalehello@db:3306/mysql\n  db:\n    environment:\n      MYSQL_ROOT_PASSWORD: whalehello\n"
    (found,) = secrets_of("compose.yml", text)
    assert found.line == 7 and found.message.startswith("a credential is stored in plain text under")


def test_a_credential_format_with_letters_in_order_is_still_found():
    """Typed-in-order values are examples under a key name, but a format's own match is evidence."""
    text = "alerts:\n  url: https://hooks.slack.com/services/T0ABCDEFG/B0HIJKLMN/abcdEFGHijklMNOPqrstUVWX\n"
    assert len(secrets_of("alerts.yaml", text)) == 1


def test_a_key_block_whose_body_is_an_instruction_is_not_a_key():
    """authelia's reference configuration: ``<PRIVATE-KEY-DATA-COMES-HERE>`` between the markers."""
    example = "#        key: |\n#          -----BEGIN PRIVATE KEY-----\n#          <PRIVATE-KEY-DATA-COMES-HERE>\n#          -----END PRIVATE KEY-----\n"
    assert secrets_of("configuration.yml", example) == []
    real = "key: |\n  -----BEGIN RSA PRIVATE KEY-----\n  MIIEowIBAAKCAQEA7xQ2\n  -----END RSA PRIVATE KEY-----\n"
    assert len(secrets_of("configuration.yml", real)) == 1


def test_kubernetes_examples_shapes():
    """kubernetes/examples (a tree held out, then checked): a Secret's data under dotted keys is
    decoded like any other (``cGFzc3dvcmQ=`` is "password", a placeholder; ``ZGVtbw==`` is "demo");
    a flag followed by the next flag has no value; ``kubectl describe``'s "8 bytes" is not one."""
    secret = (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: chap-secret\ndata:\n"
        "  discovery.sendtargets.auth.password: ZGVtbw==\n  node.session.auth.password: cGFzc3dvcmQ=\n"
    )
    found = secrets_of("chap-secret.yaml", secret)
    assert [(p.line, p.message.split(" is stored")[0]) for p in found] == [(6, "a Kubernetes Secret value")]
    build = "adduser --disabled-password --no-create-home --gecos '' --disabled-login cassandra\n"
    assert secrets_of("build.sh", build) == []
    assert secrets_of("README.md", "```\nData\n====\napiPassword:\t8 bytes\n```\n") == []
    assert len(secrets_of("run.sh", "redis-server --requirepass Xk9vT2mQ8rLw\n")) == 1


def test_opentelemetry_demo_shapes():
    """open-telemetry/opentelemetry-demo (a tree held out, first look 2026-12-06): a vendor prefix
    on a placeholder word (``sk-dummy``) and the name a storage key has (``sessionKey =
    'session'``) are not credentials; a real value in the same places still is."""
    assert is_placeholder("sk-dummy") and is_placeholder("fake-token") and is_placeholder("dummy_api_key")
    assert not is_placeholder("sk_test_51HxYzAbCdEf") and not is_placeholder("dummyPassw0rd")
    code = '        if not api_key:\n            api_key = "sk-dummy"\n'
    assert scan_code("src/agents/llm.py", code) == []
    assert scan_code("src/gateways/Session.gateway.ts", "const sessionKey = 'session';\n") == []
    assert [p.line for p in scan_code("src/gateways/Session.gateway.ts", "const sessionKey = 'Xk9vT2mQ8rLw';\n")] == [1]
    assert secrets_of("app.yaml", "cache:\n  cacheKey: cache\n") == []
    assert len(secrets_of("app.yaml", "cache:\n  encryptionKey: cacheSecret9x\n")) == 1


# -- commented-out lines (argo-helm, mailcow, opentelemetry-demo's grafana.ini: the three false
# errors of the hand-checked sample) -----------------------------------------------------------

COMMENTED_WEAK = {
    "values.yaml": "controller:\n  kubeConfig: {}\n    # secretName: kubeconfig-secret\n    # secretKey: kubeconfig\n",
    "grafana.ini": "[security]\n# default admin password\n;admin_password = admin\n",
    "app.env": "#DB_PASSWORD=postgres\n",
}


@pytest.mark.parametrize("name", sorted(COMMENTED_WEAK))
def test_a_commented_out_example_with_a_word_for_a_value_is_no_finding(name: str):
    """``# secretKey: kubeconfig`` names the key inside a Secret; ``;admin_password = admin`` writes
    a default down: commented-out examples, not credentials."""
    assert [p for p in scan(name, COMMENTED_WEAK[name]).problems if p.rule == "plaintext-secret"] == []


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("grafana.ini", "[security]\n# used for signing\n;secret_key = SW2YcwTIb9zpOOhoPsMm\n"),
        ("values.yaml", "auth:\n  # password: Xk9mPq2vL7wRt!\n  enabled: true\n"),
        ("client.php", "<?php\n$c = new Client([\n  // 'apiKey' => 'q8Zr4TbW1nYx0PaE',\n]);\n"),
    ],
)
def test_a_strong_value_on_a_commented_out_line_is_a_warning_and_still_redacted(name: str, text: str):
    parsed = scan(name, text)
    found = [p for p in parsed.problems if p.rule == "plaintext-secret"]
    assert [p.severity for p in found] == ["warning"], found
    assert "commented-out line" in found[0].message and "rotate it" in found[0].message
    value = next(v for v in ("SW2YcwTIb9zpOOhoPsMm", "Xk9mPq2vL7wRt!", "q8Zr4TbW1nYx0PaE") if v in text)
    assert value not in "".join(s.text for s in parsed.sections)  # never stored in clear


def test_a_value_also_assigned_on_a_live_line_stays_an_error():
    text = "[security]\n;secret_key = SW2YcwTIb9zpOOhoPsMm\nsecret_key = SW2YcwTIb9zpOOhoPsMm\n"
    found = [p for p in scan("grafana.ini", text).problems if p.rule == "plaintext-secret"]
    assert [p.severity for p in found] == ["error"]


def test_a_markdown_heading_is_not_a_comment():
    found = [p for p in scan("notes.md", "# password: Xk9mPq2vL7wRtZ\n").problems if p.rule == "plaintext-secret"]
    assert [p.severity for p in found] == ["error"]


@pytest.mark.parametrize("value", ["contents_of_key_or_certificate", "path-to-the-private-key", "token_for_the_api"])
def test_a_phrase_joined_into_one_identifier_is_a_placeholder(value: str):
    assert is_placeholder(value)
    assert not is_placeholder("keys2theKingdom9")
