"""Reliability under load, with real processes on loopback. Each test prints its figures.

Sized for CI on 2 cores: every loop is bounded in count and time, and every server is started and
stopped by the test itself.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import unquote

import requests

from qqgate.dev.fakeqq import openid_for

from .conftest import APP_ID, APP_KEY
from .live import gate_env, session_token
from .servers import Gunicorn, free_port
from .test_e2e import HTML, approve
from .test_proxy import start_gate, start_upstream

CLIENTS = 50
SIGN_INS = 300


def _provider_and_gate(provider_env: dict[str, str] | None = None, **settings: str):
    """The development provider (in its own process, registered for the gate's callback) and the
    sample app behind a gate with two workers."""
    port = free_port()
    env = {
        "FAKEQQ_APP_ID": APP_ID,
        "FAKEQQ_APP_KEY": APP_KEY,
        "FAKEQQ_EXTRA_USERS": str(CLIENTS),
        "FAKEQQ_REDIRECT_URI": f"http://127.0.0.1:{port}/_qqgate/callback",
        **(provider_env or {}),
    }
    provider = Gunicorn("qqgate.dev.fakeqq:create_app()", env, workers=1, threads=32).start()
    try:
        gate = Gunicorn(
            "qqgate.dev.sample:gated_sample()",
            gate_env(port, provider.port, **settings),
            port=port,
            workers=2,
            threads=8,
        ).start()
    except Exception:
        provider.stop()
        raise
    return provider, gate


# What a slow machine may cause (QQ too slow for the gate's timeout, a connection dropped) and a
# person would answer by trying again. Anything else, a 500 above all, is a failure.
TRANSIENT = {502, 504}
TRIES = 3


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.statuses: Counter[int] = Counter()
        self.mixups = 0
        self.requests = 0
        self.retries = 0
        self.failures: list[str] = []

    def record(self, response: requests.Response) -> None:
        with self.lock:
            for step in [*response.history, response]:
                self.statuses[step.status_code] += 1
                self.requests += 1

    def report(self, title: str) -> str:
        errors = {code: n for code, n in sorted(self.statuses.items()) if code >= 400}
        return (
            f"\n{title}: requests={self.requests} statuses={dict(sorted(self.statuses.items()))} "
            f"errors={errors} retries={self.retries} mix-ups={self.mixups} failures={self.failures}"
        )


def _sign_in_once(tally: Tally, browser: requests.Session, url: str, user: str) -> dict | None:
    """One sign-in as a browser does it; the page's echo, or None after a transient failure."""
    try:
        consent = browser.get(url, headers=HTML, timeout=60)
        tally.record(consent)
        if consent.status_code in TRANSIENT:
            return None
        page = approve(browser, consent, user)
    except (requests.ConnectionError, requests.Timeout):
        return None
    tally.record(page)
    if page.status_code in TRANSIENT:
        return None
    assert page.status_code == 200, f"{user}: {page.status_code} {page.text[:300]}"
    return page.json()


def test_concurrent_sign_ins_never_mix_up_users() -> None:
    """Fifty browsers sign in six times each at once, through a provider with 0-200 ms latency.
    A slow machine may make a step fail with 502/504; the browser then starts that sign-in again,
    as a person would. Every sign-in must end as the user who started it, and nothing may 500."""
    provider, gate = _provider_and_gate({"FAKEQQ_LATENCY_MS": "0-200"}, timeout="10")
    tally = Tally()

    def client(index: int) -> requests.Session:
        user = f"user{index + 1:03d}"
        browser = requests.Session()
        # One connection per request: gunicorn closes idle keep-alive connections after 2 s, and a
        # client that reuses one at that instant sees a reset (a browser retries; requests does not).
        browser.headers["Connection"] = "close"
        for round_ in range(SIGN_INS // CLIENTS):
            if round_:
                tally.record(browser.post(f"{gate.url}/_qqgate/logout", timeout=60))
            url = f"{gate.url}/headers.json?client={index}"
            for _attempt in range(TRIES):
                seen = _sign_in_once(tally, browser, url, user)
                if seen is not None:
                    break
                with tally.lock:
                    tally.retries += 1
            else:
                with tally.lock:
                    tally.failures.append(f"{user} round {round_}: {TRIES} tries failed")
                continue
            if (
                seen["identity"]["openid"] != openid_for(APP_ID, user)
                or unquote(seen["headers"]["HTTP_X_QQ_NICKNAME"]) != f"测试用户{index + 1:03d}🐧"
            ):
                with tally.lock:
                    tally.mixups += 1
        return browser

    try:
        started = time.monotonic()
        with ThreadPoolExecutor(CLIENTS) as pool:
            browsers = list(pool.map(client, range(CLIENTS)))
        elapsed = time.monotonic() - started
        # Afterwards every client still is who it signed in as.
        for index, browser in enumerate(browsers):
            seen = browser.get(f"{gate.url}/headers.json", timeout=60).json()
            if seen["identity"]["openid"] != openid_for(APP_ID, f"user{index + 1:03d}"):
                tally.mixups += 1
        calls = requests.get(f"{provider.url}/_fake/calls", timeout=60).json()
    finally:
        gate.stop()
        provider.stop()
    report = tally.report(f"{SIGN_INS} sign-ins from {CLIENTS} clients in {elapsed:.1f} s")
    print(report, f"provider calls={calls}")
    assert tally.mixups == 0, report
    assert set(tally.statuses) <= {200, 302} | TRANSIENT, report
    assert not tally.failures, report
    # Each sign-in that got through asked QQ three times; a retried one may have asked more.
    if tally.retries == 0:
        assert calls["token"] == calls["me"] == calls["user_info"] == SIGN_INS, calls
    else:
        assert calls["token"] >= calls["me"] >= calls["user_info"] >= SIGN_INS, calls


def test_signed_in_traffic_needs_no_qq() -> None:
    provider, gate = _provider_and_gate()
    try:
        browser = requests.Session()
        consent = browser.get(f"{gate.url}/headers.json", headers=HTML, timeout=10)
        assert approve(browser, consent, "xiaoming").status_code == 200
        requests.post(f"{provider.url}/_fake/reset", timeout=10)
        statuses = Counter(
            browser.get(f"{gate.url}/headers.json", timeout=10).status_code for _ in range(100)
        )
        calls = requests.get(f"{provider.url}/_fake/calls", timeout=10).json()
        provider.stop()
        statuses_without_qq = Counter(
            browser.get(f"{gate.url}/headers.json", timeout=10).status_code for _ in range(100)
        )
    finally:
        gate.stop()
        provider.stop() if provider.process.poll() is None else None
    print(
        f"\nsigned-in requests: with provider {dict(statuses)}, provider calls {calls}; provider stopped {dict(statuses_without_qq)}"
    )
    assert statuses == {200: 100} and statuses_without_qq == {200: 100}
    assert sum(calls.values()) == 0, calls


def test_upstream_restart_under_load_gives_502_then_recovers(tmp_path) -> None:
    upstream = start_upstream()
    gate = start_gate(tmp_path, upstream.url, workers=1)
    headers = {"Cookie": f"qqgate={session_token()}"}
    tally = Tally()
    latencies: list[float] = []
    stop = threading.Event()

    def load() -> None:
        session = requests.Session()
        while not stop.is_set():
            started = time.monotonic()
            response = session.get(f"{gate.url}/echo", headers=headers, timeout=10)
            latencies.append(time.monotonic() - started)
            tally.record(response)

    threads = [threading.Thread(target=load) for _ in range(8)]
    try:
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        upstream.stop()
        time.sleep(1.0)
        upstream = start_upstream(upstream.port)
        time.sleep(1.0)
        stop.set()
        for thread in threads:
            thread.join(timeout=15)
        after = [
            requests.get(f"{gate.url}/echo", headers=headers, timeout=10).status_code
            for _ in range(20)
        ]
    finally:
        stop.set()
        gate.stop()
        upstream.stop()
    print(
        tally.report("proxy traffic across an upstream restart"),
        f"max latency={max(latencies):.2f} s",
    )
    assert set(tally.statuses) <= {200, 502}, tally.statuses
    assert tally.statuses[502] > 0 and tally.statuses[200] > 0
    assert max(latencies) < 5, "a request hung while the upstream was down"
    assert after == [200] * 20


def test_worker_restart_loses_no_session(tmp_path) -> None:
    upstream = start_upstream()
    gate = start_gate(tmp_path, upstream.url, workers=2)
    headers = {"Cookie": f"qqgate={session_token()}"}
    try:
        assert requests.get(f"{gate.url}/echo", headers=headers, timeout=10).status_code == 200
        before = _children(gate.process.pid)
        os.kill(gate.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            now = _children(gate.process.pid)
            if len(now) == 2 and not (now & before):
                break
            time.sleep(0.1)
        else:
            raise AssertionError("gunicorn did not replace its workers after SIGHUP")
        statuses = Counter(
            requests.get(f"{gate.url}/echo", headers=headers, timeout=10).status_code
            for _ in range(20)
        )
    finally:
        gate.stop()
        upstream.stop()
    print(f"\nafter kill -HUP (workers {sorted(before)} -> {sorted(now)}): {dict(statuses)}")
    assert statuses == {200: 20}


def _children(pid: int) -> set[int]:
    from .test_proxy import _worker_pids

    return set(_worker_pids(pid))
