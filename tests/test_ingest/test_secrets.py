from __future__ import annotations

import pytest

from kb.ingest.secrets import is_placeholder, redact, secret_key
from kb.types import ParsedFile, Record, Section

AWS = "AKIA" + "Q7ZP4M2XW9KD3JHT"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"


@pytest.mark.parametrize(
    "key,expected",
    [
        ("db.password", True),
        ("DB_PASSWORD", True),
        ("apiKey", True),
        ("STRIPE_API_KEY", True),
        ("client_secret", True),
        ("auth.token", True),
        ("aws_secret_access_key", True),
        ("secret", True),
        ("password_min_length", False),
        ("token_ttl", False),
        ("secret_name", False),
        ("secretRef", False),
        ("max_tokens", False),
        ("services.api.image", False),
        ('a["db.password"]', True),
        ("users[0].password", True),
        ("DB_PASS", True),
        ("root_pw", True),
        ('server.location["/"].proxy_pass', False),
        ("fastcgi_pass", False),
    ],
)
def test_secret_key_names(key: str, expected: bool):
    assert secret_key(key) is expected


@pytest.mark.parametrize(
    "value",
    [
        "changeme",
        "${DB_PASSWORD}",
        "${X:-y}",
        "<your-token>",
        "",
        "xxxxxx",
        "/run/secrets/db_password",
        "{{ .Values.password }}",
        "your-password-here",
        "#{variable}",  # Octopus Deploy
        "#{Project.Api.Key}#",
        "SendGridApiKey",  # an app-setting name (Azure Functions bindings)
        "keystore-password",  # the key inside a Kubernetes Secret
        "init-scripts-secret",  # the name of a Kubernetes Secret
        "true`",  # `auth.updatePassword=true` in Markdown
        "true`.",
        "os.environ.get('POSTGRES_PASSWORD'),",  # Django settings in a README
        "process.env.DB_PASSWORD",
        "yourpassword",
        "$6$exDY1mhS4KUYCE/2$zmn9ToZwTKLhCw.b4/b.ZRTIZM30JZ4QrOQ2aOXJ8yk96xpcCof0kxKwuX1kqLG/yg",  # a crypt hash
        # instructions found on a real compose tree (Haxxnet/Compose-Examples), once false errors
        "change-me-to-something-secure",
        "PleaseChangeMeToSecureValue",
        "REPLACE",  # `#globalSettings__hibpApiKey=REPLACE`
        "change_this_secret",
        "FIXME-LAPI-KEY",
        "SomeRandomStringOf32CharsExactly",
        "SMTPPassword",
    ],
)
def test_placeholders_are_not_secrets(value: str):
    assert is_placeholder(value)


@pytest.mark.parametrize(
    "value",
    ["changeme123", "Ch4ngeMe!", "changes-are-good-x9", "password1", "gitsyncpw", "SuperDuperAdminPW", "AaAa1234"],
)
def test_a_weak_password_is_not_an_instruction(value: str):
    assert not is_placeholder(value)


def test_redact_replaces_values_everywhere_and_reports_fingerprints():
    text = f"db:\n  password: hunter2-prod\naws: {AWS}\nurl: postgres://app:pg-s3cret-pw@db:5432/app\nph: changeme\n"
    parsed = ParsedFile(
        format="yaml",
        records=[
            Record("db.password", "hunter2-prod", 2),
            Record("aws", AWS, 3),
            Record("url", "postgres://app:pg-s3cret-pw@db:5432/app", 4),
            Record("ph", "changeme", 5),
        ],
        sections=[
            Section("db", 1, 2, "db:\n  password: hunter2-prod"),
            Section("aws", 3, 5, "\n".join(text.splitlines()[2:])),
        ],
        documents=[{"db": {"password": "hunter2-prod"}, "aws": AWS, "url": "postgres://app:pg-s3cret-pw@db:5432/app"}],
    )
    redact(parsed, text, structured=True)
    blob = repr(parsed)
    for s in ("hunter2-prod", AWS, "pg-s3cret-pw"):
        assert s not in blob
    assert "[REDACTED:plaintext-secret:" in parsed.records[0].value
    assert parsed.records[3].value == "changeme"
    problems = {p.target: p for p in parsed.problems}
    assert set(problems) == {"db.password", "aws", "url"}
    assert problems["db.password"].line == 2 and problems["db.password"].fingerprint
    assert all(p.rule == "plaintext-secret" and p.severity == "error" for p in parsed.problems)
    assert "postgres://app:[REDACTED" in parsed.documents[0]["url"]


def test_redact_free_text_and_private_key_blocks():
    key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7x\n-----END RSA PRIVATE KEY-----"
    text = f"# Setup\n\n```\nexport GITHUB_TOKEN=abcd1234efgh5678\n{STRIPE}\n```\n\n{key}\n"
    parsed = ParsedFile(format="markdown", sections=[Section("Setup", 1, 10, text)])
    redact(parsed, text, structured=False)
    assert STRIPE not in parsed.sections[0].text
    assert "abcd1234efgh5678" not in parsed.sections[0].text
    assert "MIIEowIBAAKCAQEA7x" not in parsed.sections[0].text
    assert len(parsed.problems) == 3


def test_weak_password_is_redacted_where_assigned_only_and_compose_items_are_checked():
    text = (
        "services:\n  db:\n    environment:\n      - MYSQL_PASSWORD=wordpress\n"
        "      - MYSQL_DATABASE=wordpress\n    image: wordpress:6\n"
    )
    parsed = ParsedFile(
        format="yaml",
        records=[
            Record("services.db.environment[0]", "MYSQL_PASSWORD=wordpress", 4),
            Record("services.db.environment[1]", "MYSQL_DATABASE=wordpress", 5),
            Record("services.db.image", "wordpress:6", 6),
        ],
        sections=[Section("services", 1, 6, text.rstrip("\n"))],
        documents=[
            {
                "services": {
                    "db": {
                        "environment": ["MYSQL_PASSWORD=wordpress", "MYSQL_DATABASE=wordpress"],
                        "image": "wordpress:6",
                    }
                }
            }
        ],
    )
    redact(parsed, text, structured=True)
    assert [p.line for p in parsed.problems] == [4]
    assert parsed.records[0].value.startswith("MYSQL_PASSWORD=[REDACTED")
    assert parsed.records[1].value == "MYSQL_DATABASE=wordpress"
    assert parsed.records[2].value == "wordpress:6"
    lines = parsed.sections[0].text.splitlines()
    assert "wordpress" not in lines[3] and lines[4].endswith("=wordpress") and lines[5].endswith("wordpress:6")
    env = parsed.documents[0]["services"]["db"]["environment"]
    assert "wordpress" not in env[0] and env[1] == "MYSQL_DATABASE=wordpress"


def test_a_variable_reference_with_a_placeholder_default_is_not_a_secret():
    text = "spring.datasource.password=${APP_DB_PASSWORD:-changeme}\nurl=${DB_URL:-jdbc:postgresql://db/app}\n"
    parsed = ParsedFile(
        format="properties",
        records=[Record("spring.datasource.password", "${APP_DB_PASSWORD:-changeme}", 1)],
        sections=[Section("spring", 1, 2, text)],
    )
    redact(parsed, text, structured=True)
    assert parsed.problems == []
