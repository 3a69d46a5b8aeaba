from __future__ import annotations

from pathlib import Path

import pytest

from kb.errors import ConfigError
from kb.settings import Settings


def test_layers_defaults_pyproject_env_overrides(tmp_path: Path):
    pp = tmp_path / "pyproject.toml"
    pp.write_text('[tool.kb]\nmax_file_size = 100\nknown_env = ["CI_TOKEN"]\nmodel = "from-pyproject"\nworkers = 3\n')
    s = Settings.load(pyproject=pp, environ={})
    assert (s.max_file_size, s.known_env, s.model, s.db) == (100, ["CI_TOKEN"], "from-pyproject", Path(".kb"))
    s = Settings.load(pyproject=pp, environ={"KB_MODEL": "hash", "KB_EMBED": "0", "KB_KNOWN_ENV": "A,B"})
    assert (s.model, s.embed, s.known_env, s.workers) == ("hash", False, ["A", "B"], 3)
    s = Settings.load({"model": "flag", "workers": None}, pyproject=pp, environ={"KB_MODEL": "hash"})
    assert s.model == "flag" and s.workers == 3


def test_bad_settings_say_how_to_fix(tmp_path: Path):
    with pytest.raises(ConfigError, match="Unknown setting 'modle'. Known settings:"):
        Settings.load({"modle": "x"}, pyproject=tmp_path / "none.toml", environ={})
    with pytest.raises(ConfigError, match="max_file_size' expects int"):
        Settings.load(pyproject=tmp_path / "none.toml", environ={"KB_MAX_FILE_SIZE": "big"})
    pp = tmp_path / "pyproject.toml"
    pp.write_text("[tool.kb\n")
    with pytest.raises(ConfigError, match="Fix the TOML syntax"):
        Settings.load(pyproject=pp, environ={})


def test_every_setting_is_documented():
    docs = Settings.documentation()
    assert set(docs) == set(Settings.model_fields)
    assert all(len(d) > 10 for d in docs.values())


def test_constructing_settings_reads_no_environment_and_replace_validates(monkeypatch):
    monkeypatch.setenv("KB_MODEL", "from-env")
    assert Settings().model == "all-MiniLM-L6-v2"  # only load() reads the layers
    assert Settings.load(pyproject=Path("/nonexistent/pyproject.toml")).model == "from-env"
    s = Settings(workers=1).replace(workers="3", known_env="A, B")
    assert (s.workers, s.known_env) == (3, ["A", "B"])
    with pytest.raises(ConfigError, match="workers' expects int"):
        Settings().replace(workers="many")
