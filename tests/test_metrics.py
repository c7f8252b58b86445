"""Prometheus metrics (issue 13): counted in every gunicorn worker, added up by prometheus_client's
multiprocess mode, served at ``{prefix}/metrics`` to ``metrics_allow`` addresses only."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from webtest import TestApp

from qqgate.middleware import QQGate

from .conftest import make_settings
from .live import session_token
from .operated import gate_ini, served_gate
from .servers import free_port
from .test_e2e import HTML
from .test_proxy import start_upstream


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def _value(samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _pids(directory: Path) -> set[str]:
    return {path.stem.rsplit("_", 1)[-1] for path in directory.glob("counter_*.db")}


def test_counts_add_up_across_two_workers(tmp_path) -> None:
    upstream = start_upstream()
    port = free_port()
    config = gate_ini(tmp_path, port, 9, upstream=upstream.url, metrics_allow="127.0.0.1")
    prom = tmp_path / "prom"
    prom.mkdir()
    gate = served_gate(config, port, workers=2, PROMETHEUS_MULTIPROC_DIR=str(prom)).start()
    token = session_token("A" * 32, "n")
    try:
        # Until both workers have counted something: each request on a new connection.
        sent = 0
        while len(_pids(prom)) < 2 and sent < 300:
            requests.get(f"{gate.url}/api", headers={"Accept": "application/json"}, timeout=30)
            sent += 1
        assert len(_pids(prom)) == 2, "one worker took every request"
        for _ in range(5):
            page = requests.get(f"{gate.url}/page", headers=HTML, allow_redirects=False)
            assert page.status_code == 302
        for _ in range(7):
            answer = requests.get(f"{gate.url}/", cookies={"qqgate": token}, timeout=30)
            assert answer.status_code == 200
        text = requests.get(f"{gate.url}/_qqgate/metrics", timeout=30)
        assert text.status_code == 200 and text.headers["Content-Type"].startswith("text/plain")
        samples = _samples(text.text)
    finally:
        gate.stop()
        upstream.stop()
    assert _value(samples, "qqgate_challenges_total", status="401") == sent
    assert _value(samples, "qqgate_challenges_total", status="302") == 5
    assert _value(samples, "qqgate_upstream_response_seconds_count", status_class="2xx") == 7
    assert _value(samples, "qqgate_proxied_requests_in_flight") == 0
    lookups = _value(samples, "qqgate_token_cache_lookups_total", result="miss")
    assert 1 <= lookups <= 7  # hits reach the metrics in batches


@pytest.mark.parametrize(
    ("allow", "environ", "status"),
    [
        pytest.param("", {"REMOTE_ADDR": "127.0.0.1"}, 404, id="disabled"),
        pytest.param("10.0.0.0/8", {"REMOTE_ADDR": "10.1.2.3"}, 200, id="allowed"),
        pytest.param("10.0.0.0/8", {"REMOTE_ADDR": "192.0.2.1"}, 403, id="not-allowed"),
        pytest.param(
            "127.0.0.1",
            {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "127.0.0.1"},
            403,
            id="through-an-untrusted-proxy",
        ),
    ],
)
def test_only_metrics_allow_reads_the_metrics(allow, environ, status) -> None:
    app = TestApp(QQGate(lambda e, s: [], make_settings(metrics_allow=allow)))
    answer = app.get("/_qqgate/metrics", extra_environ=environ, status=status)
    if status == 200:
        assert "qqgate_sign_ins_total" in answer.text or "qqgate_sign_ins" in answer.text


def test_behind_a_trusted_proxy_the_visitor_address_decides() -> None:
    settings = make_settings(metrics_allow="10.0.0.0/8", trusted_proxies="127.0.0.1")
    app = TestApp(QQGate(lambda e, s: [], settings))
    local = {"REMOTE_ADDR": "127.0.0.1"}
    app.get("/_qqgate/metrics", extra_environ=local, headers={"X-Forwarded-For": "10.0.0.5"})
    outside = {"X-Forwarded-For": "10.0.0.5, 203.0.113.9"}
    app.get("/_qqgate/metrics", extra_environ=local, headers=outside, status=403)


def test_metrics_are_created_once_by_racing_threads(monkeypatch) -> None:
    from qqgate import metrics

    calls = []

    def slow_new_metrics() -> object:
        calls.append(1)
        time.sleep(0.05)  # long enough for every thread to arrive meanwhile
        return object()

    monkeypatch.setattr(metrics, "_created", None)
    monkeypatch.setattr(metrics, "_new_metrics", slow_new_metrics)
    barrier = threading.Barrier(8)
    seen = []

    def first_request() -> None:
        barrier.wait()
        seen.append(metrics.get())

    threads = [threading.Thread(target=first_request) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert len(calls) == 1 and len(seen) == 8 and len({id(m) for m in seen}) == 1
