"""The README documents every command, every setting and the two commands (datasette's test_docs)."""

from __future__ import annotations

import re
from pathlib import Path

from kb.cli import _discover, cli
from kb.settings import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")


def test_readme_documents_every_command():
    _discover(cli)
    missing = []
    for name, cmd in cli.commands.items():
        subs = getattr(cmd, "commands", None)
        names = [f"kb {name} {s}" for s in subs] if subs else [f"kb {name}"]
        missing += [n for n in names if f"`{n}" not in README]
    assert not missing, f"README lacks: {missing}"


def test_readme_documents_every_setting():
    missing = [name for name in Settings.model_fields if not re.search(rf"\| `{name}` \| `KB_{name.upper()}`", README)]
    assert not missing, f"README settings table lacks: {missing}"


def test_readme_gives_the_two_commands_and_ci_runs_the_test_command():
    assert "make demo" in README and "make test" in README
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    assert "make test" in ci
