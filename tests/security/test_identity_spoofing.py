"""Identity spoofing: a client's X-QQ-OpenID (in any spelling), nickname, unionid or Remote-User
must never reach the app, on public and protected paths, signed in or not.

In-process, each header is turned into the environ key a server makes of it (wsgiref and gunicorn's
"dangerous" header map fold ``_`` and ``-`` and case into one key; duplicates are joined with a
comma). Over a raw socket, hand-written request bytes go to the sample app behind the gate under
real gunicorn, whose ``/headers.json`` echoes every header the app received.
"""

from __future__ import annotations

import json

import pytest

from qqgate.session import Identity

from ..live import LiveGate
from ..rig import NICKNAME, OPENID, blank, environ_key, make_rig
from .conftest import echo_of, upstream_echo_of
from .support import IDENTITY_KEYS, get_head, raw_http

SPOOF = "SPOOFED"

# (header lines as a client writes them) -> the environ a server builds from them.
HEADER_SPOOFS = [
    pytest.param([("X-QQ-OpenID", SPOOF)], id="X-QQ-OpenID"),
    pytest.param([("X-Qq-Openid", SPOOF)], id="X-Qq-Openid"),
    pytest.param([("x-qq-openid", SPOOF)], id="x-qq-openid"),
    pytest.param([("X-QQ_OpenID", SPOOF)], id="X-QQ_OpenID-underscore"),
    pytest.param([("X_QQ_OPENID", SPOOF)], id="X_QQ_OPENID-all-underscores"),
    pytest.param([("X-QQ-OpenID", SPOOF), ("X-QQ-OpenID", SPOOF + "2")], id="duplicated"),
    pytest.param([("X-QQ-OpenID", SPOOF), ("X-QQ_OpenID", SPOOF + "2")], id="dash-and-underscore"),
    pytest.param([("X-QQ-OpenID", "")], id="empty-openid"),
    pytest.param([("X-QQ-Nickname", SPOOF)], id="X-QQ-Nickname"),
    pytest.param([("x-qq-nickname", SPOOF)], id="x-qq-nickname"),
    pytest.param([("X-QQ_Nickname", SPOOF)], id="X-QQ_Nickname"),
    pytest.param([("X-QQ-Nickname", "%E5%B0%8F%E6%98%8E" + SPOOF)], id="encoded-nickname"),
    pytest.param([("X-QQ-UnionID", SPOOF)], id="X-QQ-UnionID"),
    pytest.param([("x-qq-unionid", SPOOF)], id="x-qq-unionid"),
    pytest.param([("X_QQ_UNIONID", SPOOF)], id="X_QQ_UNIONID"),
    pytest.param([("Remote-User", SPOOF)], id="Remote-User"),
    pytest.param([("remote_user", SPOOF)], id="remote_user-header"),
    pytest.param([("REMOTE-USER", SPOOF)], id="REMOTE-USER"),
    pytest.param(
        [(h, SPOOF) for h in ("X-QQ-OpenID", "X-QQ-Nickname", "X-QQ-UnionID", "Remote-User")],
        id="all-at-once",
    ),
]


def server_environ(headers: list[tuple[str, str]]) -> dict[str, object]:
    environ: dict[str, object] = {}
    for name, value in headers:
        key = environ_key(name)
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


SIGNED_IN = [pytest.param(False, id="anonymous"), pytest.param(True, id="signed-in")]
PATHS = [pytest.param("/static/app.css", id="public"), pytest.param("/admin", id="protected")]
UNIONID = [pytest.param("false", id="unionid-off"), pytest.param("true", id="unionid-on")]


def expected_identity(signed_in: bool, unionid: str) -> dict[str, object]:
    if not signed_in:
        return {}
    expected: dict[str, object] = {
        "HTTP_X_QQ_OPENID": OPENID,
        "HTTP_X_QQ_NICKNAME": "%E5%B0%8F%E6%98%8E%F0%9F%90%A7",
        "REMOTE_USER": OPENID,
    }
    if unionid == "true":
        expected["HTTP_X_QQ_UNIONID"] = "UID_STUB"
    return expected


@pytest.mark.parametrize("unionid", UNIONID)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("signed_in", SIGNED_IN)
@pytest.mark.parametrize("headers", HEADER_SPOOFS)
def test_in_process_spoofed_headers_never_reach_app(headers, signed_in, path, unionid) -> None:
    rig = make_rig(unionid=unionid)
    cookie = f"qqgate={rig.session_for()}" if signed_in else None
    response = rig.call(blank(path, cookie=cookie, environ=server_environ(headers)))
    assert response.status_int < 500, response.text
    if not signed_in and path == "/admin":
        assert response.status_int in (302, 401) and rig.app.calls == []
        assert SPOOF not in response.text and SPOOF not in str(response.headerlist)
        return
    (seen,) = rig.app.calls
    assert {k: seen[k] for k in IDENTITY_KEYS if k in seen} == expected_identity(signed_in, unionid)
    assert SPOOF not in json.dumps(seen)


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"REMOTE_USER": SPOOF}, id="REMOTE_USER-from-an-outer-server"),
        pytest.param(
            {"qqgate.identity": Identity(SPOOF, SPOOF, "", SPOOF, 0)}, id="identity-object"
        ),
        pytest.param({"HTTP_X_QQ_OPENID": OPENID}, id="the-real-openid-spoofed"),
    ],
)
@pytest.mark.parametrize("path", PATHS)
def test_in_process_spoofed_environ_never_reaches_app(extra, path) -> None:
    rig = make_rig()
    response = rig.call(blank(path, environ=extra))
    if path == "/admin":
        assert response.status_int in (302, 401) and rig.app.calls == []
        return
    (seen,) = rig.app.calls
    assert not any(k in seen for k in IDENTITY_KEYS), seen
    assert seen["qqgate.identity"] is None


# --- the same over a raw socket, through gunicorn ---------------------------------------------------

RAW_SPOOFS = [
    pytest.param(b"X-QQ-OpenID: SPOOFED\r\n", id="X-QQ-OpenID"),
    pytest.param(b"X-Qq-Openid: SPOOFED\r\n", id="X-Qq-Openid"),
    pytest.param(b"x-qq-openid: SPOOFED\r\n", id="x-qq-openid"),
    pytest.param(b"X-QQ-OPENID: SPOOFED\r\n", id="X-QQ-OPENID"),
    pytest.param(b"X-QQ_OpenID: SPOOFED\r\n", id="X-QQ_OpenID"),
    pytest.param(b"X_QQ_OPENID: SPOOFED\r\n", id="X_QQ_OPENID"),
    pytest.param(b"X-QQ-OpenID: SPOOFED\r\nX-QQ-OpenID: SPOOFED2\r\n", id="duplicated"),
    pytest.param(b"X-QQ-OpenID: SPOOFED\r\nX-QQ_OpenID: SPOOFED2\r\n", id="dash-and-underscore"),
    pytest.param(b"X-QQ-OpenID:SPOOFED\r\n", id="no-space"),
    pytest.param(b"X-QQ-OpenID:\tSPOOFED \r\n", id="tab-and-trailing-space"),
    pytest.param(b"X-QQ-OpenID : SPOOFED\r\n", id="space-before-colon"),
    pytest.param(b"X-Other: 1\r\n X-QQ-OpenID: SPOOFED\r\n", id="obs-fold"),
    pytest.param(b"X-QQ-Nickname: SPOOFED\r\n", id="X-QQ-Nickname"),
    pytest.param(b"X-QQ_Nickname: SPOOFED\r\n", id="X-QQ_Nickname"),
    pytest.param(b"X-QQ-UnionID: SPOOFED\r\n", id="X-QQ-UnionID"),
    pytest.param(b"X_QQ_UNIONID: SPOOFED\r\n", id="X_QQ_UNIONID"),
    pytest.param(b"Remote-User: SPOOFED\r\n", id="Remote-User"),
    pytest.param(b"REMOTE_USER: SPOOFED\r\n", id="REMOTE_USER-header"),
    pytest.param(b"X-QQ-OpenID: SPOOFED\xe9\xff\r\n", id="latin-1-value"),
]


UPSTREAM_IDENTITY = {"x-qq-openid", "x-qq-nickname", "x-qq-unionid", "remote-user"}


def sample_view(body: bytes) -> tuple[dict[str, object], str | None] | None:
    """(identity as the sample app saw it, its openid) from ``/headers.json``, or None."""
    seen = echo_of(body)
    if seen is None:
        return None
    headers = seen["headers"]
    view = {
        "headers": {k: v for k, v in headers.items() if k in IDENTITY_KEYS},
        "remote_user": seen["remote_user"],
        "identity": seen["identity"],
    }
    if seen["identity"] is not None:
        assert seen["identity"]["nickname"] == NICKNAME
        assert headers["HTTP_X_QQ_OPENID"] == seen["remote_user"] == seen["identity"]["openid"]
    return view, headers.get("HTTP_X_QQ_OPENID")


def upstream_view(body: bytes) -> tuple[dict[str, object], str | None] | None:
    """(identity headers as the proxied upstream received them, the openid), or None."""
    seen = upstream_echo_of(body)
    if seen is None:
        return None
    headers = {k: v for k, v in seen["headers"].items() if k.replace("_", "-") in UPSTREAM_IDENTITY}
    return {"headers": headers}, headers.get("x-qq-openid")


# (gate fixture, target, whether an anonymous visitor reaches the app there)
GATES = [
    pytest.param("echo_gate", b"/headers.json", True, id="public"),
    pytest.param("dangerous_gate", b"/headers.json", True, id="public-header-map-dangerous"),
    pytest.param("strict_gate", b"/headers.json", False, id="protected"),
    pytest.param("proxy_gate", b"/healthz", True, id="proxy-mode-public"),
    pytest.param("proxy_gate", b"/private", False, id="proxy-mode-protected"),
]


@pytest.mark.parametrize("signed_in", SIGNED_IN)
@pytest.mark.parametrize(("gate_name", "target", "public"), GATES)
@pytest.mark.parametrize("spoof", RAW_SPOOFS)
def test_raw_socket_spoofed_headers_never_reach_app(
    request, spoof, gate_name, target, public, signed_in
) -> None:
    gate: LiveGate = request.getfixturevalue(gate_name)
    cookie = b""
    if signed_in:
        cookie = b"Cookie: qqgate=" + request.getfixturevalue("process_session").encode() + b"\r\n"
    response = raw_http(gate.port, get_head(target, spoof, cookie))
    assert 0 < response.status < 500, (response.status, response.text[:300])
    if response.status == 400:
        return  # gunicorn refused the malformed request itself: nothing reached the gate or app
    parsed = sample_view(response.body) or upstream_view(response.body)
    if not public and not signed_in:
        assert response.status in (302, 401) and parsed is None, response.text[:300]
        assert SPOOF not in response.text
        return
    assert response.status == 200 and parsed is not None, response.text[:300]
    view, openid = parsed
    assert SPOOF not in json.dumps(view, ensure_ascii=False), view
    assert (openid is not None) == signed_in, view
    if not signed_in:
        assert not any(view.values()), view


@pytest.mark.parametrize("signed_in", SIGNED_IN)
@pytest.mark.parametrize("spoof", RAW_SPOOFS)
def test_raw_socket_auth_route_never_echoes_a_spoof(request, spoof, signed_in) -> None:
    """nginx's auth_request sub-request: the identity headers it copies come from the gate only."""
    gate: LiveGate = request.getfixturevalue("strict_gate")
    cookie = b""
    if signed_in:
        cookie = b"Cookie: qqgate=" + request.getfixturevalue("process_session").encode() + b"\r\n"
    response = raw_http(gate.port, get_head(b"/_qqgate/auth", spoof, cookie))
    assert 0 < response.status < 500, (response.status, response.text[:300])
    if response.status == 400:
        return  # refused by gunicorn's parser
    headers = "\n".join(f"{k}: {v}" for k, v in response.headers)
    assert SPOOF not in headers and SPOOF not in response.text
    if signed_in:
        assert response.status == 202 and response.header("X-QQ-OpenID")
    else:
        assert response.status == 401 and response.header("X-QQ-OpenID") is None
