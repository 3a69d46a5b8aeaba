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
    "testpassword",  # a chart's CI values (prometheus-postgres-exporter/ci/*-values.yaml)
    "AKIXXXXXX",  # masked
    "1234",  # the dummy of every example: --set loki.password=1234 (grafana/helm-charts)
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


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("deploy.sh", "helm install app ./chart \\\n  --set auth.password=Zq8vR2mLp5Tx \\\n  --wait\n"),
        (
            "workflow.yaml",
            "jobs:\n  deploy:\n    steps:\n      - run: |\n          kubectl create secret generic db \\\n"
            "            --from-literal=password=Zq8vR2mLp5Tx\n",
        ),
    ],
)
def test_a_flag_on_a_shell_continuation_line_is_live_not_a_comment(name: str, text: str):
    """``  --set auth.password=x`` continues a command; only SQL's ``-- `` (a dash pair and a space)
    starts a comment."""
    found = [p for p in scan(name, text).problems if p.rule == "plaintext-secret"]
    assert [p.severity for p in found] == ["error"], found
    assert [p.severity for p in scan("q.sql", "-- password: Xk9mPq2vL7wRtZ\n").problems] == ["warning"]


JS_IN_CONFIGMAP = (
    "apiVersion: v1\nkind: ConfigMap\ndata:\n  run.js: |\n"
    "    const body = JSON.parse(response);\n    const token = body.token.value\n"
    '    const data = JSON.stringify({\n      "data": {\n        "token": base64Token,\n      }\n    })\n'
)


def test_code_naming_where_a_credential_is_is_no_secret():
    """elastic/helm-charts (checked by hand): JavaScript in a ConfigMap reads the token from a
    response (``body.token.value``) and writes a variable into an object (``"token": base64Token,``);
    a shell script passes the *file* that holds a credential (``GOOGLE_CREDENTIALS='credentials.json'``).
    The same shapes holding a credential still are one."""
    assert secrets_of("templates/configmap-helm-scripts.yaml", JS_IN_CONFIGMAP) == []
    strong = JS_IN_CONFIGMAP.replace("base64Token,", "Xk9vT2mQ8rLw,")
    assert [p.line for p in secrets_of("templates/configmap-helm-scripts.yaml", strong)] == [9]
    script = "docker run \\\n  --env GOOGLE_CREDENTIALS='credentials.json' \\\n  image\n"
    assert secrets_of("helpers/in-docker.sh", script) == []
    leaked = script.replace("credentials.json", "Xk9vT2mQ8rLwZ3pQ")
    assert [(p.line, p.severity) for p in secrets_of("helpers/in-docker.sh", leaked)] == [(2, "error")]
    # the same shapes outside JavaScript are values (from review: each of these was missed once)
    for name, text in [
        ("run.sh", "export DB_PASSWORD=Purple.Monkey.Dishwasher\n"),
        ("Makefile", "DB_PASSWORD=Tiger.Lemon.Rocket\n"),
        ("settings.gradle", "password = Tiger.Lemon.Rocket\n"),
        ("notes.txt", "login with user=bob password=Tiger.Lemon.Rocket\n"),
        ("README.md", "- password: Tiger.Lemon.Rocket\n"),
        ("Jenkinsfile", "password: PurpleMonkeyDishwasher,\n"),
        ("run.sh", "DB_PASSWORD=hunter2.txt\n"),  # a file's name only when it names what it holds
    ]:
        assert len(secrets_of(name, text)) == 1, (name, text)
    # a value in a list of key=value pairs is a value, whatever its words (bitnami's README examples)
    pairs = "helm install r \\\n  --set auth.username=admin,auth.password=secretpassword,auth.cookie=x \\\n  ./c\n"
    assert [p.line for p in secrets_of("README.md", f"```console\n{pairs}```\n")] == [3]


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


# -- grafana/helm-charts and netbox-community/netbox-docker, held out, then checked -------------

HELD_OUT_NOT_SECRETS = {
    # NGINX Unit routes a listener to a route or an application: "pass" is a destination
    "docker/nginx-unit.json": '{"listeners": {"0.0.0.0:8080": {"pass": "routes/main"}},\n'
    ' "routes": {"main": [{"action": {"pass": "applications/netbox"}}]}}\n',
    # get-vault-secrets: ENV=item:field names where the secret is kept
    ".github/workflows/release.yaml": "jobs:\n  r:\n    steps:\n      - uses: grafana/shared-workflows/actions/get-vault-secrets@v1\n"
    "        with:\n          repo_secrets: |\n            GPG_PRIVATE_KEY=helm-chart-signing-key:private_key\n"
    "            GPG_PASSPHRASE=helm-chart-signing-key:passphrase\n",
    # an example token typed downwards
    "README.md.gotmpl": "```yaml\nexporter:\n  apiToken: 87654321-432104321-4321-210987654321\n```\n",
    # helm-docs: the key of a Secret that holds the cluster, under Default
    "charts/pdc-agent/README.md": "| Key | Type | Default | Description |\n|-----|------|---------|-------------|\n"
    '| clusterSecretKey | string | `"cluster"` | the key in the secret |\n',
}


@pytest.mark.parametrize("name", sorted(HELD_OUT_NOT_SECRETS))
def test_held_out_tree_shapes_are_no_secrets(name: str):
    assert [p for p in scan(name, HELD_OUT_NOT_SECRETS[name]).problems if p.rule == "plaintext-secret"] == []


def test_the_same_places_with_real_values_are_still_secrets():
    table = '| Key | Type | Default | Description |\n|-----|------|---------|-------------|\n| adminPassword | string | `"Xk9mPq2vL7"` | x |\n'
    found = [p for p in scan("README.md", table).problems if p.rule == "plaintext-secret"]
    assert [p.target for p in found] == ["adminPassword"]  # named by its row, not by the Default column
    assert [p.line for p in scan("a.json", '{"pass": "Xk9mPq2vL7wR"}\n').problems] == [1]
    assert [p.line for p in scan("a.env", "GPG_PASSPHRASE=prod-db:Xk9mPq2vL7\n").problems] == [1]
    assert not is_placeholder("87654321")  # short: may be a weak real one


def test_a_value_a_template_completes_is_not_written_in_the_file():
    text = "args:\n  - -token=write-{{ $tenant.name }}\n  - --password=db-${ENV}\n"
    assert secrets_of("templates/job.yaml", text) == []
    assert [p.line for p in secrets_of("job.sh", "run --password=Xk9mPq2vL7wR\n")] == [1]


def test_a_secret_key_name_spelled_with_dashes_is_a_name():
    assert secrets_of("values.yaml", 'hostedGrafanaIdSecretKey: "hosted-grafana-id"\n') == []
    assert [p.line for p in secrets_of("values.yaml", 'awsSecretKey: "Xk9mPq2vL7wRtZ"\n')] == [1]


def test_each_line_of_a_block_of_key_value_items_is_its_own_item():
    text = "env: |\n  DB_PASSWORD=Xk9mPq2vL7wR\n  GPG_KEY_NAME=signing-key:key_name\n"
    assert [(p.line, p.target) for p in secrets_of("ci.yaml", text)] == [(1, "env (DB_PASSWORD)")]


# -- grafana/helm-charts, tempo-distributed: an S3 key pair written in a README and a config ----------

S3_PAIR = "storage:\n  trace:\n    s3:\n      access_key: tempo\n      secret_key: supersecret\n"


@pytest.mark.parametrize(
    "name, text",
    [
        ("tempo.yaml", S3_PAIR),
        ("README.md", f"Configure the storage:\n\n```yaml\n{S3_PAIR}```\n"),
        ("minio.env", "MINIO_ACCESS_KEY=minio\nMINIO_SECRET_KEY=minio-secret-2024\n"),
        ("velero.json", '{"accessKey": "velero", "secretKey": "Zp4kQ9mWx2"}\n'),
        ("values.yaml", "minio:\n  accessKey: enterprise-metrics\n  secretKey: Zp4kQ9mWx2\n"),
    ],
)
def test_an_access_key_named_by_a_word_is_the_identifier_of_its_pair(name: str, text: str):
    """An S3 access key is the user name of a key pair: with a plain name for value it is no
    finding; the pair's secret key beside it is."""
    found = [p for p in scan(name, text).problems if p.rule == "plaintext-secret"]
    assert len(found) == 1 and "secret" in (found[0].target or "").lower(), found


@pytest.mark.parametrize("value", ["AKIAZ7Q3KX4MN2PL8RWT", "Xk9mPq2vL7wR", "minio123"])
def test_an_access_key_with_a_value_unlike_a_name_is_still_reported(value: str):
    found = [p for p in scan("s3.yaml", f"s3:\n  access_key: {value}\n").problems if p.rule == "plaintext-secret"]
    assert [p.line for p in found] == [2]
    found = [p for p in scan("s3.yaml", "s3:\n  secret_access_key: tempo\n").problems if p.rule == "plaintext-secret"]
    assert [p.line for p in found] == [2]  # the secret of the pair, however plain


# -- prometheus-community/helm-charts, netbox-docker, opentelemetry-demo: noise in a drawn sample ----


def test_a_lowercase_word_on_a_commented_out_line_is_an_example():
    """kube-prometheus-stack: ``# adminPassword: strongpassword`` documents the key with an example;
    a value with more than lowercase letters on such a line stays a warning."""
    assert secrets_of("values.yaml", "grafana:\n  adminUser: admin\n  # adminPassword: strongpassword\n") == []
    # prometheus-mysql-exporter: a commented-out list of example endpoints, numbered
    assert secrets_of("values.yaml", "mysql:\n  # - user: user1\n  #   password: password1\n") == []
    # Haxxnet's watchtower: a commented-out variable whose default is a word
    text = "services:\n  w:\n    environment:\n      #- EMAIL_SERVER_PASSWORD=${SMTP_PASS:-smtppass}\n"
    assert secrets_of("docker-compose.yml", text) == []
    found = secrets_of("docker-compose.yml", text.replace("smtppass", "Xk9mPq2vL7wRtZ"))
    assert [(p.line, p.severity) for p in found] == [(4, "warning")]
    found = secrets_of("values.yaml", "grafana:\n  # adminPassword: strongpassword!7\n")
    assert [(p.line, p.severity) for p in found] == [(2, "warning")]
    assert [p.line for p in secrets_of("values.yaml", "grafana:\n  adminPassword: strongpassword\n")] == [2]


def test_a_value_that_code_calls_for_is_not_written_in_the_file():
    """netbox-docker's entrypoint: ``old_default_token = Token.objects.get(key="...")`` looks a
    token up; the assignment holds a call, not a credential."""
    text = 'python <<EOF\nold_default_token = Token.objects.get(key="0123456789abcdef0123456789abcdef01234567")\nEOF\n'
    assert secrets_of("docker-entrypoint.sh", text) == []
    assert [p.line for p in secrets_of("run.sh", "api_token=Xk9mPq2vL7wRtZ\n")] == [1]


@pytest.mark.parametrize("value", ["phc_6AT2D3sP5u4fkUZtSqgtmoKmcx8rEX8f86lpISOpAhx", "pk_live_51HxQ2eKZp9vL3mWq8RtY"])
def test_a_key_its_service_publishes_is_no_secret(value: str):
    """A PostHog project key and a Stripe publishable key are written into web pages by design."""
    assert secrets_of("cassette.yaml", f'body: \'{{"api_key": "{value}", "batch": []}}\'\n') == []
    assert secrets_of("app.env", f"POSTHOG_API_KEY={value}\n") == []
    found = secrets_of("app.env", "STRIPE_KEY=sk_live_51HxQ2eKZp9vL3mWq8RtY\n")  # the secret key beside it
    assert [p.line for p in found] == [1]


def test_a_credential_given_by_its_context_on_a_commented_out_line_follows_the_same_rule():
    """Haxxnet's crowdsec example documents a command in a comment: ``# cscli machines add x
    --password secretpassphrase``. A word is an example; a strong value is a warning; a flag at the
    start of a live line (``--requirepass``) is no comment."""
    text = "services:\n  a:\n    image: x\n  #  # docker exec -it c cscli machines add b --password secretpassphrase\n"
    assert secrets_of("docker-compose.yml", text) == []
    found = secrets_of("docker-compose.yml", text.replace("secretpassphrase", "Xk9mPq2vL7wRtZ"))
    assert [(p.line, p.severity) for p in found] == [(4, "warning")]
    found = secrets_of("redis.sh", "redis-server \\\n--requirepass Xk9mPq2vL7\n")
    assert [(p.line, p.severity) for p in found] == [(2, "error")]


# -- kubernetes/examples, drawn with a second seed ------------------------------------------------


def test_an_access_key_in_a_kubernetes_env_list_is_named_by_its_variable():
    """``- name: MINIO_ACCESS_KEY / value: "minio"``: the user of the key pair, as in a .env file;
    the secret key beside it is reported."""
    text = (
        'spec:\n  containers:\n  - env:\n    - name: MINIO_ACCESS_KEY\n      value: "minio"\n'
        '    - name: MINIO_SECRET_KEY\n      value: "minio123"\n'
    )
    assert [(p.line, p.target) for p in secrets_of("minio.yaml", text)] == [
        (7, "spec.containers[0].env[1].value (MINIO_SECRET_KEY)")
    ]


def test_a_kubernetes_secret_value_a_template_fills_in_is_not_binary_secret_material():
    """``data: {config: {{config_data}}}`` is filled in by a template before it is applied; a value
    that is not base64 text otherwise stays secret material (a keystore)."""
    head = "apiVersion: v1\nkind: Secret\nmetadata:\n  name: c\ntype: Opaque\ndata:\n"
    assert secrets_of("newrelic-config-template.yaml", head + "  config: {{config_data}}\n") == []
    assert [p.line for p in secrets_of("keystore.yaml", head + "  keystore.jks: /u3+7QAAAAIAAAAB\n")] == [7]


def test_a_flag_written_with_an_equals_sign_is_named_by_the_flag_alone():
    """kubernetes/examples: ``kubectl --token=foo/system:masters create ...`` is found under
    ``token``, not under ``token=foo/system:masters`` (the name a finding shows and the variable it
    suggests)."""
    found = secrets_of(
        "README.md", "```\n$ kubectl --server=https://127.0.0.1:6443 --token=Xk9mPq2vL7wR create -f p.yaml\n```\n"
    )
    assert [(p.line, p.target) for p in found] == [(2, "token")]
    assert "${TOKEN}" in found[0].message
    found = secrets_of(
        "run.sh", "mysqladmin --password=Xk9mPq2vL7wR ping\nexec redis-server --requirepass Zp4kQ9mWx2Lt\n"
    )
    assert sorted(p.target for p in found) == ["password", "requirepass"]
