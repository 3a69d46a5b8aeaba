"""Reading the change log (kb/changelog.py): filters, order, since, moves, one key's history."""

from __future__ import annotations

import os
from datetime import datetime, timedelta

import pytest

from kb.changelog import key_history, parse_since, query_changes
from kb.errors import BadRequestError, NotIndexedError


def bump(path, text):
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    os.utime(path, (st.st_atime, st.st_mtime + 5))


@pytest.fixture
def logged(make_tree, ingest, settings):
    """A KB with three runs: the baseline, then two runs of edits."""
    root = make_tree(
        {
            "services/pay/prod.yaml": "database:\n  timeout: 30\n  host: db\nfraud:\n  threshold: 0.8\n",
            "services/pay/.env": "LOG_LEVEL=info\nHTTP_TIMEOUT=5\n",
            "services/ord/prod.yaml": "database:\n  timeout: 10\n",
        }
    )
    cat, r1 = ingest(root)
    bump(root / "services/pay/prod.yaml", "database:\n  timeout: 60\n  host: db\nfraud:\n  threshold: 0.9\n")
    bump(root / "services/pay/.env", "LOG_LEVEL=debug\nHTTP_TIMEOUT=5\n")
    cat, r2 = ingest(root)
    bump(root / "services/ord/prod.yaml", "database:\n  timeout: 20\n  ssl: true\n")
    cat, r3 = ingest(root)
    return cat, settings.replace(root=root), (r1.run_id, r2.run_id, r3.run_id)


def keys(changes):
    return [(c.run_id, c.path, c.key_path, c.change) for c in changes]


def test_changes_come_newest_first(logged):
    cat, _, (_, r2, r3) = logged
    total, got = query_changes(cat)
    assert total == 5
    assert keys(got) == [
        (r3, "services/ord/prod.yaml", "database.timeout", "changed"),
        (r3, "services/ord/prod.yaml", "database.ssl", "added"),
        (r2, "services/pay/.env", "LOG_LEVEL", "changed"),
        (r2, "services/pay/prod.yaml", "database.timeout", "changed"),
        (r2, "services/pay/prod.yaml", "fraud.threshold", "changed"),
    ]
    total, page = query_changes(cat, limit=2, offset=2)
    assert total == 5 and keys(page) == keys(got)[2:4]


def test_key_filters_exact_with_descendants_and_patterns(logged):
    cat, _, _ = logged
    assert [c.key_path for c in query_changes(cat, key="database")[1]] == [
        "database.timeout",
        "database.ssl",
        "database.timeout",
    ]
    assert [c.key_path for c in query_changes(cat, key="database.timeout")[1]] == ["database.timeout"] * 2
    assert [c.key_path for c in query_changes(cat, key="*timeout*")[1]] == ["database.timeout"] * 2
    assert [c.key_path for c in query_changes(cat, key="LOG_?EVEL")[1]] == ["LOG_LEVEL"]
    assert query_changes(cat, key="data")[0] == 0  # a prefix of a key name is not its parent
    assert query_changes(cat, key="*_*")[0] == 1  # '_' is literal in a pattern, not SQL's any-character


def test_path_filters_file_folder_glob(logged):
    cat, _, _ = logged
    assert query_changes(cat, path="services/pay/prod.yaml")[0] == 2
    assert query_changes(cat, path="services/pay")[0] == 3
    assert query_changes(cat, path="services/pay/")[0] == 3
    assert query_changes(cat, path="services/*/prod.yaml")[0] == 4
    assert query_changes(cat, path="./services/ord/prod.yaml", key="*ssl*", change="added")[0] == 1


def test_since_takes_a_run_a_date_or_an_age(logged):
    cat, _, (_, r2, r3) = logged
    assert {c.run_id for c in query_changes(cat, since=str(r3))[1]} == {r3}
    assert query_changes(cat, since=r2)[0] == 5
    assert query_changes(cat, since="1d")[0] == 5
    future = (datetime.utcnow() + timedelta(days=2)).strftime("%Y-%m-%d")
    assert query_changes(cat, since=future)[0] == 0
    assert query_changes(cat, since="2000-01-01T00:00:00+02:00")[0] == 5
    for bad in ("last tuesday", "0001-01-01T00:00:00+01:00", "99999999999w", "2024-13-01"):
        with pytest.raises(BadRequestError, match="7d"):
            query_changes(cat, since=bad)
    with pytest.raises(BadRequestError, match="added"):
        query_changes(cat, change="renamed")


def test_parse_since_units():
    now = datetime(2024, 5, 10, 12, 0, 0)
    assert parse_since("12") == ("run", 12)
    assert parse_since("7d", now=now) == ("time", datetime(2024, 5, 3, 12, 0, 0))
    assert parse_since("2w", now=now) == ("time", datetime(2024, 4, 26, 12, 0, 0))
    assert parse_since("90m", now=now) == ("time", datetime(2024, 5, 10, 10, 30, 0))
    assert parse_since("2024-05-01") == ("time", datetime(2024, 5, 1))
    assert parse_since("2024-05-01T12:00:00Z") == ("time", datetime(2024, 5, 1, 12))
    assert parse_since(None) is None


def test_key_history(logged):
    cat, settings, (_, r2, _) = logged
    h = key_history(cat, settings, "services/pay/prod.yaml", "database.timeout")
    assert (h.value, h.line, h.exists, h.paths) == ("60", 2, True, [])
    assert [(c.run_id, c.old_value, c.new_value) for c in h.history] == [(r2, "30", "60")]
    assert h.commit is None  # not a git work tree
    h = key_history(cat, settings, "services/pay/prod.yaml", "database.host")
    assert h.exists and h.history == []


def test_key_history_errors_say_what_to_do(logged):
    cat, settings, _ = logged
    with pytest.raises(NotIndexedError, match="Keys like it: database.timeout"):
        key_history(cat, settings, "services/pay/prod.yaml", "database.timeou")
    with pytest.raises(NotIndexedError, match="Did you mean: services/ord/prod.yaml"):
        key_history(cat, settings, "prod.yaml", "x")
    with pytest.raises(BadRequestError):
        key_history(cat, settings, "services/pay/prod.yaml", "  ")


def test_a_removed_key_still_has_a_history(make_tree, ingest, settings):
    root = make_tree({"a.yaml": "x: 1\ny: 2\n"})
    cat, _ = ingest(root)
    bump(root / "a.yaml", "y: 2\n")
    cat, _ = ingest(root)
    h = key_history(cat, settings.replace(root=root), "a.yaml", "x")
    assert not h.exists and h.value is None and [c.change for c in h.history] == ["removed"]


def test_a_kb_without_a_change_log_answers_empty(logged):
    cat, _, _ = logged
    cat.query("DROP TABLE changes")  # a KB built before the change log existed
    assert query_changes(cat) == (0, [])
    with pytest.raises(BadRequestError):
        query_changes(cat, since="never")
