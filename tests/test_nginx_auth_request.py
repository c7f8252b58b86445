"""deploy/nginx-auth-request.conf, the exact server block, against a real nginx with the gate under
gunicorn and a real app: the same answers as proxy mode (the gate's 302, JSON 401 and 403 page, the
denial logged once, the gate's cookies kept from the app), a full sign-in, and WebSockets through
to a real WebSocket echo server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from qqgate.dev.fakeqq import openid_for

from .conftest import APP_ID
from .fronts import Stack, binary, check_websockets, nginx_front, start_stack
from .live import session_token, signed_in
from .rig import OPENID
from .test_e2e import HTML
from .test_proxy import start_upstream
from .test_websocket import EchoUpstream

XIAOMING = openid_for(APP_ID, "xiaoming")
JSON = {"Accept": "application/json"}
SPOOF = {"X-QQ-OpenID": "SPOOFED", "X-QQ_OpenID": "SPOOFED", "Remote-User": "SPOOFED"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, provider) -> Iterator[Stack]:
    nginx = binary("nginx")
    directory = tmp_path_factory.mktemp("nginx")
    running = start_stack(directory, nginx_front(nginx), start_upstream(), provider, XIAOMING)
    yield running
    running.stop()


# --- not signed in ----------------------------------------------------------------------------


def test_a_browser_is_sent_to_the_login_with_next(stack) -> None:
    response = stack.get("/echo?a=1&b=2", headers=HTML)
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
        response = stack.get(path, headers=signed_in(XIAOMING))
        assert response.status_code == 404, path
        assert "X-QQ-OpenID" not in response.headers


# --- signed in ----------------------------------------------------------------------------------


def test_the_app_gets_the_identity_never_a_clients(stack) -> None:
    seen = stack.get("/echo", headers={**SPOOF, **signed_in(XIAOMING, "小明🐧")}).json()
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
        pytest.param("a=1; qqgate ={t}; b=2", "a=1; b=2", id="space-before-equals"),
        pytest.param("qqgate={t}; a=1; qqgate=x; qqgate=y", None, id="three: all go"),
    ],
)
def test_the_gates_cookies_never_reach_the_app(stack, cookie, app_sees) -> None:
    token = session_token(XIAOMING)
    seen = stack.get("/echo", headers={"Cookie": cookie.format(t=token)}).json()
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
    page = stack.sign_in("/echo?from=nginx")
    assert page.json()["headers"]["x-qq-openid"] == XIAOMING


# --- not on the allow-list ----------------------------------------------------------------------


def test_a_user_not_on_the_allow_list_gets_the_gates_403_page_and_one_log_line(
    tmp_path, provider
) -> None:
    front = nginx_front(binary("nginx"))
    stack = start_stack(tmp_path, front, start_upstream(), provider, XIAOMING)
    try:
        page = stack.get("/echo", headers={**HTML, **signed_in(OPENID, "小明🐧")})
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


# --- WebSockets ---------------------------------------------------------------------------------


def test_websockets_pass_for_signed_in_users_only(tmp_path, provider) -> None:
    """A real WebSocket echo server behind the shipped block: the handshake is checked like any
    request; a signed-in user's frames flow both ways, anyone else never reaches the app."""
    upstream = EchoUpstream()
    stack = start_stack(tmp_path, nginx_front(binary("nginx")), upstream.port, provider, XIAOMING)
    try:
        check_websockets(f"ws://127.0.0.1:{stack.front.port}/chat", upstream, XIAOMING, OPENID)
    finally:
        stack.stop()
        upstream.close()


# --- the auth cache -----------------------------------------------------------------------------


def test_the_auth_cache_keeps_only_signed_in_answers_per_exact_cookie(tmp_path, provider) -> None:
    """With the shipped cache lines, a signed-in user's requests ask the gate once per
    auth_cache_seconds; refusals are asked every time; a cached identity is only ever served to
    a request carrying that very session cookie."""
    front = nginx_front(binary("nginx"))
    allowed = f"{XIAOMING} {OPENID}"
    stack = start_stack(
        tmp_path, front, start_upstream(), provider, allowed, ["--access-logfile", "-"]
    )

    def asked(status: int) -> int:
        lines = stack.gate.output().splitlines()
        return sum('"GET /_qqgate/auth' in line and f" {status} " in line for line in lines)

    def openid_seen(cookie: str) -> str:
        return stack.get("/echo", headers={"Cookie": cookie}).json()["headers"]["x-qq-openid"]

    alice, bob = session_token(XIAOMING), session_token(OPENID)
    victim = session_token(XIAOMING, "victim")
    try:
        assert all(openid_seen(f"qqgate={alice}") == XIAOMING for _ in range(5))
        assert asked(202) == 1
        for headers in ({}, {"Cookie": "qqgate="}, {"Cookie": "qqgate=forged"}) * 2:
            assert stack.get("/echo", headers={**JSON, **headers}).status_code == 401
        assert asked(401) == 6
        # nginx reads cookie names regardless of case, the gate does not: here nginx's key is the
        # victim's token while the gate judges bob's. The answer is bob's, and is not kept.
        assert openid_seen(f"QQGATE={victim}; qqgate={bob}") == OPENID
        seen = stack.get("/echo", headers={"Cookie": f"qqgate={victim}"}).json()["headers"]
        assert seen["x-qq-openid"] == XIAOMING and seen["x-qq-nickname"] == "victim"
    finally:
        stack.stop()


def test_the_host_prefixed_default_cookie_is_cached_and_kept_from_the_app(
    tmp_path, provider
) -> None:
    """Over https the default cookie_name is ``__Host-qqgate``, which nginx's ``$cookie_``
    variables cannot name: the shipped maps read it for the cache key and remove it (and its state
    cookie) from what the app gets, as they do ``qqgate``. (cookie_secure on: the gate neither
    knows nor cares that this test speaks plain http to nginx.)"""
    front = nginx_front(binary("nginx"))
    stack = start_stack(
        tmp_path,
        front,
        start_upstream(),
        provider,
        XIAOMING,
        ["--access-logfile", "-"],
        cookie_secure="true",
    )
    token = session_token(XIAOMING)
    cookie = f"a=1; __Host-qqgate_state=s; __Host-qqgate={token}; b=2"
    try:
        for _ in range(5):
            seen = stack.get("/echo", headers={"Cookie": cookie}).json()["headers"]
            assert seen["x-qq-openid"] == XIAOMING and seen.get("cookie") == "a=1; b=2"
        lines = stack.gate.output().splitlines()
        assert sum('"GET /_qqgate/auth' in line and " 202 " in line for line in lines) == 1
    finally:
        stack.stop()
