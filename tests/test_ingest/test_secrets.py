from __future__ import annotations

import pytest

from ingest.secrets import is_placeholder, redact, secret_key
from kb.types import ParsedFile, Record, Section

AWS = "AKIA" + "Q7ZP4M2XW9KD3JHT"
STRIPE = "sk_live_" + "4eC39HqLyjWDarjtT1zdp7dc"


@pytest.mark.parametrize("key,expected", [
    ("db.password", True), ("DB_PASSWORD", True), ("apiKey", True), ("STRIPE_API_KEY", True),
    ("client_secret", True), ("auth.token", True), ("aws_secret_access_key", True), ("secret", True),
    ("password_min_length", False), ("token_ttl", False), ("secret_name", False), ("secretRef", False),
    ("max_tokens", False), ("services.api.image", False), ('a["db.password"]', True), ("users[0].password", True),
])
def test_secret_key_names(key: str, expected: bool):
    assert secret_key(key) is expected


@pytest.mark.parametrize("value", ["changeme", "${DB_PASSWORD}", "${X:-y}", "<your-token>", "", "xxxxxx",
                                   "/run/secrets/db_password", "{{ .Values.password }}", "your-password-here"])
def test_placeholders_are_not_secrets(value: str):
    assert is_placeholder(value)


def test_redact_replaces_values_everywhere_and_reports_fingerprints():
    text = f"db:\n  password: hunter2-prod\naws: {AWS}\nurl: postgres://app:pg-s3cret-pw@db:5432/app\nph: changeme\n"
    parsed = ParsedFile(
        format="yaml",
        records=[Record("db.password", "hunter2-prod", 2), Record("aws", AWS, 3),
                 Record("url", "postgres://app:pg-s3cret-pw@db:5432/app", 4), Record("ph", "changeme", 5)],
        sections=[Section("db", 1, 2, "db:\n  password: hunter2-prod"), Section("aws", 3, 5, "\n".join(text.splitlines()[2:]))],
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
