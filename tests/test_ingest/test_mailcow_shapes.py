"""Shapes met on mailcow/mailcow-dockerized (held out, then checked, issue 24): UI message
catalogues, a package manager's vendor folder, OpenAPI examples, class names, column types,
dovecot's brace blocks between ``key = value`` lines."""

from __future__ import annotations

from pathlib import PurePosixPath

from kb.ingest.secrets import is_message_catalogue
from tests.test_ingest.test_secrets_real_tree_shapes import scan_code, secrets_of


def test_message_catalogues_are_known_by_folder_or_language_code():
    for path in ("data/web/lang/lang.ro-ro.json", "locales/de.yml", "src/messages_fr.properties", "en-US.json"):
        assert is_message_catalogue(path), path
    for path in ("config/db.json", "config/id.yaml", "ca.json", "values.yaml", "lang/README.md"):
        assert not is_message_catalogue(path), path


def test_in_a_message_catalogue_key_names_say_nothing_but_formats_still_count():
    from kb.ingest.parsers.base import Limits, parse_text
    from kb.ingest.secrets import redact

    text = (
        '{"add": {"app_password": "Adaug\\u0103 parol\\u0103 aplica\\u021bie"},\n'
        ' "admin": {"api_key": "API anahtar\\u0131", "aws": "AKIAIOSFODNN7EXAMPLF"}}\n'
    )
    name = "data/web/lang/lang.ro-ro.json"
    parsed = redact(
        parse_text("json", text, PurePosixPath(name), Limits()),
        text,
        structured=True,
        messages=is_message_catalogue(name),
    )
    found = [p for p in parsed.problems if p.rule == "plaintext-secret"]
    assert [p.message.split(" is stored")[0] for p in found] == ["an AWS access key id"]


def test_examples_class_names_column_types_and_algorithms_are_no_secrets():
    openapi = (
        "paths:\n  /api/v1/add/mailbox:\n    post:\n      requestBody:\n        content:\n"
        "          application/json:\n            schema:\n              example:\n"
        "                password: Xk9vT2mQ8rLw\n"
    )
    assert secrets_of("openapi.yaml", openapi) == []
    php = "<?php\n$map = array(\n  'refresh_token' => 'OAuth2\\Storage\\RefreshTokenInterface',\n  \"client_secret\" => \"VARCHAR(80)\",\n);\n"
    assert secrets_of("Server.php", php) == []
    assert secrets_of("dovecot.conf", "auth_verbose_passwords = sha1:6\n") == []
    assert len(secrets_of("dovecot.conf", "mail_crypt_private_password = Xk9vT2mQ8rLw\n")) == 1


def test_dovecot_blocks_are_nested_sections_and_repeated_blocks_no_duplicates():
    from kb.ingest.parsers.base import Limits, parse_text

    text = (
        "auth_mechanisms = plain login\nservice imap-login {\n  inet_listener imap {\n    port = 143\n  }\n}\n"
        "passdb {\n  driver = passwd-file\n}\npassdb {\n  driver = lua\n}\n"
    )
    parsed = parse_text("ini", text, PurePosixPath("dovecot.conf"), Limits())
    assert parsed.problems == []
    assert [(r.key_path, r.value, r.line) for r in parsed.records] == [
        ("auth_mechanisms", "plain login", 1),
        ('service["imap-login"].inet_listener["imap"].port', "143", 4),
        ("passdb.driver", "passwd-file", 8),
        ("passdb[1].driver", "lua", 11),
    ]


def test_a_package_managers_vendor_folder_is_not_walked(tmp_path):
    from kb.ingest.walk import walk_tree
    from tests.conftest import write_tree

    root = write_tree(
        tmp_path / "t",
        {
            "web/inc/lib/vendor/autoload.php": "<?php\n",
            "web/inc/lib/vendor/acme/oauth/config.json": '{"client_secret": "TestSecret2"}\n',
            "web/config.json": '{"a": 1}\n',
            "vendor/own-config.yaml": "a: 1\n",  # a folder named vendor that no package manager filled
        },
    )
    walked = sorted(e.rel for e in walk_tree(root).entries)
    assert walked == ["vendor/own-config.yaml", "web/config.json"]


def test_addresses_quoted_tool_names_certificates_and_file_includes_are_no_secrets():
    assert secrets_of("expand6.sh", 'empty_addr="0000:0000:0000:0000:0000:0000:0000:0000"\n') == []
    assert secrets_of("generate_config.sh", "IPV6_NETWORK=fd4d:6169:6c63:6f77::/64\n") == []
    find = "SEL=$(find \"$DIR\" -maxdepth 1 \\( -name '*.gz' -o -name 'mysql' \\) -printf '%f\\n')\n"
    assert secrets_of("backup.sh", find) == []
    assert len(secrets_of("backup.sh", "mysql -u root -pRootPw7x mailcow < dump.sql\n")) == 1
    # the base64 of a certificate bundle can look like a token (EAAA...): a certificate is public
    cert = "-----BEGIN CERTIFICATE-----\nMIIG7DCCBNSgAwIBAgITMwAAAvDzBPe74D5/EAAAAAAC8DANBgkqhkiG9w0BAQsF\n-----END CERTIFICATE-----\n"
    assert secrets_of("rootCertificates/bundle.pem", cert) == []
    assert secrets_of("dovecot.conf", "mail_crypt_global_private_key = </mail_crypt/ecprivkey.pem\n") == []
    assert (
        secrets_of("docker-compose.yml", "services:\n  a:\n    environment:\n      - API_KEY=${API_KEY:-invalid}\n")
        == []
    )
    assert secrets_of("swagger-ui.js", 'fetch(u,{credentials:"same-origin",grant_type:"client_credentials"})\n') == []
    twig = "var confirm_password = document.getElementsByName('confirm_password')[1].value;\n"
    assert scan_code("templates/base.twig", twig) == []  # a web template is program source


def test_a_conf_key_repeated_on_consecutive_lines_is_a_list_but_in_setup_cfg_a_duplicate():
    from kb.ingest.parsers.base import Limits, parse_text

    unbound = "server:\naccess-control: 10.0.0.0/8 allow\naccess-control: fc00::/7 allow\n"
    parsed = parse_text("ini", unbound, PurePosixPath("unbound.conf"), Limits())
    assert parsed.problems == []
    assert [(r.key_path, r.value) for r in parsed.records][-2:] == [
        ("access-control", "10.0.0.0/8 allow"),
        ("access-control[1]", "fc00::/7 allow"),
    ]
    cfg = "[tool:pytest]\naddopts = -ra\naddopts = -q\n"
    parsed = parse_text("ini", cfg, PurePosixPath("setup.cfg"), Limits())
    assert [p.rule for p in parsed.problems] == ["duplicate-key"]


def test_variables_of_a_stack_whose_env_links_to_a_generated_file_are_not_undefined(tmp_path):
    """mailcow: ``.env -> mailcow.conf``, written by ``generate_config.sh`` at setup. The walk reports
    the dangling link once; the stack's variables are not each reported undefined."""
    import os

    from kb import KnowledgeBase
    from tests.conftest import write_tree

    root = write_tree(
        tmp_path / "stack",
        {
            "docker-compose.yml": "services:\n  db:\n    image: mariadb\n    environment:\n      - MYSQL_DATABASE=${DBNAME}\n"
        },
    )
    os.symlink("mailcow.conf", root / ".env")
    kb = KnowledgeBase.build(root, db=tmp_path / "kb", embed=False, workers=1)
    kb.validate(as_frame=False)
    rules = sorted(kb.findings()["rule"])
    kb.close()
    assert rules == ["symlink"]


def test_getsentry_self_hosted_shapes():
    """getsentry/self-hosted (held out, then checked): a patch to an env file is no env file, and a
    file's bad lines are one finding; ``echo "Pass: ..."`` and a sed pattern are no assignments;
    a key block of ``privatekeyprivatekey...`` is an example."""
    from kb.ingest.parsers.base import Limits, format_for, parse_text

    assert format_for(PurePosixPath("patches/external-kafka/.env.patch")) == "text"
    assert format_for(PurePosixPath(".env.production")) == "dotenv"
    bad = parse_text("dotenv", "A=1\n+# added\n+B=2 x\nnot a line\n", PurePosixPath(".env"), Limits())
    assert [(p.rule, p.line, p.message) for p in bad.problems] == [
        ("parse-error", 2, "invalid dotenv: expected KEY=value at line 2 (and 2 more lines)")
    ]
    assert secrets_of("test.sh", 'echo "Pass: no-op when SETUP_CUSTOM_CA_CERTIFICATE is unset"\n') == []
    sed = "sed -i -e 's/^system.secret-key:.*$/system.secret-key: '\"'$SECRET_KEY'\"'/' $CONF\n"
    assert secrets_of("generate-secret-key.sh", sed) == []
    example = (
        "# github-app.private-key: |\n#   -----BEGIN RSA PRIVATE KEY-----\n"
        + "#   privatekeyprivatekeyprivatekey\n" * 3
    )
    assert secrets_of("config.example.yml", example + "#   -----END RSA PRIVATE KEY-----\n") == []
    assert len(secrets_of("run.sh", "DB_PASSWORD=Xk9vT2mQ8rLw ./run\n")) == 1


def test_a_script_named_by_its_shebang_is_program_source():
    """mailcow's extension-less ``imapsync`` is Perl: its strings are not assignments. A shell
    script is not program source in this sense: ``PASS=x`` there is a literal."""
    from kb.ingest.secrets import is_source_code

    perl = "#!/usr/bin/perl\nmy $x = ( 'login_imap: user1 good oauthaccesstoken => Mail::IMAPClient' );\n"
    assert is_source_code("data/Dockerfiles/dovecot/imapsync", perl)
    assert scan_code("data/Dockerfiles/dovecot/imapsync", perl) == []
    assert is_source_code("run", "#!/usr/bin/env python3\n") and not is_source_code("run", "#!/bin/sh\n")
