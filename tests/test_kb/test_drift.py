"""``kb.drift`` and ``kb drift``: planted drift in ``fixtures_dup/tree`` (app/config, app/.env*,
chart/values*) is found, agreeing siblings (``neg/envs-agree``) are not reported, layering and
``${VAR}`` resolution give each key's final value with its file:line.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from kb.drift import _merge, effective_config, find_drift, sibling_groups
from kb.errors import BadRequestError
from kb.types import DriftGroup

HERE = Path(__file__).resolve().parent
TREE = HERE / "fixtures_dup" / "tree"
REPO = HERE.parents[1]


@pytest.fixture(scope="module")
def fixture_kb(tmp_path_factory):
    from kb.knowledge import KnowledgeBase

    db = tmp_path_factory.mktemp("drift") / "kb"
    KnowledgeBase.build(TREE, db=db, embed=False, workers=1).close()
    kb = KnowledgeBase.open(db, read_only=True)
    yield kb
    kb.close()


@pytest.fixture(scope="module")
def drift(fixture_kb) -> dict[str, DriftGroup]:
    return {g.files[0]: g for g in find_drift(fixture_kb.catalogue, fixture_kb.settings)}


def _missing(g: DriftGroup) -> dict[str, list[str]]:
    return {m.key_path: m.missing_in for m in g.missing}


def _differing(g: DriftGroup) -> dict[str, dict]:
    return {d.key_path: d.values for d in g.differing}


def test_config_env_files_drift_with_base_as_layer(drift):
    g = drift["app/config/base.yaml"]
    assert g.files == [
        "app/config/base.yaml",
        "app/config/development.yaml",
        "app/config/production.yaml",
        "app/config/staging.yaml",
    ]
    # development inherits nothing for the flag: missing there only (base is never "missing")
    assert _missing(g) == {"feature_flags.new_checkout": ["app/config/development.yaml"]}
    diff = _differing(g)
    assert diff["database.pool_size"] == {
        "app/config/base.yaml": 5,
        "app/config/development.yaml": 5,
        "app/config/production.yaml": 50,
        "app/config/staging.yaml": 10,
    }
    assert diff["cache.ttl"]["app/config/production.yaml"] == 600
    # keys every environment inherits unchanged from the base are not drift
    assert "app.name" not in diff and "database.url" not in diff


def test_helm_values_drift(drift):
    g = drift["chart/values.yaml"]
    assert _missing(g) == {"ingress.host": ["chart/values-staging.yaml"]}
    assert _differing(g)["replicaCount"] == {
        "chart/values.yaml": 1,
        "chart/values-production.yaml": 5,
        "chart/values-staging.yaml": 2,
    }


def test_dotenv_drift(drift):
    g = drift["app/.env"]
    assert g.files == ["app/.env", "app/.env.production", "app/.env.staging"]
    assert _missing(g) == {"SENTRY_ENV": ["app/.env.staging"]}
    assert _differing(g)["APP_PORT"] == {"app/.env": "8080", "app/.env.production": "80", "app/.env.staging": "8080"}


def test_agreeing_siblings_are_not_reported(drift):
    assert not [f for g in drift.values() for f in g.files if f.startswith("neg/")]
    assert set(drift) == {"app/config/base.yaml", "chart/values.yaml", "app/.env"}


def test_effective_config_resolves_layers_and_variables(fixture_kb):
    rows = {(r["group"], r["key_path"]): r for r in effective_config(fixture_kb.catalogue, fixture_kb.settings, "prod")}
    pool = rows[("app/config/{base,development,production,staging}.*", "database.pool_size")]
    assert (pool["value"], pool["source"], pool["layer"]) == (50, "app/config/production.yaml:4", "env")
    name = rows[("app/config/{base,development,production,staging}.*", "app.name")]
    assert (name["value"], name["source"], name["layer"]) == ("shop", "app/config/base.yaml:2", "base")
    url = rows[("app/config/{base,development,production,staging}.*", "database.url")]
    assert url["value"] == "postgres://db.prod.internal:5432/shop"
    assert url["variables"] == [{"name": "DB_HOST", "source": "app/.env.production:1"}]
    assert url["unresolved"] == []


def test_effective_config_path_glob_and_unknown_env(fixture_kb):
    rows = effective_config(fixture_kb.catalogue, fixture_kb.settings, "staging", "chart/*")
    assert {r["group"] for r in rows} == {"chart/values*.yaml"}
    assert {r["key_path"]: r["value"] for r in rows}["replicaCount"] == 2
    with pytest.raises(BadRequestError, match="known: .*production"):
        effective_config(fixture_kb.catalogue, fixture_kb.settings, "moon")


@pytest.mark.parametrize(
    "paths, expected",
    [
        (
            ["application.properties", "application-prod.properties", "application-dev.properties"],
            [["application.properties", "application-dev.properties", "application-prod.properties"]],
        ),
        (
            ["appsettings.json", "appsettings.Development.json", "appsettings.Production.json"],
            [["appsettings.json", "appsettings.Development.json", "appsettings.Production.json"]],
        ),
        (
            ["docker-compose.yml", "docker-compose.prod.yml", "docker-compose.staging.yml"],
            [["docker-compose.yml", "docker-compose.prod.yml", "docker-compose.staging.yml"]],
        ),
        (
            ["k/base/app.yaml", "k/dev/app.yaml", "k/prod/app.yaml", "k/prod/other.yaml"],
            [["k/base/app.yaml", "k/dev/app.yaml", "k/prod/app.yaml"]],
        ),
        (
            ["svc/.env", "svc/.env.example", "svc/.env.production", "svc/.env.staging"],
            [["svc/.env", "svc/.env.production", "svc/.env.staging", "svc/.env.example"]],
        ),
        # one environment cannot drift; unrelated names are not siblings
        (["config/base.yaml", "config/production.yaml"], []),
        (["values.yaml", "routes.yaml", "settings-dev.yaml"], []),
    ],
)
def test_sibling_groups(paths, expected):
    assert [g.files for g in sibling_groups(paths)] == expected


def _layer(path, **keys):
    return path, {
        k: (str(v), v, i + 1, "array" if v == [] else "object" if v == {} else "str")
        for i, (k, v) in enumerate(keys.items())
    }


def test_merge_replaces_lists_and_keeps_mappings():
    base = _layer("base.yaml", **{"a.x": 1, "a.y": 2, "hosts[0]": "h1", "hosts[1]": "h2", "opts.z": 3})
    env = _layer("prod.yaml", **{"a.y": 20, "hosts[0]": "p1", "opts": {}})
    eff = _merge([base, env])
    assert {k: v[1] for k, v in eff.items()} == {"a.x": 1, "a.y": 20, "hosts[0]": "p1", "opts.z": 3}
    assert eff["a.x"][2] == "base.yaml" and eff["a.y"][2] == "prod.yaml"


@pytest.mark.skipif(not (REPO / "kb" / "sample_truth.json").exists(), reason="sample corpus not bundled")
def test_sample_planted_drift_is_found(tmp_path):
    from kb.knowledge import KnowledgeBase

    truth = json.loads((REPO / "kb" / "sample_truth.json").read_text())["problems"]
    kb = KnowledgeBase.build(REPO / "kb" / "sample", db=tmp_path / "kb", embed=False, workers=1)
    groups = find_drift(kb.catalogue, kb.settings)
    for p in (p for p in truth if p["kind"] == "drift"):
        group = next(g for g in groups if set(p["files"]) <= set(g.files))
        if "missing_in" in p:
            assert _missing(group).get(p["key_path"]) == p["missing_in"], p["details"]
        if "values" in p:
            values = _differing(group)[p["key_path"]]
            assert {k: v for k, v in values.items() if k in p["values"]} == p["values"], p["details"]
    kb.close()


def _cli(*args: str):
    from kb.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_cli_drift_json_contract(fixture_kb):
    res = _cli("drift", "--db", str(fixture_kb.settings.db), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == {"groups"}
    g = next(g for g in out["groups"] if g["files"][0] == "chart/values.yaml")
    assert set(g) == {"files", "missing", "differing"}
    assert g["missing"] == [{"key_path": "ingress.host", "missing_in": ["chart/values-staging.yaml"]}]
    assert {"key_path", "values"} == set(g["differing"][0])


def test_cli_drift_text_and_effective(fixture_kb):
    res = _cli("drift", "--db", str(fixture_kb.settings.db))
    assert res.exit_code == 0
    assert "chart/values-production.yaml:1=5" in res.stdout  # file:line=value
    res = _cli("drift", "--db", str(fixture_kb.settings.db), "--effective", "production", "--path", "app/config/*")
    assert res.exit_code == 0
    assert "database.pool_size = 50    app/config/production.yaml:4" in res.stdout
    res = _cli("drift", "--db", str(fixture_kb.settings.db), "--effective", "moon")
    assert res.exit_code == 2 and "known:" in res.stderr


def test_sibling_groups_single_environment_only_for_effective():
    paths = ["config/base.yaml", "config/production.yaml", "svc/.env", "svc/.env.production", "svc/.env.staging"]
    drift_groups = [g.files for g in sibling_groups(paths)]
    assert drift_groups == [["svc/.env", "svc/.env.production", "svc/.env.staging"]]
    # for the effective configuration a base with one environment is a group; groups of two or
    # more environments come out the same
    assert [g.files for g in sibling_groups(paths, single=True)] == [
        ["config/base.yaml", "config/production.yaml"],
        ["svc/.env", "svc/.env.production", "svc/.env.staging"],
    ]


def test_effective_config_base_and_single_environment(tmp_path):
    from kb.knowledge import KnowledgeBase

    tree = tmp_path / "tree"
    (tree / "config").mkdir(parents=True)
    (tree / "config" / "base.yaml").write_text("app:\n  name: shop\ndatabase:\n  pool_size: 5\n  host: localhost\n")
    (tree / "config" / "production.yaml").write_text("database:\n  pool_size: 50\n")
    KnowledgeBase.build(tree, db=tmp_path / "kb", embed=False, workers=1).close()
    kb = KnowledgeBase.open(tmp_path / "kb", read_only=True)
    try:
        assert find_drift(kb.catalogue, kb.settings) == []  # one environment cannot drift
        rows = {r["key_path"]: r for r in effective_config(kb.catalogue, kb.settings, "production")}
        assert (rows["database.pool_size"]["value"], rows["database.pool_size"]["source"]) == (
            50,
            "config/production.yaml:2",
        )
        assert (rows["app.name"]["value"], rows["app.name"]["layer"]) == ("shop", "base")
        assert rows["database.host"]["source"] == "config/base.yaml:5"
        res = _cli("drift", "--db", str(kb.settings.db), "--effective", "prod")
        assert res.exit_code == 0, res.output
        assert "database.pool_size = 50" in res.stdout and "config/production.yaml:2" in res.stdout
        with pytest.raises(BadRequestError, match=r"known: production\)"):
            effective_config(kb.catalogue, kb.settings, "staging")
    finally:
        kb.close()
