from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from kb.ingest.walk import walk_tree
from tests.conftest import write_tree


def rels(result):
    return [e.rel for e in result.entries]


def test_walk_honours_gitignore_kbignore_and_skips_tool_folders(tmp_path: Path):
    root = write_tree(
        tmp_path / "t",
        {
            ".gitignore": "*.tmp\nbuild/\n",
            ".kbignore": "archive/\n",
            "a.yaml": "a: 1\n",
            "scratch.tmp": "x",
            "build/out.json": "{}",
            "archive/old.yaml": "a: 1\n",
            "sub/.gitignore": "local.json\n",
            "sub/local.json": "{}",
            "sub/kept.json": "{}",
            ".git/config": "[core]\n",
            "node_modules/x/package.json": "{}",
            "env1/pyvenv.cfg": "home = /usr\n",
            "env1/lib/site.json": "{}",
        },
    )
    assert rels(walk_tree(root)) == ["a.yaml", "sub/kept.json"]


def test_walk_extra_ignore_patterns(tmp_path: Path):
    root = write_tree(tmp_path / "t", {"a.yaml": "a: 1", "b.json": "{}"})
    assert rels(walk_tree(root, extra_ignore=["*.json"])) == ["a.yaml"]


def test_walk_symlink_loop_and_outside_links_are_findings(tmp_path: Path):
    root = write_tree(tmp_path / "t", {"d/a.yaml": "a: 1\n"})
    outside = write_tree(tmp_path / "outside", {"secret.yaml": "x: 1\n"})
    os.symlink(root / "d", root / "d" / "loop")  # d/loop -> d
    os.symlink(outside, root / "out")
    os.symlink(root / "d" / "self1", root / "d" / "self2")
    os.symlink(root / "d" / "self2", root / "d" / "self1")
    result = walk_tree(root)
    assert rels(result) == ["d/a.yaml"]
    by_path = dict(result.problems)
    assert "loops" in by_path["d/loop"].message
    assert "outside" in by_path["out"].message
    assert "broken or loops" in by_path["d/self1"].message


def test_walk_paths_with_spaces_and_unicode(tmp_path: Path):
    root = write_tree(tmp_path / "t", {"my dir/café config.yaml": "a: 1\n", "日本/設定.json": "{}"})
    assert rels(walk_tree(root)) == ["my dir/café config.yaml", "日本/設定.json"]


def test_walk_marks_helm_templates(tmp_path: Path):
    root = write_tree(
        tmp_path / "t",
        {
            "chart/Chart.yaml": "name: c\n",
            "chart/values.yaml": "a: 1\n",
            "chart/templates/dep.yaml": "kind: {{ .Values.a }}\n",
            "other/templates/x.yaml": "a: 1\n",
        },
    )
    flags = {e.rel: e.in_helm_templates for e in walk_tree(root).entries}
    assert flags == {
        "chart/Chart.yaml": False,
        "chart/templates/dep.yaml": True,
        "chart/values.yaml": False,
        "other/templates/x.yaml": False,
    }


def test_walk_skips_the_kb_directory_inside_the_root(tmp_path: Path):
    root = write_tree(tmp_path / "t", {"a.yaml": "a: 1\n", "mykb/catalogue.json": "{}"})
    assert rels(walk_tree(root, skip=root / "mykb")) == ["a.yaml"]


def test_gitignore_leaves_out_only_files_git_does_not_track(tmp_path: Path):
    """As in git, .gitignore applies to untracked files: a project may ship a default it ignores
    local edits to (mailcow tracks data/conf/rspamd/local.d/* and lists it in .gitignore)."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = write_tree(
        tmp_path / "t",
        {
            ".gitignore": "local.d/*\nconf.d/fts.conf\nlocal-only/\n*.tmp\n",
            ".kbignore": "shipped/skip.yaml\n",
            "a.yaml": "a: 1\n",
            "local.d/options.inc": "x = 1;\n",
            "conf.d/fts.conf": "fts = yes\n",
            "local-only/kept.yaml": "b: 2\n",
            "shipped/skip.yaml": "c: 3\n",
        },
    )

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)

    git("init", "-q")
    git("add", "-A")
    git("add", "-f", "local.d/options.inc", "conf.d/fts.conf", "local-only/kept.yaml")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "shipped defaults")
    write_tree(root, {"local.d/mine.inc": "y = 2;\n", "scratch.tmp": "x", "local-only/new.yaml": "d: 4\n"})
    assert rels(walk_tree(root)) == ["a.yaml", "conf.d/fts.conf", "local-only/kept.yaml", "local.d/options.inc"]
    # a tree inside a larger repository (a fixture, kb's own sample): its .gitignore holds for all
    write_tree(root, {"sample/.gitignore": "*.tmp\n", "sample/b.yaml": "b: 1\n", "sample/left.tmp": "x"})
    git("add", "-f", "sample")
    git("-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "a sample tree")
    assert "sample/left.tmp" in rels(walk_tree(root))
    assert rels(walk_tree(root / "sample")) == ["b.yaml"]
    # the same files without git: .gitignore is all there is to go by
    shutil.rmtree(root / ".git")
    assert rels(walk_tree(root)) == ["a.yaml", "sample/b.yaml"]
