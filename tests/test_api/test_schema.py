"""Property-based: schemathesis generates requests from the OpenAPI document, valid and invalid.
No answer is a 5xx, every answer matches the documented status codes, content types and schemas,
and every error is a JSON problem body. Bounded (a few dozen cases per operation) to stay < 60 s."""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")

import schemathesis.checks as checks  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis.errors import Unsatisfiable  # noqa: E402
from schemathesis import GenerationMode  # noqa: E402

pytestmark = pytest.mark.slow  # seconds each: `make check` leaves it out, `make test` (CI) runs it

POSITIVE_EXAMPLES = 20
NEGATIVE_EXAMPLES = 10
CONFORMANCE = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    from kb.api.app import create_app
    from tests.conftest import write_tree
    from tests.test_api.conftest import TREE, build_kb

    base = tmp_path_factory.mktemp("schema_kb")
    root = write_tree(base / "tree", TREE)
    s = build_kb(root, base / "kb")
    app = create_app(s.replace(request_timeout=20.0))
    service = app.state.service
    service.open()  # schemathesis' ASGI transport does not run the lifespan
    yield schemathesis.openapi.from_asgi("/schema/openapi.json", app)
    service.close()


def _operations(schema):
    ops = [r.ok() for r in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in ops} >= {
        "GET /search",
        "GET /findings",
        "GET /files",
        "GET /files/{file_path}",
        "GET /duplicates",
        "GET /drift",
        "GET /graph/deps",
        "GET /graph/impact",
        "GET /stats",
        "GET /health",
        "GET /metrics",
        "POST /ingest",
    }
    return ops


def _problem_body(resp) -> None:
    if resp.status_code >= 400:
        body = resp.json()
        assert body["status_code"] == resp.status_code and body["detail"]


def test_valid_requests_conform_to_the_schema(schema):
    for operation in _operations(schema):

        @settings(
            max_examples=POSITIVE_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(operation.as_strategy(generation_mode=GenerationMode.POSITIVE))
        def check(case) -> None:
            resp = case.call()
            case.validate_response(resp, checks=CONFORMANCE)
            _problem_body(resp)

        check()


def test_invalid_requests_are_4xx_problems(schema):
    for operation in _operations(schema):

        @settings(
            max_examples=NEGATIVE_EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        @given(operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
        def check(case) -> None:
            resp = case.call()
            assert resp.status_code < 500, (case.method, case.formatted_path, case.query, resp.text[:300])
            _problem_body(resp)

        try:
            check()
        except Unsatisfiable:  # nothing to get wrong: an operation without parameters (/drift, /health)
            assert not operation.query and not operation.path_parameters, operation.path
