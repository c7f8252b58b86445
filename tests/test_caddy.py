"""deploy/Caddyfile, as shipped, with a real Caddy (Debian's package): forward_auth asks the gate,
which answers the browser itself (302 to the login with next, JSON 401, the 403 page); a full
sign-in through the development provider; the identity copied, a client's never; the gate's
cookies kept from the app; and a WebSocket through Caddy to a real echo server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from qqgate.dev.fakeqq import openid_for

from .conftest import APP_ID
from .fronts import Stack, binary, caddy_front, check_websockets, start_stack
from .live import session_token, signed_in
from .rig import OPENID
from .test_e2e import HTML
from .test_proxy import start_upstream
from .test_websocket import EchoUpstream

XIAOMING = openid_for(APP_ID, "xiaoming")
SPOOF = {"X-QQ-OpenID": "SPOOFED", "X-QQ-UnionID": "SPOOFED", "Remote-User": "SPOOFED"}


@pytest.fixture(scope="module")
def stack(tmp_path_factory, provider) -> Iterator[Stack]:
    front = caddy_front(binary("caddy"))
    directory = tmp_path_factory.mktemp("caddy")
    running = start_stack(directory, front, start_upstream(), provider, XIAOMING)
    yield running
    running.stop()


def test_a_browser_is_sent_to_the_login_with_next(stack) -> None:
    response = stack.get("/echo?a=1&b=2", headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"] == "/_qqgate/login?next=%2Fecho%3Fa%3D1%26b%3D2"


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        pytest.param("GET", {"Accept": "application/json"}, id="api"),
        pytest.param("POST", HTML, id="post-accepting-html"),
        pytest.param("GET", {**HTML, "X-Requested-With": "XMLHttpRequest"}, id="xhr"),
    ],
)
def test_api_clients_get_the_gates_json_401(stack, method, headers) -> None:
    response = requests.request(
        method, f"{stack.url}/echo?x=1", headers=headers, timeout=10, allow_redirects=False
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "login_required",
        "login_url": "/_qqgate/login?next=%2Fecho%3Fx%3D1",
    }


def test_a_user_not_on_the_allow_list_gets_the_403_page(stack) -> None:
    response = stack.get("/echo", headers={**HTML, **signed_in(OPENID, "小明🐧")})
    assert response.status_code == 403
    assert OPENID in response.text and "小明🐧" in response.text
    assert "/_qqgate/logout" in response.text


def test_the_app_gets_the_identity_never_a_clients_nor_the_session(stack) -> None:
    token = session_token(XIAOMING)
    # The default cookie_name over https is __Host-qqgate: its copies go too.
    cookie = f"a=1; qqgate={token}; __Host-qqgate=x; __Host-qqgate_state=s; qqgate ={token}; b=2"
    headers = {**SPOOF, "Cookie": cookie}
    seen = stack.get("/echo", headers=headers).json()
    assert seen["headers"]["x-qq-openid"] == XIAOMING
    assert seen["headers"]["x-qq-nickname"] == "%E5%B0%8F%E6%98%8E%F0%9F%90%A7"
    assert "x-qq-unionid" not in seen["headers"] and "remote-user" not in seen["headers"]
    assert seen["headers"]["cookie"] == "a=1; b=2"
    assert "SPOOFED" not in str(seen) and token not in str(seen)


def test_full_sign_in_through_caddy(stack) -> None:
    page = stack.sign_in("/echo?from=caddy")
    assert page.json()["headers"]["x-qq-openid"] == XIAOMING
    assert "qqgate=" not in page.json()["headers"].get("cookie", "")


def test_websocket_through_caddy(tmp_path, provider) -> None:
    front = caddy_front(binary("caddy"))
    upstream = EchoUpstream()
    stack = start_stack(tmp_path, front, upstream.port, provider, XIAOMING)
    try:
        check_websockets(f"ws://127.0.0.1:{stack.front.port}/chat", upstream, XIAOMING, OPENID)
    finally:
        stack.stop()
        upstream.close()
