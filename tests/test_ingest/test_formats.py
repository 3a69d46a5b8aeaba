"""A format declares its traits once (kb.formats); a new format is one parser module (HCL shows it)."""

from __future__ import annotations

import pkgutil
import typing

import pytest

import kb.ingest.parsers
from kb import formats
from kb.formats import BUILTIN, Traits, declare, traits
from kb.ingest.parsers.base import registry
from kb.linepaths import FLAT_FORMATS, TABLE_FORMATS, TREE_FORMATS, line_key_paths


def test_every_registered_format_has_its_traits_declared_and_the_builtins_are_the_format_literal():
    names = set(registry())
    assert names <= set(formats.declared())
    assert set(typing.get_args(formats.Format)) == set(BUILTIN) == names - {"hcl"}
    modules = {m.name for m in pkgutil.iter_modules(kb.ingest.parsers.__path__) if m.name.endswith("_parser")}
    assert len(modules) == len(names)  # each parser module registered itself, none listed by hand


def test_the_string_sets_kb_used_to_keep_are_derived_from_the_traits():
    from kb.drift import CONFIG_FORMATS
    from kb.duplicates import _PROSE_FORMATS
    from kb.graph.refs.variables import _WITH_VARIABLES
    from kb.graph.schema.choice import _VALIDATED_FORMATS
    from kb.ingest.pipeline import STRUCTURED_FORMATS

    assert set(TREE_FORMATS) == {"json", "yaml", "helm-template"}
    assert set(TABLE_FORMATS) == {"toml", "ini"}
    assert set(FLAT_FORMATS) == {"dotenv", "properties"}
    assert set(STRUCTURED_FORMATS) >= {"json", "yaml", "toml", "ini", "dotenv", "properties", "dockerfile", "hcl"}
    assert set(CONFIG_FORMATS) == set(_WITH_VARIABLES) == {"json", "yaml", "toml", "ini", "dotenv", "properties"}
    assert set(_VALIDATED_FORMATS) == {"json", "yaml", "toml"}
    assert set(_PROSE_FORMATS) == {"markdown", "text"}


@pytest.fixture
def plugin_format():
    declare("probe-tree", Traits(structured=True, line_paths="tree", prose=False))
    yield "probe-tree"
    formats._DECLARED.pop("probe-tree")
    formats._version += 1


def test_a_format_declared_later_joins_every_view(plugin_format):
    from kb.ingest.pipeline import STRUCTURED_FORMATS

    assert plugin_format in TREE_FORMATS and plugin_format in STRUCTURED_FORMATS
    assert plugin_format not in TABLE_FORMATS
    assert line_key_paths(plugin_format, ["a:", "  b: 1"], None) == ["a", "a.b"]
    assert traits("never-declared") == Traits()


def test_an_hcl_tree_is_catalogued_with_its_secrets_redacted(make_tree, tmp_path):
    from kb import KnowledgeBase

    secret = "Zq8-vL2m-Xr7pW0aK3sT"
    root = make_tree(
        {
            "envs/production.tfvars": f'region = "eu-west-1"\ndb_password = "{secret}"\ntags = {{ team = "payments" }}\n',
            "main.tf": 'resource "aws_s3_bucket" "logs" {\n  bucket = "acme-logs"\n}\n',
        }
    )
    with KnowledgeBase.build(root, db=tmp_path / "kb", embed=False, workers=1) as kb:
        assert dict(zip(kb.files()["path"], kb.files()["format"])) == {
            "envs/production.tfvars": "hcl",
            "main.tf": "hcl",
        }
        keys = {r.key_path: r.value for r in kb.key_matches("*", path="envs")}
        assert keys["region"] == "eu-west-1" and keys["tags.team"] == "payments"
        assert secret not in str(keys["db_password"])
        assert "plaintext-secret" in set(kb.findings(path="envs")["rule"])
        assert kb.file("main.tf").records[0].key_path == "resource.aws_s3_bucket.logs.bucket"
        assert not kb.sql(f"SELECT * FROM sections WHERE text LIKE '%{secret}%'").shape[0]
