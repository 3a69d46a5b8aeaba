"""Issue 11's reproductions: secrets that were reported but kept, and secrets not detected.

Each planted file goes through the real pipeline into a real KB (DuckDB catalogue, keyword index,
Chroma with the hash embedder); then every byte under the KB directory, every table, and the
outputs of `kb show`, `kb sql`, `kb search`, `kb findings` and `GET /files/{path}` are searched for
the secret and for every 8-character run of it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

PEM_BODY = "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo4lgO"
PEM = f"-----BEGIN RSA PRIVATE KEY-----\n{PEM_BODY}\n-----END RSA PRIVATE KEY-----"


def runs(secret: str) -> list[str]:
    s = "".join(secret.split())
    return [s] if len(s) < 8 else [s[i : i + 8] for i in range(len(s) - 7)]


def leaks(blob: str | bytes, secret: str) -> list[str]:
    if isinstance(blob, bytes):
        return [r for r in runs(secret) if r.encode() in blob]
    return [r for r in runs(secret) if r in blob]


def kb_bytes(db: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(db.rglob("*")) if p.is_file())


def kb_tables(db: Path) -> str:
    from kb.catalogue import Catalogue

    with Catalogue(db, read_only=True) as cat:
        out = []
        for table in cat.tables():
            out.append(json.dumps(cat.query(f'SELECT * FROM "{table}"'), default=str))
    return "\n".join(out)


def cli_outputs(db: Path, paths: list[str], words: list[str]) -> str:
    from click.testing import CliRunner

    from kb.cli import cli

    runner = CliRunner()
    out = []
    for args in (
        [
            ["sql", "SELECT * FROM records", "--limit", "0"],
            ["sql", "SELECT * FROM chunks", "--json"],
            ["sql", "SELECT * FROM documents", "--csv"],
            ["findings", "--json"],
            ["findings"],
        ]
        + [["show", p] for p in paths]
        + [["show", p, "--json"] for p in paths]
        + [["search", w, "--mode", "keyword", "--json", "-k", "50"] for w in words]
        + [["search", w, "--json", "-k", "50"] for w in words]
    ):
        res = runner.invoke(cli, [*args, "--db", str(db)])
        out.append(res.output)
    return "\n".join(out)


def http_outputs(db: Path, root: Path, paths: list[str], words: list[str]) -> str:
    from litestar.testing import TestClient

    from kb.api.app import create_app
    from kb.settings import Settings

    app = create_app(Settings(db=db, root=root, model="hash"), watch=False)
    out = []
    with TestClient(app) as client:
        for p in paths:
            out.append(client.get(f"/files/{p}").text)
        for w in words:
            out.append(client.get("/search", params={"q": w, "k": 50}).text)
            out.append(client.get("/search", params={"q": w, "k": 50, "mode": "keyword"}).text)
        out.append(client.get("/findings", params={"limit": 500}).text)
        out.append(client.get("/", params={"q": words[0] if words else "password"}).text)
    return "\n".join(out)


def build(tmp_path: Path, files: dict[str, str]) -> tuple[Path, Path, dict]:
    from kb.catalogue import Catalogue
    from kb.ingest.pipeline import run_ingest
    from kb.settings import Settings
    from tests.conftest import write_tree

    root = write_tree(tmp_path / "tree", files)
    db = tmp_path / "kb"
    s = Settings(db=db, root=root, model="hash", workers=1)
    with Catalogue(db) as cat:
        run_ingest(cat, s)
        found = dict(cat.query("SELECT path, count(*) FROM findings WHERE rule = 'plaintext-secret' GROUP BY 1"))
    return root, db, found


def assert_nowhere(tmp_path: Path, files: dict[str, str], secrets: dict[str, str], words: list[str]) -> dict:
    """``secrets``: path -> the secret planted there. Returns plaintext-secret counts by path."""
    root, db, found = build(tmp_path, files)
    blobs = {
        "kb bytes": kb_bytes(db),
        "tables": kb_tables(db),
        "cli": cli_outputs(db, list(files), words),
        "http": http_outputs(db, root, list(files), words),
    }
    bad = {
        (path, where): leaks(blob, secret)[:3]
        for path, secret in secrets.items()
        for where, blob in blobs.items()
        if leaks(blob, secret)
    }
    assert not bad, bad
    return found


KEPT_CASES = {
    "yaml-block.yaml": (
        "tls_key: |\n  -----BEGIN RSA PRIVATE KEY-----\n  " + PEM_BODY + "\n  -----END RSA PRIVATE KEY-----\n",
        PEM_BODY,
    ),
    "yaml-dq.yaml": (
        'tls_key: "-----BEGIN RSA PRIVATE KEY-----\\n' + PEM_BODY + '\\n-----END RSA PRIVATE KEY-----\\n"\n',
        PEM_BODY,
    ),
    "sa.json": (
        json.dumps(
            {
                "type": "service_account",
                "private_key_id": "k1",
                "private_key": PEM + "\n",
                "client_email": "svc@proj.iam.gserviceaccount.com",
            },
            indent=2,
        ),
        PEM_BODY,
    ),
    "key.env": (
        'TLS_KEY="-----BEGIN RSA PRIVATE KEY-----\\n' + PEM_BODY + '\\n-----END RSA PRIVATE KEY-----"\nA=1\n',
        PEM_BODY,
    ),
    "k8s-secret.yaml": (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: tls\nstringData:\n  tls.key: |\n"
        "    -----BEGIN RSA PRIVATE KEY-----\n    " + PEM_BODY + "\n    -----END RSA PRIVATE KEY-----\n",
        PEM_BODY,
    ),
    "folded.yaml": ("db:\n  password: >-\n    FoldPartOne9x\n    FoldPartTwo8y\n", "FoldPartOne9x FoldPartTwo8y"),
    "literal.yaml": ("db:\n  password: |\n    LitPartOne9x\n    LitPartTwo8y\n", "LitPartOne9x\nLitPartTwo8y"),
    "plain-multi.yaml": ("db:\n  password: PlainOne7q\n    PlainTwo8r\n", "PlainOne7q PlainTwo8r"),
    "single-quoted.yaml": ("db:\n  password: 'it''s-Sq4etQuoted'\n", "it's-Sq4etQuoted"),
    "continued.properties": ("db.password=ContOne7qz\\\n    ContTwo8rz\nx=1\n", "ContOne7qzContTwo8rz"),
    "multiline.toml": ('[db]\npassword = """\nTomlOne7qz \\\n  TomlTwo8rz"""\n', "TomlOne7qzTomlTwo8rz"),
    "continued.ini": ("[db]\npassword = IniOne7qz\n  IniTwo8rz\nhost = x\n", "IniOne7qz\nIniTwo8rz"),
    "after-pem.yaml": (
        "cfg:\n  key: |\n    -----BEGIN RSA PRIVATE KEY-----\n    "
        + PEM_BODY
        + "\n    -----END RSA PRIVATE KEY-----\n  db_password: wordpress\n  name: blog\n",
        "wordpress",
    ),
    "passphrase.yaml": ("db:\n  password: correct horse battery staple\n", "correct horse battery staple"),
}


def test_secrets_reported_but_kept_are_now_nowhere(tmp_path: Path):
    files = {name: text for name, (text, _) in KEPT_CASES.items()}
    secrets = {name: s for name, (_, s) in KEPT_CASES.items()}
    found = assert_nowhere(tmp_path, files, secrets, ["password", "key", "db", "cfg", "tls"])
    assert set(found) == set(files), set(files) - set(found)


def test_a_weak_password_after_a_pem_block_is_redacted_on_its_own_line_only(tmp_path: Path):
    from kb.catalogue import Catalogue

    _, db, _ = build(tmp_path, {"a.yaml": KEPT_CASES["after-pem.yaml"][0]})
    with Catalogue(db, read_only=True) as cat:
        text = cat.query("SELECT text FROM chunks")[0][0]
        lines = cat.query("SELECT line_start, line_end, text FROM sections")[0]
    assert "wordpress" not in text and "name: blog" in text
    assert lines[2].count("\n") == lines[1] - lines[0]  # line count kept: the block is not collapsed


def k8s_secret(value: str) -> str:
    return (
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n"
        f"  password: {base64.b64encode(value.encode()).decode()}\n"
    )


MISSED_CASES = {
    "pg.env": ("PGPASSWORD=Pg9Secret7Zx\n", "Pg9Secret7Zx"),
    "rails.env": (
        "SECRET_KEY_BASE=9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa\n",
        "9f8e7d6c5b4a39281706f5e4d3c2b1a0ffeeddccbbaa",
    ),
    "headers.yaml": ("proxy:\n  headers:\n    Authorization: Bearer op4que7TokenValueZ9x\n", "op4que7TokenValueZ9x"),
    "curl.md": (
        "# Call it\n\n```sh\ncurl -H 'Authorization: Bearer op4queMdTok3nValue8' https://api.example.com\n```\n",
        "op4queMdTok3nValue8",
    ),
    "slack.yaml": (
        "alerts:\n  hook: https://hooks.slack.com/services/T0ABCDEFG/B0HIJKLMN/abcdEFGHijklMNOPqrstUVWX\n",
        "abcdEFGHijklMNOPqrstUVWX",
    ),
    "docker-config.json": (
        json.dumps({"auths": {"registry.example.com": {"auth": base64.b64encode(b"deploy:Dk8rPassw0rd").decode()}}}),
        base64.b64encode(b"deploy:Dk8rPassw0rd").decode(),
    ),
    "k8s.yaml": (k8s_secret("K8sS3cretValue"), base64.b64encode(b"K8sS3cretValue").decode()),
    "slash.yaml": ("db:\n  password: /xK9#mP2vQ\n", "/xK9#mP2vQ"),
    "dollar.yaml": ("db:\n  password: $uperS3cretZ\n", "$uperS3cretZ"),
    "my.yaml": ("db:\n  password: my-S3cretPa55\n", "my-S3cretPa55"),
    "default.env": ("OTHER=${DB_PASSWORD:-Def4ultS3cret}\n", "Def4ultS3cret"),
    "list.yaml": (
        "passwords:\n  - L1stPassw0rdA\n  - L1stPassw0rdB\napi_keys:\n  - ak_9f8e7d6c5b4a3928\n",
        "L1stPassw0rdA",
    ),
    "openai.toml": (
        '[llm]\nendpoint = "x"\nkey_ref = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"\n',
        "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z",
    ),
    "gitlab.ini": ("[ci]\nvalue = glpat-Qw7eRt9yUiKp3zXv5bNmLq\n", "glpat-Qw7eRt9yUiKp3zXv5bNmLq"),
    "azure.properties": (
        "storage.conn=DefaultEndpointsProtocol=https;AccountName=acct;AccountKey="
        + "A" * 20
        + "b" * 30
        + "C9+/" * 9
        + "==;EndpointSuffix=core.windows.net\n",
        "A" * 20 + "b" * 30 + "C9+/" * 9 + "==",
    ),
}


@pytest.mark.parametrize("name", sorted(MISSED_CASES))
def test_a_secret_the_reference_scanners_find_is_found(name: str):
    from pathlib import PurePosixPath

    from kb.ingest.parsers.base import Limits, format_for, parse_text
    from kb.ingest.pipeline import STRUCTURED_FORMATS
    from kb.ingest.secrets import redact

    text, secret = MISSED_CASES[name]
    fmt = format_for(PurePosixPath(name))
    parsed = redact(parse_text(fmt, text, PurePosixPath(name), Limits()), text, structured=fmt in STRUCTURED_FORMATS)
    assert [p for p in parsed.problems if p.rule == "plaintext-secret"], name
    blob = repr((parsed.records, parsed.sections, parsed.documents))
    assert not leaks(blob, secret), leaks(blob, secret)


def test_missed_shapes_never_reach_the_kb_or_any_output(tmp_path: Path):
    files = {name: text for name, (text, _) in MISSED_CASES.items()}
    secrets = {name: s for name, (_, s) in MISSED_CASES.items()}
    found = assert_nowhere(tmp_path, files, secrets, ["password", "Authorization", "auth"])
    assert set(found) == set(files)


@pytest.mark.model
def test_the_real_model_never_sees_a_secret(tmp_path: Path):
    """End to end with all-MiniLM-L6-v2: chunks embedded and searched semantically, nothing leaks."""
    from click.testing import CliRunner

    from kb.cli import cli
    from tests.conftest import write_tree

    root = write_tree(tmp_path / "tree", {"a.yaml": KEPT_CASES["folded.yaml"][0], "b.json": KEPT_CASES["sa.json"][0]})
    db = tmp_path / "kb"
    res = CliRunner().invoke(cli, ["ingest", str(root), "--db", str(db)], env={"KB_MODEL": "all-MiniLM-L6-v2"})
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(
        cli,
        ["search", "database password", "--mode", "semantic", "--json", "--db", str(db)],
        env={"KB_MODEL": "all-MiniLM-L6-v2"},
    )
    assert res.exit_code == 0 and '"path"' in res.output
    for secret in ("FoldPartOne9x FoldPartTwo8y", PEM_BODY):
        assert not leaks(kb_bytes(db), secret) and not leaks(res.output, secret)
