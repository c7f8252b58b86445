"""``{prefix}/ready`` (issue 13): 200 when the gate can serve, 503 with a JSON reason when its
upstream does not accept connections; ``ping`` stays the liveness check and touches no network."""

from __future__ import annotations

import requests
from webtest import TestApp

from qqgate.middleware import QQGate
from qqgate.readiness import upstream_problem

from .conftest import LoopbackServer, make_settings
from .servers import free_port
from .test_proxy import start_gate, start_upstream


def _gate(**settings: str) -> TestApp:
    return TestApp(QQGate(lambda e, s: [], make_settings(**settings)))


def test_ready_without_an_upstream() -> None:
    answer = _gate().get("/_qqgate/ready", status=200)
    assert answer.json == {"status": "ready", "upstream": None}
    assert answer.headers["Cache-Control"] == "no-store"


def test_ready_when_the_upstream_accepts_a_connection() -> None:
    with LoopbackServer(lambda e, s: []) as upstream:
        answer = _gate(upstream=upstream.url).get("/_qqgate/ready", status=200)
    assert answer.json["status"] == "ready"


def test_not_ready_when_the_upstream_refuses() -> None:
    port = free_port()  # nothing listens there
    answer = _gate(upstream=f"http://127.0.0.1:{port}").get("/_qqgate/ready", status=503)
    assert answer.json["status"] == "not_ready"
    assert f"upstream 127.0.0.1:{port} refused or unreachable" in answer.json["reason"]
    assert answer.headers["Content-Type"].startswith("application/json")
    # Liveness never looks at the upstream.
    assert _gate(upstream=f"http://127.0.0.1:{port}").get("/_qqgate/ping").text == "ok\n"


def test_no_upstream_is_no_problem() -> None:
    assert upstream_problem(None) is None


def test_ready_through_real_gunicorn(tmp_path) -> None:
    upstream = start_upstream()
    gate = start_gate(tmp_path, upstream.url)
    try:
        assert requests.get(f"{gate.url}/_qqgate/ready", timeout=30).status_code == 200
        upstream.stop()
        answer = requests.get(f"{gate.url}/_qqgate/ready", timeout=30)
        assert answer.status_code == 503 and "refused" in answer.json()["reason"]
        assert requests.get(f"{gate.url}/_qqgate/ping", timeout=30).text == "ok\n"
    finally:
        gate.stop()
        upstream.stop()  # again if the test stopped it: never left running
