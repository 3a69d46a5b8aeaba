"""Issue 22, item 5: `kb serve` answers loopback Host names only, unless told otherwise."""

from __future__ import annotations

import pytest

from kb.api.app import allowed_hosts_for, create_app


@pytest.fixture
def client_for(make_settings):
    from litestar.testing import TestClient

    def make(bind: str, extra: tuple[str, ...] = ()):
        app = create_app(make_settings(), allowed_hosts=allowed_hosts_for(bind, extra))
        return TestClient(app)

    return make


@pytest.mark.parametrize("host", ["localhost:8000", "127.0.0.1:8000", "[::1]:8000", "localhost"])
def test_loopback_names_are_answered(client_for, host):
    with client_for("127.0.0.1") as c:
        assert c.get("/files", headers={"host": host}).status_code == 200


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8000", "localhost.evil.example", "127.0.0.1.nip.io"])
def test_a_rebound_name_gets_a_400_that_says_how_to_allow_it(client_for, host):
    with client_for("127.0.0.1") as c:
        res = c.get("/files", headers={"host": host})
    assert res.status_code == 400 and "--allow-host" in res.json()["detail"]


def test_allow_host_and_all_interfaces(client_for):
    with client_for("127.0.0.1", ("kb.internal.example",)) as c:
        assert c.get("/files", headers={"host": "kb.internal.example:8000"}).status_code == 200
    assert allowed_hosts_for("0.0.0.0") is None
    assert "10.0.0.5" in (allowed_hosts_for("10.0.0.5") or [])
