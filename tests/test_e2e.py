"""End to end over real sockets: the development provider and the gate under gunicorn, a browser-like
``requests.Session`` that follows redirects, and the demo command as a new user would run it."""

from __future__ import annotations

import subprocess
import sys
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
import requests

from qqgate.dev.fakeqq import openid_for

from .conftest import APP_ID
from .live import start_gate
from .servers import ROOT, free_port_pair, wait_for_port

HTML = {"Accept": "text/html,application/xhtml+xml"}


@pytest.fixture(scope="module")
def gate(provider):
    gate = start_gate(provider, workers=2)
    try:
        yield gate
    finally:
        gate.server.stop()


def approve(browser: requests.Session, consent: requests.Response, user: str) -> requests.Response:
    """Click "approve" on the provider's page, as a person would."""
    assert consent.status_code == 200 and f'id="approve-{user}"' in consent.text
    fields = {k: v[0] for k, v in parse_qs(urlsplit(consent.url).query).items()}
    form = {name: fields[name] for name in ("client_id", "redirect_uri", "state", "scope")}
    action = f"{consent.url.split('/oauth2.0/')[0]}/oauth2.0/authorize"
    return browser.post(action, data={**form, "user": user}, headers=HTML, timeout=10)


def sign_in(
    base_url: str, path: str = "/private?x=1", user: str = "xiaoming"
) -> tuple[requests.Session, requests.Response]:
    browser = requests.Session()
    consent = browser.get(base_url + path, headers=HTML, timeout=10)
    assert urlsplit(consent.url).path == "/oauth2.0/authorize", consent.url
    return browser, approve(browser, consent, user)


def test_sign_in_through_real_gunicorn(gate) -> None:
    browser, page = sign_in(gate.url)
    openid = openid_for(APP_ID, "xiaoming")
    assert page.status_code == 200
    assert page.url == f"{gate.url}/private?x=1"
    assert "小明🐧" in page.text and openid in page.text
    callback = next(r for r in page.history if r.url.startswith(f"{gate.url}/_qqgate/callback"))
    assert callback.headers["Referrer-Policy"] == "no-referrer"

    seen = browser.get(f"{gate.url}/headers.json", timeout=10).json()
    assert seen["headers"]["HTTP_X_QQ_OPENID"] == openid
    assert unquote(seen["headers"]["HTTP_X_QQ_NICKNAME"]) == "小明🐧"
    assert seen["remote_user"] == openid
    assert seen["identity"]["nickname"] == "小明🐧"
    assert browser.get(f"{gate.url}/_qqgate/userinfo", timeout=10).json()["openid"] == openid


def test_spoofed_headers_never_reach_the_app(gate) -> None:
    spoof = {"X-QQ-OpenID": "SPOOF", "X-QQ-Nickname": "SPOOF", "Remote-User": "SPOOF"}
    anonymous = requests.get(f"{gate.url}/healthz", headers=spoof, timeout=10)
    assert anonymous.status_code == 200 and "SPOOF" not in anonymous.text
    browser, _ = sign_in(gate.url, user="alice")
    seen = browser.get(f"{gate.url}/headers.json", headers=spoof, timeout=10).json()
    assert seen["headers"]["HTTP_X_QQ_OPENID"] == openid_for(APP_ID, "alice")
    assert "SPOOF" not in str(seen)


def test_api_clients_get_401_and_logout_ends_the_session(gate) -> None:
    response = requests.get(
        f"{gate.url}/api/data", headers={"Accept": "application/json"}, timeout=10
    )
    assert response.status_code == 401 and response.json()["error"] == "login_required"
    browser, _ = sign_in(gate.url)
    assert browser.get(f"{gate.url}/api/data", timeout=10).status_code == 200
    assert browser.post(f"{gate.url}/_qqgate/logout", timeout=10).status_code == 200
    assert browser.get(f"{gate.url}/api/data", timeout=10).status_code == 401


def test_cancel_at_the_provider_gives_a_clear_page(gate) -> None:
    browser = requests.Session()
    consent = browser.get(f"{gate.url}/private", headers=HTML, timeout=10)
    fields = {k: v[0] for k, v in parse_qs(urlsplit(consent.url).query).items()}
    form = {name: fields[name] for name in ("client_id", "redirect_uri", "state", "scope")}
    action = f"{consent.url.split('/oauth2.0/')[0]}/oauth2.0/authorize"
    page = browser.post(action, data={**form, "cancel": "1"}, headers=HTML, timeout=10)
    assert page.status_code == 400 and "cancelled" in page.text


def test_replaying_the_callback_url_does_not_sign_in_again(gate) -> None:
    _, page = sign_in(gate.url)
    callback_url = next(r.url for r in page.history if "/_qqgate/callback" in r.url)
    replay = requests.get(callback_url, headers=HTML, timeout=10)
    assert replay.status_code == 400 and "qqgate=" not in replay.headers.get("Set-Cookie", "")


def test_demo_command_signs_a_user_in() -> None:
    port = free_port_pair()
    process = subprocess.Popen(
        [sys.executable, "-m", "qqgate.cli", "demo", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_port(port, process)
        wait_for_port(port + 1, process)
        _, page = sign_in(f"http://127.0.0.1:{port}", "/")
        assert page.status_code == 200 and "小明🐧" in page.text
        assert openid_for(APP_ID, "xiaoming") in page.text
    finally:
        process.terminate()
        output, _ = process.communicate(timeout=10)
    assert process.returncode == 0, "the demo should stop cleanly on SIGTERM"
    assert f"http://127.0.0.1:{port}/" in output.decode()
