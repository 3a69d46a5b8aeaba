"""Reference extraction helpers: path-likeness, variables, key paths, pointers, anchors."""

from __future__ import annotations

import pytest

from kb.graph.refs import looks_like_path, pointer_exists, scan_variables, service_node
from kb.keypaths import join_key_path, split_key_path
from kb.markdown import heading_anchors

PATHS = [
    ("features/analytics.json", "config"),
    ("./templates/x.yml", "anything"),
    ("../schemas/a.schema.json", "x"),
    ("file:configs/app.yaml", "x"),
    ("base.json", "extends"),
    ("values-prod.yaml", "valueFiles"),
    ("namespace.yaml", "resources[0]"),
    ("docs/guide.md#install", "see"),
]
NOT_PATHS = [
    ("https://example.com/a.json", "url"),
    ("s3://bucket/dump.json", "backup"),
    ("application/json", "accept"),
    ("application/problem+json", "accept"),
    ("read/write", "mode"),
    ("2024/01/02", "since"),
    ("src/**/*.json", "include"),
    ("features/*.json", "include"),
    ("nginx:1.25", "image"),
    ("ghcr.io/acme/payments:2024.01.2", "image"),
    ("*/5 * * * *", "schedule"),
    ("10.10.0.0/16", "cidr"),
    ("/app/config/development.yaml", "path"),
    ("~/.config/x.yaml", "path"),
    ("${CONFIG_DIR}/app.yaml", "config"),
    ("{{ .Values.x }}.yaml", "config"),
    ("settings.json", "name"),  # bare name under a key that is not about files
    ("1.2.3", "version"),
    ("see README.md for details", "text"),
    ("assets/hugo_stats\\.json", "source"),
    ("@types/node/package.json", "extends"),
]


@pytest.mark.parametrize("value,key", PATHS)
def test_looks_like_path_accepts_paths(value, key):
    assert looks_like_path(value, key)


@pytest.mark.parametrize("value,key", NOT_PATHS)
def test_looks_like_path_rejects_negative_controls(value, key):
    assert not looks_like_path(value, key)


@pytest.mark.parametrize(
    "text,bare,expected",
    [
        ("${A}", False, [("A", True)]),
        ("${A:-x}", False, [("A", False)]),
        ("${A-x}", False, [("A", False)]),
        ("${A:?must be set}", False, [("A", True)]),
        ("${A?err}", False, [("A", True)]),
        ("${A:+alt}", False, [("A", False)]),
        ("$${A} $$B", True, []),
        ("$A and ${B}", True, [("A", True), ("B", True)]),
        ("$A", False, []),
        ("${A:-${B}}", False, [("A", False), ("B", False)]),
        ("${{ github.ref }}", False, []),
        ("$(POD_NAME)", True, []),
        ("${#array[@]}", False, []),
    ],
)
def test_scan_variables_follows_compose_interpolation(text, bare, expected):
    assert [(u.name, u.required) for u in scan_variables(text, bare=bare)] == expected


def test_scan_variables_reads_spring_placeholders():
    uses = scan_variables("jdbc:${db.host:localhost}/${db.name}", dotted=True, colon_default=True)
    assert [(u.name, u.required) for u in uses] == [("db.host", False), ("db.name", True)]


@pytest.mark.parametrize(
    "parts", [["a", "b"], ["services", "web", "ports", 0], ["a", "b.c", 1, "d e"], ["x", 'q"uote']]
)
def test_key_paths_round_trip(parts):
    assert split_key_path(join_key_path(parts)) == parts


def test_key_path_quotes_odd_keys_like_ingest():
    assert join_key_path(["sysctls", "net.core.somaxconn"]) == 'sysctls["net.core.somaxconn"]'


def test_service_node_points_into_the_compose_file():
    assert service_node("c.yaml", "services.web.depends_on[0]") == "c.yaml#services.web"
    assert service_node("c.yaml", "include[0]") == "c.yaml"


def test_pointer_exists_follows_rfc6901():
    doc = {"$defs": {"a/b": {"x": [1, 2]}, "t~": 1}}
    assert pointer_exists(doc, "/$defs/a~1b/x/1")
    assert pointer_exists(doc, "/$defs/t~0")
    assert pointer_exists(doc, "/%24defs/a~1b")
    assert not pointer_exists(doc, "/$defs/a~1b/x/2")
    assert not pointer_exists(doc, "/$defs/missing")
    assert pointer_exists(doc, "")


@pytest.mark.parametrize(
    "title,slug",
    [
        ("Rolling back", "rolling-back"),
        ("Quick Start / TL;DR", "quick-start--tldr"),
        ("`kb validate` options", "kb-validate-options"),
        ("Setup & Install", "setup--install"),
    ],
)
def test_heading_anchors_match_github(title, slug):
    assert heading_anchors([title]) == [slug]


def test_configured_schema_catalog_and_ref_roots(tmp_path):
    import json as _json

    from kb import KnowledgeBase
    from tests.conftest import write_tree

    root = write_tree(
        tmp_path / "t",
        {
            "schemas/app.schema.json": _json.dumps(
                {
                    "$schema": "http://json-schema.org/draft-07/schema#",
                    "$id": "https://example.org/app.schema.json",
                    "type": "object",
                    "properties": {"port": {"type": "integer"}},
                }
            ),
            "apps/one/app.json": '{"port": "eighty"}',
            "apps/two/feature.json": '{"config": "shared/base.json"}',
            "common/shared/base.json": '{"a": 1}',
        },
    )
    catalog = tmp_path / "catalog.json"
    catalog.write_text(
        _json.dumps(
            {"schemas": [{"name": "app", "fileMatch": ["app.json"], "url": "https://example.org/app.schema.json"}]}
        )
    )
    kb = KnowledgeBase.build(
        root, db=tmp_path / "kb", embed=False, workers=1, schema_catalogs=[str(catalog)], ref_roots=["common"]
    )
    found = kb.validate(as_frame=False)
    rules = {(f.rule, f.path) for f in found}
    assert ("schema-violation", "apps/one/app.json") in rules
    assert not any(f.rule == "broken-reference" for f in found), found
    kb.close()
    plain = KnowledgeBase.build(root, db=tmp_path / "kb2", embed=False, workers=1)
    rules = {(f.rule, f.path) for f in plain.validate(as_frame=False)}
    assert ("broken-reference", "apps/two/feature.json") in rules
    assert ("schema-violation", "apps/one/app.json") not in rules
    plain.close()


def test_a_secret_a_script_or_readme_creates_is_not_missing(tree, build_kb):
    """kubernetes/examples' openshift-origin mounts a Secret its create.sh makes (``oc secrets new
    openshift-config``); a README's ``kubectl create configmap`` makes another. A Secret nothing
    makes stays a warning."""
    from kb.graph.refs.kubernetes import extract_kubernetes

    pod = (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\nspec:\n  containers:\n  - name: c\n    image: x\n"
        "    envFrom:\n    - configMapRef:\n        name: app-settings\n"
        "  volumes:\n  - name: config\n    secret:\n      secretName: openshift-config\n"
        "  - name: tls\n    secret:\n      secretName: absent-tls\n"
    )
    root = tree(
        {
            "origin/pod.yaml": pod,
            "origin/create.sh": "#!/bin/sh\noc secrets new openshift-config /config -o json > secret.json\n",
            "origin/README.md": "# Setup\n\n```\nkubectl create configmap app-settings --from-file=app.properties\n```\n",
        }
    )
    cat, _ = build_kb(root)
    refs = {r.target: r for r in extract_kubernetes(cat)}
    assert refs["openshift-config"].status == "ok" and refs["openshift-config"].resolved == "origin/create.sh"
    assert refs["app-settings"].status == "ok" and refs["app-settings"].resolved == "origin/README.md"
    assert refs["absent-tls"].status == "broken"
