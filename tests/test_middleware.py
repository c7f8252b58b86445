"""The gate in-process, with WebTest and a stub QQ client: every route and every error branch."""

from __future__ import annotations

import json
import logging
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

from qqgate.qq import QQError, QQProfile, QQUnavailable
from qqgate.session import Identity

from .conftest import OTHER_SECRET, SECRET
from .rig import Rig, make_rig, set_cookie_value, set_cookies

OPENID = "0123456789ABCDEF0123456789ABCDEF"
NICK = "小明🐧 <b>&\"'\r\nX-Evil: 1"
CODE = "CODE-4f1a2b"


PROFILE = QQProfile(OPENID, NICK, "https://q.qlogo.cn/a/100", None)


def harness(**overrides: str) -> Rig:
    """A rig whose stub signs in ``NICK`` (hostile) and knows ``CODE``."""
    rig = make_rig(profile=PROFILE, **overrides)
    rig.qq.issue_code(CODE)
    return rig


@pytest.fixture
def h() -> Rig:
    return harness()


HTML = {"Accept": "text/html,application/xhtml+xml"}

# --- identity headers from clients are always removed --------------------------------------------

SPOOFS = {
    "HTTP_X_QQ_OPENID": "SPOOFED",
    "HTTP_X_QQ_NICKNAME": "SPOOFED",
    "HTTP_X_QQ_UNIONID": "SPOOFED",
    "HTTP_REMOTE_USER": "SPOOFED",
    "REMOTE_USER": "SPOOFED",
}


@pytest.mark.parametrize(
    "signed_in", [pytest.param(False, id="anonymous"), pytest.param(True, id="signed-in")]
)
def test_spoofed_identity_never_reaches_app_on_public_path(h, signed_in) -> None:
    cookie = f"qqgate={h.session_for()}" if signed_in else None
    seen = h.get("/static/x.css", cookie=cookie, extra_environ=SPOOFS).json
    assert "SPOOFED" not in json.dumps(seen)
    assert (seen["HTTP_X_QQ_OPENID"] == OPENID) if signed_in else ("HTTP_X_QQ_OPENID" not in seen)


def test_spoofed_identity_is_replaced_when_signed_in(h) -> None:
    seen = h.get("/admin", cookie=f"qqgate={h.session_for()}", extra_environ=SPOOFS).json
    assert seen["HTTP_X_QQ_OPENID"] == OPENID
    assert seen["REMOTE_USER"] == OPENID
    assert "HTTP_X_QQ_UNIONID" not in seen and "HTTP_REMOTE_USER" not in seen


def test_spoofed_identity_object_is_removed(h) -> None:
    seen = h.get(
        "/static/x", extra_environ={"qqgate.identity": Identity("X", "x", "", None, 0)}
    ).json
    assert seen["qqgate.identity"] is None


def test_custom_header_names_are_stripped_and_set() -> None:
    h = harness(openid_header="X-User", nickname_header="X-User-Name")
    seen = h.get(
        "/admin",
        cookie=f"qqgate={h.session_for()}",
        extra_environ={"HTTP_X_USER_NAME": "SPOOFED"},
    ).json
    assert seen["HTTP_X_USER"] == OPENID and seen["HTTP_X_USER_NAME"] == quote(NICK, safe="")


# --- signed in ---------------------------------------------------------------------------------


def test_signed_in_request_carries_identity(h) -> None:
    seen = h.get("/admin?x=1", cookie=f"other=1; qqgate={h.session_for()}").json
    assert seen["HTTP_X_QQ_OPENID"] == OPENID
    assert seen["HTTP_X_QQ_NICKNAME"] == quote(NICK, safe="")
    assert unquote(seen["HTTP_X_QQ_NICKNAME"]) == NICK
    assert "\r" not in seen["HTTP_X_QQ_NICKNAME"] and seen["HTTP_X_QQ_NICKNAME"].isascii()
    assert seen["qqgate.identity"] == {
        "openid": OPENID,
        "nickname": NICK,
        "avatar_url": "https://q.qlogo.cn/a/100",
        "unionid": None,
    }
    assert h.paths == ["/admin"]


def test_unionid_header_only_when_enabled() -> None:
    h = harness(unionid="true")
    seen = h.get("/admin", cookie=f"qqgate={h.session_for(unionid='UID123')}").json
    assert seen["HTTP_X_QQ_UNIONID"] == "UID123"
    h = harness()
    seen = h.get("/admin", cookie=f"qqgate={h.session_for(unionid='UID123')}").json
    assert "HTTP_X_QQ_UNIONID" not in seen


@pytest.mark.parametrize(
    "cookie",
    [
        pytest.param("junk=\x00\xff; qqgate={token}", id="malformed-neighbour"),
        pytest.param("qqgate=garbage; qqgate={token}", id="bad-duplicate-first"),
        pytest.param('a=b; c; ===; qqgate="{token}"', id="quoted-among-junk"),
    ],
)
def test_valid_session_survives_bad_cookies_beside_it(h, cookie) -> None:
    seen = h.get("/admin", cookie=cookie.format(token=h.session_for())).json
    assert seen["HTTP_X_QQ_OPENID"] == OPENID


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: t[:-2], id="truncated"),
        pytest.param(lambda t: t[:10] + ("A" if t[10] != "A" else "B") + t[11:], id="flipped"),
        pytest.param(lambda t: "x" * 9000, id="oversized"),
    ],
)
def test_tampered_session_is_not_signed_in(h, mutate) -> None:
    response = h.get("/admin", cookie=f"qqgate={mutate(h.session_for())}", headers=dict(HTML))
    assert response.status_int == 302 and h.paths == []


def test_expired_session_is_not_signed_in(h) -> None:
    cookie = f"qqgate={h.session_for()}"
    h.clock.advance(7 * 86400)
    assert h.get("/admin", cookie=cookie, headers=dict(HTML)).status_int == 302


def test_key_rotation_keeps_sessions() -> None:
    old = harness(secret_key=OTHER_SECRET)
    token = old.session_for()
    rotated = harness(secret_key=f"{SECRET} {OTHER_SECRET}")
    rotated.clock.now = old.clock.now
    assert rotated.get("/admin", cookie=f"qqgate={token}").json["HTTP_X_QQ_OPENID"] == OPENID
    assert harness().get("/admin", cookie=f"qqgate={token}").status_int == 401


def test_allowlist_blocks_others_with_their_openid_shown() -> None:
    h = harness(allowed_openids="FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF")
    response = h.get("/admin", cookie=f"qqgate={h.session_for()}")
    assert response.status_int == 403
    assert OPENID in response.text and "/_qqgate/logout" in response.text
    assert "<b>" not in response.text and "&lt;b&gt;" in response.text
    assert h.paths == []


def test_allowlist_lets_listed_user_in() -> None:
    h = harness(allowed_openids=OPENID)
    assert h.get("/admin", cookie=f"qqgate={h.session_for()}").json["HTTP_X_QQ_OPENID"] == OPENID


# --- not signed in -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "headers", "status"),
    [
        pytest.param("GET", HTML, 302, id="browser-get"),
        pytest.param("HEAD", HTML, 302, id="browser-head"),
        pytest.param("GET", {"Accept": "application/json"}, 401, id="json-client"),
        pytest.param("GET", {"Accept": "*/*"}, 401, id="curl"),
        pytest.param("GET", {**HTML, "X-Requested-With": "XMLHttpRequest"}, 401, id="xhr"),
        pytest.param("POST", HTML, 401, id="post"),
        pytest.param("DELETE", HTML, 401, id="delete"),
    ],
)
def test_anonymous_protected_request_is_challenged(h, method, headers, status) -> None:
    response = h.browser.request(
        "/admin/x?a=1&b=%E4%B8%AD", method=method, headers=headers, expect_errors=True
    )
    assert response.status_int == status
    login = "/_qqgate/login?next=" + quote("/admin/x?a=1&b=%E4%B8%AD", safe="")
    if status == 302:
        # relative: nothing in it comes from the client's Host header
        assert response.headers["Location"] == login
    elif method != "HEAD":
        assert response.json == {"error": "login_required", "login_url": login}
    assert h.paths == []


def test_public_path_passes_without_identity(h) -> None:
    seen = h.get("/healthz").json
    assert "HTTP_X_QQ_OPENID" not in seen and "REMOTE_USER" not in seen


def test_dot_dot_out_of_public_path_is_challenged(h) -> None:
    assert h.get("/static/../admin", headers=dict(HTML)).status_int == 302
    assert h.paths == []


# --- login ----------------------------------------------------------------------------------------


def test_login_redirects_to_qq_with_fresh_state_bound_in_cookie(h) -> None:
    response = h.get(
        "/_qqgate/login?next=/dash%3Fa%3D1", headers={"User-Agent": "Mozilla/5.0 (X11)"}
    )
    assert response.status_int == 302
    query = parse_qs(urlsplit(response.location).query)
    state = query["state"][0]
    assert len(state) >= 40 and query["scope"] == ["get_user_info"] and "display" not in query
    header = set_cookies(response)["qqgate_state"]
    for attribute in ("Path=/_qqgate", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=600"):
        assert attribute in header
    pending = h.gate.sessions.states.loads(set_cookie_value(response, "qqgate_state"))
    assert [(p.state, p.next_url) for p in pending] == [(state, "/dash?a=1")]
    assert response.headers["Cache-Control"] == "no-store"


def test_each_login_has_a_new_state(h) -> None:
    assert h.login()[0] != h.login()[0]


def test_mobile_browsers_get_mobile_page(h) -> None:
    response = h.get(
        "/_qqgate/login", headers={"User-Agent": "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0) Mobile"}
    )
    assert "display=mobile" in response.location


def test_login_with_evil_next_falls_back_to_root(h) -> None:
    _, cookie = h.login(next_url="//evil.example/")
    assert h.gate.sessions.states.loads(cookie)[0].next_url == "/"


def test_state_cookie_never_strict_even_when_session_is() -> None:
    h = harness(cookie_samesite="strict")
    response = h.get("/_qqgate/login")
    assert "SameSite=Lax" in set_cookies(response)["qqgate_state"]


# --- callback ------------------------------------------------------------------------------------


def test_callback_signs_in_and_returns_to_next(h, caplog) -> None:
    caplog.set_level(logging.INFO, logger="qqgate")
    state, cookie = h.login("/after?x=1")
    response = h.callback(f"code={CODE}&state={state}", cookie)
    assert response.status_int == 302
    assert response.location.endswith("/after?x=1")
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert h.qq.redeemed == [CODE]
    session = set_cookies(response)["qqgate"]
    for attribute in ("HttpOnly", "Secure", "SameSite=Lax", "Path=/", f"Max-Age={7 * 86400}"):
        assert attribute in session
    assert h.gate.sessions.states.loads(set_cookie_value(response, "qqgate_state")) == []  # used
    token = set_cookie_value(response, "qqgate")
    assert h.get("/admin", cookie=f"qqgate={token}").json["HTTP_X_QQ_OPENID"] == OPENID
    assert f"sign-in ok openid={OPENID}" in caplog.text
    assert CODE not in caplog.text and state not in caplog.text and token not in caplog.text


def test_callback_replaces_an_existing_session(h) -> None:
    state, cookie = h.login()
    old = h.session_for(openid="F" * 32)
    response = h.get(
        f"/_qqgate/callback?code={CODE}&state={state}",
        cookie=f"qqgate={old}; qqgate_state={cookie}",
    )
    new = set_cookie_value(response, "qqgate")
    assert new != old and h.gate.sessions.codec.loads(new).openid == OPENID


def test_other_pending_logins_survive_one_callback(h) -> None:
    first, cookie = h.login("/one")
    second, cookie = h.login("/two", cookie=f"qqgate_state={cookie}")
    response = h.callback(f"code={CODE}&state={first}", cookie)
    assert response.location.endswith("/one")
    remaining = h.gate.sessions.states.loads(set_cookie_value(response, "qqgate_state"))
    assert [p.state for p in remaining] == [second]


@pytest.mark.parametrize(
    ("query", "use_cookie", "fragment"),
    [
        pytest.param("code=C&state=wrong", True, "expired", id="wrong-state"),
        pytest.param("code=C", True, "expired", id="missing-state"),
        pytest.param("code=C&state={state}", False, "expired", id="no-state-cookie"),
        pytest.param("code=C&state={state}&state={state}", True, "malformed", id="duplicate-state"),
        pytest.param("code=C&code=D&state={state}", True, "malformed", id="duplicate-code"),
        pytest.param("state={state}", True, "no authorization code", id="missing-code"),
        pytest.param("state={state}&usercancel=1", True, "cancelled", id="usercancel"),
        pytest.param("error=access_denied&state={state}", True, "cancelled", id="error-param"),
        pytest.param(
            "code=100019&msg=x&state={state}&code=", True, "malformed", id="qq-error-as-params"
        ),
        pytest.param(
            "code=100019&msg=code+to+access+token+error&state={state}",
            True,
            "cancelled",
            id="qq-documented-error-callback",
        ),
        pytest.param("code=" + "C" * 600 + "&state={state}", True, "invalid", id="oversized-code"),
        pytest.param("code=%FF%FE&state={state}", True, "invalid", id="invalid-utf8-code"),
        pytest.param("x=" + "A" * 9000, True, "malformed", id="oversized-query"),
    ],
)
def test_bad_callbacks_get_400_and_never_reach_qq(h, query, use_cookie, fragment, caplog) -> None:
    state, cookie = h.login()
    response = h.callback(query.format(state=state), cookie if use_cookie else None)
    assert response.status_int == 400
    assert fragment in response.text
    assert "/_qqgate/login" in response.text
    assert h.qq.redeemed == []
    assert "qqgate=" not in " ".join(response.headers.getall("Set-Cookie"))
    assert "sign-in failed reason=" in caplog.text


def test_replayed_state_is_refused(h) -> None:
    state, cookie = h.login()
    assert h.callback(f"code={CODE}&state={state}", cookie).status_int == 302
    response = h.callback(f"code={CODE}&state={state}", None)
    assert response.status_int == 400 and h.qq.redeemed == [CODE]


def test_state_expires_after_ten_minutes(h) -> None:
    state, cookie = h.login()
    h.clock.advance(601)
    assert h.callback(f"code={CODE}&state={state}", cookie).status_int == 400
    assert h.qq.redeemed == []


def test_state_from_another_browser_is_refused(h) -> None:
    state, _ = h.login()
    _, other_browser_cookie = h.login()
    assert h.callback(f"code={CODE}&state={state}", other_browser_cookie).status_int == 400


def test_error_page_does_not_reflect_input(h) -> None:
    state, cookie = h.login()
    evil = quote("<script>alert(1)</script>")
    response = h.callback(f"state={state}&error=x&error_description={evil}&msg={evil}", cookie)
    assert (
        response.status_int == 400
        and "<script>" not in response.text
        and "alert" not in response.text
    )


@pytest.mark.parametrize(
    ("error", "status", "fragment"),
    [
        pytest.param(
            QQUnavailable("t", endpoint="token", timeout=True),
            504,
            "could not be reached",
            id="timeout",
        ),
        pytest.param(
            QQUnavailable("r", endpoint="token"), 502, "could not be reached", id="unreachable"
        ),
        pytest.param(
            QQError("x", endpoint="token", code=100020), 400, "start again", id="code-reused"
        ),
        pytest.param(
            QQError("x", endpoint="token", code=100019), 400, "start again", id="code-bad"
        ),
        pytest.param(
            QQError("x", endpoint="token", code=100010), 502, "developer", id="app-not-approved"
        ),
        pytest.param(QQError("x", endpoint="me", code=100016), 502, "refused", id="token-check"),
        pytest.param(QQError("garbage", endpoint="me"), 502, "refused", id="garbage"),
    ],
)
def test_qq_failures_give_clear_pages_and_no_session(h, error, status, fragment) -> None:
    h.qq.result = error
    state, cookie = h.login("/after")
    response = h.callback(f"code={CODE}&state={state}", cookie)
    assert response.status_int == status
    assert fragment in response.text
    assert "/_qqgate/login?next=%2Fafter" in response.text
    assert "qqgate=" not in " ".join(response.headers.getall("Set-Cookie"))


def test_not_allowed_user_gets_403_and_no_session() -> None:
    h = harness(allowed_openids="F" * 32)
    state, cookie = h.login()
    response = h.callback(f"code={CODE}&state={state}", cookie)
    assert response.status_int == 403 and OPENID in response.text
    assert "qqgate=" not in " ".join(response.headers.getall("Set-Cookie"))


# --- logout, userinfo, ping -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "location"),
    [
        pytest.param("?next=/bye", "/bye", id="next"),
        pytest.param("?next=//evil.example", "/", id="evil-next"),
        pytest.param("?next=/%5Cevil.example", "/", id="backslash-next"),
    ],
)
def test_logout_redirects_to_validated_next(h, query, location) -> None:
    same_site = {"Sec-Fetch-Site": "same-origin"}
    response = h.get(
        f"/_qqgate/logout{query}", cookie=f"qqgate={h.session_for()}", headers=same_site
    )
    assert response.status_int == 302 and urlsplit(response.location).path == location
    assert urlsplit(response.location).netloc == "", "relative: never built from the client's Host"
    assert "Max-Age=0" in set_cookies(response)["qqgate"]


def test_logout_without_next_shows_signed_out_page_and_accepts_post(h) -> None:
    response = h.browser.post("/_qqgate/logout", headers={"Cookie": f"qqgate={h.session_for()}"})
    assert response.status_int == 200 and "Signed out" in response.text
    assert "Max-Age=0" in set_cookies(response)["qqgate"]
    assert h.browser.put("/_qqgate/logout", expect_errors=True).status_int == 405


def test_userinfo(h) -> None:
    assert h.get("/_qqgate/userinfo").status_int == 401
    info = h.get("/_qqgate/userinfo", cookie=f"qqgate={h.session_for(unionid='U')}").json
    assert info == {
        "openid": OPENID,
        "nickname": NICK,
        "avatar_url": "https://q.qlogo.cn/a/100",
        "unionid": "U",
    }


def test_ping_never_calls_qq(h) -> None:
    response = h.get("/_qqgate/ping")
    assert response.status_int == 200 and response.text == "ok\n" and h.qq.redeemed == []


@pytest.mark.parametrize("path", ["/_qqgate", "/_qqgate/", "/_qqgate/nope", "/_qqgate/login/x"])
def test_unknown_gate_routes_are_404(h, path) -> None:
    assert h.get(path).status_int == 404 and h.paths == []


def test_gate_pages_are_never_cached_and_forbid_framing(h) -> None:
    response = h.get("/_qqgate/nope")
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


# --- auth (for nginx auth_request) ---------------------------------------------------------------


def test_auth_answers_202_with_identity_headers() -> None:
    h = harness(unionid="true")
    response = h.get(
        "/_qqgate/auth", cookie=f"qqgate={h.session_for(unionid='UID9')}", extra_environ=SPOOFS
    )
    assert response.status_int == 202
    assert response.headers["X-QQ-OpenID"] == OPENID
    assert unquote(response.headers["X-QQ-Nickname"]) == NICK
    assert response.headers["X-QQ-UnionID"] == "UID9"


@pytest.mark.parametrize("headers", [pytest.param(HTML, id="browser"), pytest.param({}, id="api")])
def test_auth_answers_401_never_a_redirect(h, headers) -> None:
    response = h.get("/_qqgate/auth", headers=dict(headers), extra_environ=SPOOFS)
    assert response.status_int == 401 and "Location" not in response.headers
    assert "X-QQ-OpenID" not in response.headers


def test_auth_answers_403_for_users_not_allowed() -> None:
    h = harness(allowed_openids="F" * 32)
    response = h.get("/_qqgate/auth", cookie=f"qqgate={h.session_for()}")
    assert response.status_int == 403 and "X-QQ-OpenID" not in response.headers


@pytest.mark.parametrize(
    ("setting", "avatar"),
    [
        pytest.param("true", "https://thirdqq.qlogo.cn/g?s=100", id="rewritten"),
        pytest.param("false", "http://thirdqq.qlogo.cn/g?s=100", id="as-qq-sent-it"),
    ],
)
def test_qq_avatars_come_as_https_unless_turned_off(setting: str, avatar: str) -> None:
    h = make_rig(
        profile=QQProfile(OPENID, NICK, "http://thirdqq.qlogo.cn/g?s=100", None),
        avatar_https=setting,
    )
    state, cookie = h.login()
    response = h.callback(f"code={h.qq.issue_code()}&state={state}", cookie)
    session = f"qqgate={set_cookie_value(response, 'qqgate')}"
    assert h.get("/_qqgate/userinfo", cookie=session).json["avatar_url"] == avatar
