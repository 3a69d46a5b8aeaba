"""``kb mcp`` end to end: the SDK's own client drives ``kb mcp`` as a subprocess over stdio (and once
over streamable HTTP) against a KB of the bundled sample, built once per session with the hash
embedder; one test runs the real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import write_tree
from tests.test_api.conftest import TREE

KB = str(Path(sys.executable).with_name("kb"))
SAMPLE_TRUTH = json.loads((Path(__file__).resolve().parents[2] / "kb" / "sample_truth.json").read_text())
PROD = "services/payments/config/production.yaml"
ENV = {"HF_HUB_OFFLINE": "1", "ANONYMIZED_TELEMETRY": "False", "KB_MODEL": "hash"}


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory) -> Path:
    """A KB of the bundled sample (hash embedder), built once per session; read-only for the tests."""
    from kb.knowledge import KnowledgeBase

    db = tmp_path_factory.mktemp("mcp") / "kb"
    KnowledgeBase.build(KnowledgeBase.sample_path(), db=db, model="hash", workers=1).close()
    return db


class Session:
    """A synchronous face over ``mcp.Client`` running in a blocking portal's event loop."""

    def __init__(self, portal: Any, client: Any) -> None:
        self.portal, self.client = portal, client

    def call(self, tool: str, args: dict[str, Any] | None = None) -> Any:
        return self.portal.call(lambda: self.client.call_tool(tool, args or {}))

    def ok(self, tool: str, args: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
        r = self.call(tool, args)
        assert not r.is_error, r.content[0].text
        return r.content[0].text, r.structured_content

    def error(self, tool: str, args: dict[str, Any] | None = None) -> str:
        r = self.call(tool, args)
        assert r.is_error, r.content[0].text[:500]
        return r.content[0].text

    def tools(self) -> list[Any]:
        return self.portal.call(self.client.list_tools).tools

    def resources(self) -> list[Any]:
        return self.portal.call(self.client.list_resources).resources

    def read(self, uri: str) -> str:
        return self.portal.call(lambda: self.client.read_resource(uri)).contents[0].text


@contextmanager
def mcp_session(*args: str, env: dict[str, str] | None = None) -> Iterator[Session]:
    """``kb mcp ARGS`` as a subprocess (environment ``env``, default ENV), connected over stdio with the SDK's client."""
    from anyio.from_thread import start_blocking_portal
    from mcp import Client, StdioServerParameters
    from mcp.client.stdio import stdio_client

    params = StdioServerParameters(command=KB, args=["mcp", *args], env=ENV if env is None else env)
    # The server's stderr goes to the real one: stdio_client's default is the sys.stderr of the moment
    # ``mcp`` was first imported, which may be a CliRunner's capture that has no file descriptor.
    transport = stdio_client(params, errlog=sys.__stderr__)
    with (
        start_blocking_portal() as portal,
        portal.wrap_async_context_manager(Client(transport, read_timeout_seconds=120)) as client,
    ):
        yield Session(portal, client)


@pytest.fixture(scope="module")
def mcp(sample_db) -> Iterator[Session]:
    with mcp_session("--db", str(sample_db)) as s:
        yield s


# ---------------------------------------------------------------------------------------------


def test_lists_every_read_only_tool_with_input_and_output_schemas(mcp):
    from kb.api.mcp.server import TOOLS

    tools = {t.name: t for t in mcp.tools()}
    assert set(tools) == set(TOOLS)  # no ingest without --allow-ingest
    for t in tools.values():
        assert t.description and t.input_schema["type"] == "object", t.name
        assert t.output_schema and "truncated" in t.output_schema["properties"], t.name
        assert t.annotations.read_only_hint is True, t.name
    search = tools["search"].input_schema
    assert search["required"] == ["query"]
    assert search["properties"]["k"]["maximum"] == 100 and search["properties"]["query"]["maxLength"] == 1000
    # the output schema is the HTTP API's envelope: a hit has the fields of kb.types.Hit
    hit = tools["search"].output_schema["$defs"]["Hit"]["properties"]
    assert {"path", "line_start", "line_end", "key_path", "snippet", "score", "format", "answer"} == set(hit)


def test_search_answers_with_path_and_lines(mcp):
    text, data = mcp.ok("search", {"query": "fraud review threshold in production", "k": 5})
    assert data["hits"] and data["mode"] == "hybrid" and data["truncated"] is False
    prod = next(h for h in data["hits"] if h["path"] == PROD)
    assert prod["line_start"] <= 25 <= prod["line_end"] and prod["key_path"] == "fraud.review_threshold"
    assert f"{PROD}:{prod['line_start']}-{prod['line_end']}  fraud.review_threshold" in text
    assert "  25 |   review_threshold: 0.85" in text
    assert {"line": 25, "key_path": "fraud.review_threshold", "value": "0.85"} in prod["answer"]
    assert f"answer {PROD}:25  fraud.review_threshold = 0.85" in text
    _, every = mcp.ok("search", {"query": "review_threshold", "all": True})
    assert every["grouped"] is True and len({h["path"] for h in every["hits"]}) == len(every["hits"])
    _, only = mcp.ok(
        "search",
        {
            "query": "review_threshold",
            "mode": "keyword",
            "format": "yaml",
            "path": "services/payments/config/*",
            "k": 5,
        },
    )
    assert only["hits"] and all(h["path"].startswith("services/payments/config/") for h in only["hits"])


def test_show_file_and_find_key_give_values_at_their_lines(mcp):
    text, data = mcp.ok("show_file", {"path": PROD})
    assert data["file"]["path"] == PROD and data["total"] == len(data["records"])
    assert {"doc": 0, "key_path": "fraud.review_threshold", "value": "0.85", "value_type": "float", "line": 25} in data[
        "records"
    ]
    assert f"{PROD}:25  fraud.review_threshold = 0.85" in text
    text, data = mcp.ok("find_key", {"pattern": "review_threshold"})
    assert {(r["path"], r["line"], r["value"]) for r in data["records"]} >= {(PROD, 25, "0.85")}
    assert all(r["key_path"] == "fraud.review_threshold" for r in data["records"]) and len(data["records"]) == 3
    _, data = mcp.ok("find_key", {"pattern": "SERVICES.*.IMAGE", "path": "deploy/compose/docker-compose.yml"})
    assert data["records"] and all(r["key_path"].endswith(".image") for r in data["records"])


def test_validate_checks_the_whole_tree_without_storing(mcp):
    text, data = mcp.ok("validate")
    found = {(f["rule"], f["path"], f["line"]) for f in data["findings"]}
    for p in SAMPLE_TRUTH["problems"]:
        if p["kind"] in ("broken-reference", "undefined-variable"):
            assert (p["kind"], p["path"], p["line"]) in found, p
    assert ("plaintext-secret", "legacy/aws.ini", 6) in found and ("parse-error", "legacy/broken.yaml", 6) in found
    assert data["counts"]["error"] == sum(f["severity"] == "error" for f in data["findings"]) == data["total"] - 2
    assert "features/checkout.json:7  error  broken-reference" in text
    _, one = mcp.ok("validate", {"paths": ["features/checkout.json"]})
    assert {f["path"] for f in one["findings"]} == {"features/checkout.json"}
    _, folder = mcp.ok("validate", {"paths": ["legacy/"], "severity": "error"})
    assert {f["path"] for f in folder["findings"]} == {"legacy/aws.ini", "legacy/billing.env", "legacy/broken.yaml"}
    # nothing was stored: the stored findings are still ingest's three
    _, stored = mcp.ok("findings")
    assert stored["total"] == 3 and {f["rule"] for f in stored["findings"]} == {"plaintext-secret", "parse-error"}
    _, secrets = mcp.ok("findings", {"rule": "plaintext-secret"})
    assert [f["path"] for f in secrets["findings"]] == ["legacy/aws.ini", "legacy/billing.env"]


def test_secrets_stay_redacted_in_every_answer(mcp):
    answers = [
        mcp.ok("show_file", {"path": "legacy/aws.ini"}),
        mcp.ok("show_file", {"path": "legacy/billing.env"}),
        mcp.ok("find_key", {"pattern": "*key*"}),
        mcp.ok("search", {"query": "STRIPE_API_KEY aws_access_key_id", "k": 20}),
        mcp.ok("sql", {"query": "SELECT * FROM records WHERE path LIKE 'legacy/%'", "limit": 500}),
        mcp.ok("sql", {"query": "SELECT text FROM chunks WHERE path LIKE 'legacy/%'", "limit": 500}),
        mcp.ok("sql", {"query": "SELECT data FROM documents WHERE path LIKE 'legacy/%'", "limit": 500}),
        mcp.ok("validate", {"paths": ["legacy/"]}),
    ]
    blob = "\n".join(text + json.dumps(data) for text, data in answers)
    assert "[REDACTED:plaintext-secret:" in blob
    for secret in SAMPLE_TRUTH["secrets"]:
        assert secret not in blob


def test_duplicates_drift_and_effective(mcp):
    text, data = mcp.ok("duplicates", {"kinds": ["block"]})
    logging = next(g for g in data["groups"] if g["members"][0]["key_path"] == "logging")
    assert {(m["path"], m["line_start"]) for m in logging["members"]} == {
        (m["path"], m["line_start"]) for m in SAMPLE_TRUTH["problems"][0]["members"]
    }
    assert "services/payments/config/base.yaml:48-60  logging" in text
    text, data = mcp.ok("drift", {"path": "services/orders/*"})
    assert data["total"] >= 1 and all(any(f.startswith("services/orders/") for f in g["files"]) for g in data["groups"])
    missing = {m["key_path"] for g in data["groups"] for m in g["missing"]}
    assert "ORDERS_QUEUE_URL" in missing
    assert all(loc["line"] >= 1 for g in data["groups"] for loc in g["locations"])
    text, data = mcp.ok("drift", {"effective": "production", "path": "services/payments/config/*"})
    key = next(k for k in data["keys"] if k["key_path"] == "fraud.review_threshold")
    assert (key["value"], key["source"], key["layer"]) == (0.85, f"{PROD}:25", "env")
    assert f"{PROD}:25  fraud.review_threshold = 0.85" in text
    assert "No environment 'moon'" in mcp.error("drift", {"effective": "moon"})


def test_impact_and_dependencies(mcp):
    text, data = mcp.ok("impact", {"path": "schemas/common.schema.json"})
    direct = {(f["path"], f["line"]) for f in data["files"] if f["depth"] == 1}
    assert ("schemas/database.schema.json", 11) in direct and data["direction"] == "impact"
    assert "1  schemas/database.schema.json:11  json-ref" in text
    text, data = mcp.ok("dependencies", {"path": "deploy/compose/docker-compose.yml"})
    assert ("deploy/compose/common.yml", 76) in {(f["path"], f["line"]) for f in data["files"]}
    assert "deploy/compose/common.yml  compose-extends  referenced at deploy/compose/docker-compose.yml:76" in text
    assert "not a catalogued file" in mcp.error("impact", {"path": "nowhere.yaml"})


def test_sql_is_read_only_and_cannot_reach_other_files(mcp, tmp_path):
    text, data = mcp.ok("sql", {"query": "SELECT format, count(*) AS n FROM files GROUP BY 1 ORDER BY 2 DESC, 1;"})
    assert data["columns"] == ["format", "n"] and data["rows"][0] == ["yaml", 62]
    assert text.splitlines()[:3] == ["10 rows", "format | n", "yaml | 62"]
    _, data = mcp.ok("sql", {"query": "DESCRIBE files"})
    assert "path" in [r[0] for r in data["rows"]]
    out = tmp_path / "leak.csv"
    for bad in (
        "PRAGMA table_info('files')",  # configuration statements are refused (DESCRIBE answers the same)
        "DELETE FROM files",
        "DROP TABLE records",
        f"COPY files TO '{out}'",
        "SELECT * FROM read_text('/etc/hostname')",
        f"ATTACH '{tmp_path / 'x.db'}' AS x",
        "SET enable_external_access = true",
        "SELECT 1) AS a; DELETE FROM files; SELECT (1",
    ):
        assert mcp.call("sql", {"query": bad}).is_error, bad
    assert not out.exists()
    _, data = mcp.ok("sql", {"query": "SELECT count(*) FROM files"})
    assert data["rows"] == [[176]]


def test_bad_arguments_are_tool_errors_and_the_server_carries_on(mcp):
    assert "less than or equal to 100" in mcp.error("search", {"query": "x", "k": 101})
    assert "greater than or equal to 1" in mcp.error("search", {"query": "x", "k": 0})
    assert "query" in mcp.error("search", {})
    assert "mode" in mcp.error("search", {"query": "x", "mode": "fuzzy"})
    assert "Unknown format" in mcp.error("search", {"query": "x", "format": "hcl"})
    assert "not a catalogued file" in mcp.error("show_file", {"path": "services/payments/config/nope.yaml"})
    assert "not a path inside the tree" in mcp.error("show_file", {"path": "../../etc/passwd"})
    assert "kinds" in mcp.error("duplicates", {"kinds": ["bogus"]})
    assert "SQL error" in mcp.error("sql", {"query": "SELEC 1"})
    assert mcp.call("no_such_tool", {}).is_error
    assert mcp.ok("search", {"query": "DATABASE_URL", "k": 1})[1]["hits"]


def test_resources_describe_the_kb(mcp, sample_db):
    from kb.knowledge import KnowledgeBase

    assert {str(r.uri) for r in mcp.resources()} == {"kb://about", "kb://stats"}
    with KnowledgeBase.open(sample_db, read_only=True) as kb:
        st = kb.stats()
    about = mcp.read("kb://about")
    assert f"**{st['files']} files**" in about and f"Run {st['last_run']['id']}, complete" in about
    assert "| yaml | 62 |" in about and "| plaintext-secret | 2 |" in about and "`sql`" in about
    stats = json.loads(mcp.read("kb://stats"))
    assert stats["files"] == st["files"] == 176 and stats["files_by_format"] == st["files_by_format"]


@pytest.mark.slow
def test_answers_stay_within_the_budget_and_say_how_to_get_the_rest(sample_db):
    budget = 3000
    with mcp_session("--db", str(sample_db), "--max-chars", str(budget)) as s:

        def bounded(tool: str, args: dict[str, Any]) -> dict[str, Any]:
            text, data = s.ok(tool, args)
            assert len(text) <= budget + 400 and len(json.dumps(data)) <= budget + 400, (tool, len(text))
            return data

        data = bounded("sql", {"query": "SELECT * FROM records ORDER BY path, line", "limit": 500})
        assert data["truncated"] and 0 < len(data["rows"]) < 500 and "fit 3,000 characters" in data["note"]
        data = bounded("sql", {"query": "SELECT repeat('x', 5000) AS big"})
        assert data["rows"][0][0].endswith("… [4500 more characters]")
        first = bounded("find_key", {"pattern": "*", "limit": 500})
        assert first["truncated"] and "offset=" in first["note"]
        nxt = int(first["note"].split("offset=")[1].split(",")[0].split(";")[0])
        second = bounded("find_key", {"pattern": "*", "limit": 500, "offset": nxt})
        assert nxt == len(first["records"]) and second["records"][0] != first["records"][-1]
        data = bounded("search", {"query": "service configuration", "k": 100})
        assert data["truncated"] and len(data["hits"]) < 100
        data = bounded("show_file", {"path": "deploy/compose/docker-compose.yml"})
        assert data["truncated"] and len(data["records"]) < data["total"]
        data = bounded("drift", {"effective": "production"})
        assert data["truncated"] and data["total"] > len(data["keys"])
        bounded("duplicates", {})
        bounded("impact", {"path": "schemas/common.schema.json"})
        bounded("validate", {})


def test_sql_stops_a_runaway_query(sample_db):
    from kb.api.mcp.server import KBTools
    from kb.errors import BadRequestError
    from kb.settings import Settings

    tools = KBTools(Settings(db=sample_db, model="hash", request_timeout=0.5))
    with pytest.raises(BadRequestError, match="ran past the 0.5 s limit"):
        tools.sql("SELECT count(*) FROM range(1000000000000) a, range(1000) b", 10)
    res = tools.sql("SELECT path FROM files ORDER BY path", 3)
    assert res.columns == ["path"] and len(res.rows) == 3 and res.truncated


@pytest.mark.slow
def test_allow_ingest_adds_the_ingest_tool(tmp_path):
    from tests.test_api.conftest import build_kb

    root = write_tree(tmp_path / "tree", TREE)
    db = tmp_path / "kb"
    build_kb(root, db)
    with mcp_session("--db", str(db), "--allow-ingest") as s:
        assert "ingest" in {t.name for t in s.tools()}
        (root / PROD).write_text((root / PROD).read_text().replace("0.95", "0.99"))
        text, summary = s.ok("ingest")
        assert summary["changed"] == 1 and summary["status"] == "complete" and "1 changed" in text
        _, data = s.ok("find_key", {"pattern": "fraud.review_threshold", "path": PROD})
        assert [r["value"] for r in data["records"]] == ["0.99"]
        assert s.call("sql", {"query": "DELETE FROM files"}).is_error  # sql stays read-only


def test_missing_kb_is_a_one_line_error(tmp_path):
    from click.testing import CliRunner

    from kb.cli import cli

    res = CliRunner().invoke(cli, ["mcp", "--db", str(tmp_path / "none")])
    assert res.exit_code == 2 and "No knowledge base at" in res.output and "kb ingest" in res.output


def test_cli_module_does_not_import_the_sdk():
    code = "import sys, kb.cli.commands.mcp; print('mcp' in sys.modules, 'kb.api.mcp' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


@pytest.mark.slow
def test_streamable_http_on_loopback(sample_db):
    import anyio
    from mcp import Client

    proc = subprocess.Popen(
        [KB, "mcp", "--db", str(sample_db), "--http", "--port", "0", "--json"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **ENV},
    )
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["url"].startswith("http://127.0.0.1:") and ready["url"].endswith("/mcp")

        async def main() -> tuple[set[str], Any]:
            async with Client(ready["url"]) as c:
                names = {t.name for t in (await c.list_tools()).tools}
                return names, await c.call_tool("find_key", {"pattern": "review_threshold"})

        names, result = anyio.run(main)
        assert "search" in names and not result.is_error and len(result.structured_content["records"]) == 3
    finally:
        proc.terminate()
        proc.wait(30)


def test_bearer_key_guards_the_http_app():
    import anyio
    import httpx

    from kb.api.mcp.server import require_bearer

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    async def get(headers: dict[str, str]) -> int:
        transport = httpx.ASGITransport(app=require_bearer(app, "s3cret"))
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return (await c.post("/mcp", headers=headers)).status_code

    assert anyio.run(get, {}) == 401
    assert anyio.run(get, {"Authorization": "Bearer nope"}) == 401
    assert anyio.run(get, {"Authorization": "Bearer s3cret"}) == 200
    assert require_bearer(app, None) is app


@pytest.mark.model
def test_real_model_search_through_mcp(tmp_path, sample_db):
    """The bundled all-MiniLM-L6-v2, end to end: ingest with it, serve, ask a paraphrase."""
    from kb.knowledge import KnowledgeBase

    root = write_tree(tmp_path / "tree", TREE)
    db = tmp_path / "kb"
    KnowledgeBase.build(root, db=db, workers=1).close()
    env = {k: v for k, v in ENV.items() if k != "KB_MODEL"}
    with mcp_session("--db", str(db), env=env) as s:
        text, data = s.ok(
            "search", {"query": "When is a payment held for a person to check?", "mode": "semantic", "k": 3}
        )
        assert data["hits"][0]["path"] == "docs/fraud.md" and "docs/fraud.md:" in text
    # a KB built with another embedder (the hash one) is a tool error that names the fix
    with mcp_session("--db", str(sample_db), env=env) as s:
        assert "--model hash" in s.error("search", {"query": "fraud", "mode": "semantic"})


def test_readme_client_configuration_starts_this_server():
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme.split("### Assistants: `kb mcp`", 1)[1]
    config = json.loads(section.split("```json\n", 1)[1].split("```", 1)[0])
    server = config["mcpServers"]["kb"]
    assert server["command"].endswith("/bin/kb") and server["args"][:2] == ["mcp", "--db"]
    assert server["env"] == {"HF_HUB_OFFLINE": "1"}
