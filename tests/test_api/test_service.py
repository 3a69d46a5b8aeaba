"""The pieces behind the routes: the ingest worker, reads during a re-ingest, the metrics registry,
the watcher's filter."""

from __future__ import annotations

import threading
import time

import pytest

from kb.api.metrics import Metrics
from kb.api.service import IngestWorker, KBService


def test_ingest_worker_coalesces_requests():
    started = threading.Event()
    release = threading.Event()
    runs: list[int] = []

    def run():
        runs.append(len(runs))
        started.set()
        release.wait(5)
        return len(runs)

    w = IngestWorker(run)  # type: ignore[arg-type]
    first = w.submit()
    started.wait(2)
    assert w.busy
    follow = [w.submit() for _ in range(5)]
    assert all(f is follow[0] for f in follow) and follow[0] is not first
    release.set()
    assert first.result(5) == 1 and follow[0].result(5) == 2
    assert len(runs) == 2
    assert w.stop(5)


def test_ingest_worker_hands_errors_to_the_waiter():
    def run():
        raise ValueError("nope")

    w = IngestWorker(run)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nope"):
        w.submit().result(5)
    assert w.stop(5)


def test_readers_see_the_published_generation_until_the_writer_publishes(fresh, make_settings, monkeypatch):
    """A re-ingest writes a private copy; readers keep the published generation, never wait, and
    see the new one as soon as it is published."""
    import kb.ingest.pipeline

    root, db = fresh
    svc = KBService(make_settings(db=db, root=root, api_key="k"))
    svc.open()
    try:
        before = svc.ready().counts()["findings"]
        gen = svc.generation
        committed, release = threading.Event(), threading.Event()

        def fake_run_ingest(catalogue, settings, progress=None, **_kwargs):
            catalogue.query("INSERT INTO findings VALUES ('x', 'info', 'a', 1, 'm', NULL, NULL, 'ingest')")
            committed.set()
            release.wait(5)
            from kb.types import RunSummary

            return RunSummary(run_id=99, root=str(root), started_at="now", status="complete")

        monkeypatch.setattr(kb.ingest.pipeline, "run_ingest", fake_run_ingest)
        fut = svc.request_ingest()
        assert committed.wait(5)
        t0 = time.perf_counter()
        # the writer has written its copy; readers still see the old state
        assert svc.ready().counts()["findings"] == before
        assert time.perf_counter() - t0 < 1.0  # and did not wait for the writer
        assert svc.generation == gen
        release.set()
        assert fut.result(10).run_id == 99
        assert svc.ready().counts()["findings"] == before + 1
        assert svc.generation > gen
    finally:
        svc.close()


def test_metrics_render_request_metrics_and_gauges():
    from litestar import Litestar, get
    from litestar.testing import TestClient

    @get("/ping", sync_to_thread=False)
    def ping() -> str:
        return "pong"

    m = Metrics(lambda: {"kb_index_files": ("Files.", 3)}, buckets=(0.1, 1.0))
    with TestClient(Litestar([ping], middleware=[m.middleware])) as client:
        client.get("/ping")
        client.get("/ping")
    text = m.render().decode()
    labels = 'app_name="kb",method="GET",path="/ping"'
    assert f'kb_http_requests_total{{{labels},status_code="200"}} 2.0' in text
    assert (
        'kb_http_request_duration_seconds_bucket{app_name="kb",le="1.0",method="GET",path="/ping",'
        'status_code="200"} 2.0' in text
    )
    assert f'kb_http_request_duration_seconds_count{{{labels},status_code="200"}} 2.0' in text
    assert "# TYPE kb_index_files gauge\nkb_index_files 3.0" in text


def test_watcher_ignores_the_kb_directory(tmp_path):
    from watchfiles import Change

    from kb.api.watch import Watcher

    w = Watcher(tmp_path, on_change=lambda: None, ignore=[tmp_path / ".kb"])
    f = w._filter()
    assert f(Change.modified, str(tmp_path / "a.yaml"))
    assert not f(Change.modified, str(tmp_path / ".kb" / "catalogue.duckdb.wal"))
    assert not f(Change.modified, str(tmp_path / ".git" / "index"))
    assert not f(Change.modified, str(tmp_path / "a.yaml.swp"))
