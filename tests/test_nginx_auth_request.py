"""deploy/nginx-auth-request.conf, the exact server block, against a real nginx with the gate under
gunicorn and a real app: the same answers as proxy mode (the gate's 302, JSON 401 and 403 page, the
denial logged once, the gate's cookies kept from the app), a full sign-in, and WebSockets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from qqgate.dev.fakeqq import openid_for

from .conftest import APP_ID, APP_KEY
from .fronts import Front, binary, nginx_auth_request
from .live import Provider, session_token, signed_in, write_gate_ini
from .rig import OPENID
from .servers import Gunicorn, free_port
from .test_e2e import HTML, approve
from .test_proxy import start_upstream

XIAOMING = openid_for(APP_ID, "xiaoming")
JSON = {"Accept": "application/json"}
SPOOF = {"X-QQ-OpenID": "SPOOFED", "X-QQ_OpenID": "SPOOFED", "Remote-User": "SPOOFED"}


@dataclass
class Stack:
    nginx: Front
    gate: Gunicorn
    app: Gunicorn

    @property
    def url(self) -> str:
        return self.nginx.url

    def stop(self) -> str:
        """Stop all three; return what the gate logged."""
        self.nginx.stop()
        self.app.stop()
        return self.gate.stop()


def start_stack(directory: Path, app: Gunicorn, provider: Provider, **settings: str) -> Stack:
    """nginx (the shipped block) in front of ``app``, asking a gate that signs in through the
    development provider and lets only xiaoming in."""
    listen, gate_port = free_port(), free_port()
    extra = {
        "app_key": APP_KEY,
        "qq_base_url": f"http://localhost:{provider.port}",
        "allowed_openids": XIAOMING,
        **settings,
    }
    config = write_gate_ini(directory, listen, None, **extra)  # redirect_uri on nginx's port
    provider.fake.register(APP_ID, f"http://127.0.0.1:{listen}/_qqgate/callback")
    gate = Gunicorn("qqgate.wsgi:application", {"QQGATE_CONFIG": str(config)}, port=gate_port)
    gate.start()
    try:
        front = nginx_auth_request(binary("nginx"), directory, gate_port, app.port, listen)
    except Exception:
        gate.stop()
        raise
    return Stack(front, gate, app)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, provider) -> Iterator[Stack]:
    binary("nginx")
    running = start_stack(tmp_path_factory.mktemp("nginx"), start_upstream(), provider)
    yield running
    running.stop()


def get(stack: Stack, path: str, **kw) -> requests.Response:
    return requests.get(stack.url + path, allow_redirects=False, timeout=10, **kw)


# --- not signed in ----------------------------------------------------------------------------


def test_a_browser_is_sent_to_the_login_with_next(stack) -> None:
    response = get(stack, "/echo?a=1&b=2", headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/_qqgate/login?next=%2Fecho%3Fa%3D1%26b%3D2")


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        pytest.param("GET", JSON, id="api-get"),
        pytest.param("GET", {**HTML, "X-Requested-With": "XMLHttpRequest"}, id="xhr"),
        pytest.param("GET", {}, id="curl"),
        pytest.param("POST", HTML, id="post-accepting-html"),
        pytest.param("DELETE", HTML, id="delete"),
    ],
)
def test_everything_else_gets_the_gates_json_401(stack, method, headers) -> None:
    """The one rule, as in proxy mode: only a GET/HEAD navigation accepting HTML is redirected;
    a POST (even from a form) gets the JSON 401 with the login URL, never a login page."""
    response = requests.request(
        method,
        f"{stack.url}/echo?x=1",
        headers=headers,
        data=b"body",
        timeout=10,
        allow_redirects=False,
    )
    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {
        "error": "login_required",
        "login_url": "/_qqgate/login?next=%2Fecho%3Fx%3D1",
    }


def test_the_gates_internal_routes_are_not_reachable_from_outside(stack) -> None:
    for path in ("/_qqgate/auth", "/_qqgate/refused"):
        response = get(stack, path, headers=signed_in(XIAOMING))
        assert response.status_code == 404, path
        assert "X-QQ-OpenID" not in response.headers


# --- signed in ----------------------------------------------------------------------------------


def test_the_app_gets_the_identity_never_a_clients(stack) -> None:
    seen = get(stack, "/echo", headers={**SPOOF, **signed_in(XIAOMING, "小明🐧")}).json()
    assert seen["headers"]["x-qq-openid"] == XIAOMING
    assert seen["headers"]["x-qq-nickname"] == "%E5%B0%8F%E6%98%8E%F0%9F%90%A7"
    assert "remote-user" not in seen["headers"] and "SPOOFED" not in str(seen)


@pytest.mark.parametrize(
    ("cookie", "app_sees"),
    [
        pytest.param("a=1; qqgate={t}; b=2", "a=1; b=2", id="middle"),
        pytest.param("qqgate={t}; b=2", "b=2", id="first"),
        pytest.param("a=1; qqgate={t}", "a=1;", id="last"),
        pytest.param("qqgate={t}", None, id="alone"),
        pytest.param("a=1;qqgate={t};qqgate_state=s;xqqgate=3", "a=1;xqqgate=3", id="tight"),
        pytest.param("qqgate={t}; qqgate=other; c=3", "c=3", id="two-sessions"),
        pytest.param("qqgate={t}; a=1; qqgate=x; qqgate=y", None, id="three: all go"),
    ],
)
def test_the_gates_cookies_never_reach_the_app(stack, cookie, app_sees) -> None:
    token = session_token(XIAOMING)
    seen = get(stack, "/echo", headers={"Cookie": cookie.format(t=token)}).json()
    assert seen["headers"]["x-qq-openid"] == XIAOMING
    assert seen["headers"].get("cookie") == app_sees
    assert token not in str(seen)


def test_a_signed_in_post_reaches_the_app_with_its_body(stack) -> None:
    response = requests.post(
        f"{stack.url}/echo", data=b"x" * 4000, headers=signed_in(XIAOMING), timeout=10
    )
    assert response.status_code == 200
    assert response.json()["body_length"] == 4000 and response.json()["method"] == "POST"


def test_full_sign_in_through_nginx(stack) -> None:
    browser = requests.Session()
    consent = browser.get(f"{stack.url}/echo?from=nginx", headers=HTML, timeout=10)
    page = approve(browser, consent, "xiaoming")
    assert page.status_code == 200 and page.url == f"{stack.url}/echo?from=nginx"
    assert page.json()["headers"]["x-qq-openid"] == XIAOMING


# --- not on the allow-list ----------------------------------------------------------------------


def test_a_user_not_on_the_allow_list_gets_the_gates_403_page_and_one_log_line(
    tmp_path, provider
) -> None:
    binary("nginx")
    stack = start_stack(tmp_path, start_upstream(), provider)
    try:
        page = get(stack, "/echo", headers={**HTML, **signed_in(OPENID, "小明🐧")})
        api = requests.post(f"{stack.url}/echo", headers=signed_in(OPENID), timeout=10)
    finally:
        log = stack.stop()
    assert page.status_code == 403
    assert OPENID in page.text and "小明🐧" in page.text
    assert 'action="/_qqgate/logout"' in page.text or "/_qqgate/logout" in page.text
    assert page.headers["Cache-Control"] == "no-store"
    assert api.status_code == 403
    denials = [line for line in log.splitlines() if "access denied" in line]
    assert len(denials) == 2, log  # one per refused request, none from the page itself
    assert all(f"openid={OPENID}" in line for line in denials)
    assert "reason=not_in_allowed_openids" in denials[0]
