"""``/auth`` and ``/refused`` in-process (``qqgate.forward``): what each front's question gets.

nginx (``X-Original-*``) gets bare statuses and fetches the page from ``/refused``; Caddy and
Traefik (``X-Forwarded-*``) pass ``/auth``'s answer to the browser, so it is the full answer. The
headers only ever shape the refusal: the cookie alone decides.
"""

from __future__ import annotations

import logging

import pytest

from qqgate.forward import Asked, asked

from .rig import OPENID, Rig, blank, make_rig

HTML = "text/html,application/xhtml+xml"
NGINX = {"X-Original-URI": "/app?x=1"}
CADDY = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": "/app?x=1", "X-Forwarded-Host": "a.b"}
LOGIN = "/_qqgate/login?next=%2Fapp%3Fx%3D1"


@pytest.mark.parametrize(
    ("headers", "method", "expected"),
    [
        pytest.param({}, "GET", Asked("GET", None, False), id="no-front"),
        pytest.param(NGINX, "GET", Asked("GET", "/app?x=1", False), id="nginx"),
        pytest.param(
            {**NGINX, "X-Original-Method": "POST"},
            "GET",
            Asked("POST", "/app?x=1", False),
            id="nginx-post",
        ),
        pytest.param(CADDY, "GET", Asked("GET", "/app?x=1", True), id="caddy"),
        pytest.param(
            {"X-Forwarded-Method": "PUT"}, "GET", Asked("PUT", None, True), id="method-only"
        ),
        pytest.param(
            {"X-Original-URL": "https://a.b/app?x=1", "X-Original-Method": "GET"},
            "GET",
            Asked("GET", "/app?x=1", False),
            id="ingress-nginx",
        ),
        pytest.param(
            {"X-Original-URL": "http://[::1"}, "GET", Asked("GET", None, False), id="bad-url"
        ),
        # nginx passes a client's X-Forwarded-* on to /auth: its own X-Original-URI wins.
        pytest.param({**CADDY, **NGINX}, "GET", Asked("GET", "/app?x=1", False), id="both"),
    ],
)
def test_asked_reads_each_front(headers, method, expected) -> None:
    assert asked(blank("/_qqgate/auth", headers=headers, method=method).environ) == expected


# --- nginx: bare statuses -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("extra", "hint"),
    [
        pytest.param({}, LOGIN, id="get"),
        pytest.param({"X-Original-Method": "HEAD"}, LOGIN, id="head"),
        pytest.param({"X-Original-Method": "POST"}, None, id="post-is-an-api-call"),
        pytest.param({"Accept": "application/json"}, None, id="json"),
    ],
)
def test_nginx_gets_a_bare_401_naming_the_login_only_for_navigations(extra, hint) -> None:
    response = make_rig().call(blank("/_qqgate/auth", headers={**NGINX, **extra}))
    assert response.status_int == 401 and response.body == b""
    assert response.headers.get("X-QQGate-Login") == hint
    assert "Location" not in response.headers


# --- Caddy and Traefik: the answer goes to the browser ------------------------------------------


def test_forwarded_browser_navigation_gets_the_302_to_the_login() -> None:
    response = make_rig().call(blank("/_qqgate/auth", headers=CADDY))
    assert response.status_int == 302 and response.headers["Location"] == LOGIN
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"X-Forwarded-Method": "POST"}, id="post"),
        pytest.param({"Accept": "application/json"}, id="json"),
        pytest.param({"X-Requested-With": "XMLHttpRequest"}, id="xhr"),
    ],
)
def test_forwarded_api_call_gets_the_json_401(extra) -> None:
    response = make_rig().call(blank("/_qqgate/auth", headers={**CADDY, **extra}))
    assert response.status_int == 401
    assert response.json == {"error": "login_required", "login_url": LOGIN}


def test_forwarded_signed_in_gets_2xx_with_the_identity_headers() -> None:
    rig = make_rig()
    cookie = f"qqgate={rig.session_for()}"
    response = rig.call(blank("/_qqgate/auth", cookie=cookie, headers=CADDY))
    assert response.status_int == 202 and response.headers["X-QQ-OpenID"] == OPENID
    assert response.headers["X-QQ-Nickname"] == "%E5%B0%8F%E6%98%8E%F0%9F%90%A7"


def outsider() -> tuple[Rig, str]:
    """A gate whose allow-list lacks its stub's user, and that user's session cookie."""
    rig = make_rig(allowed_openids="F" * 32)
    return rig, f"qqgate={rig.session_for()}"


def test_forwarded_user_not_allowed_gets_the_403_page_and_a_log_line(caplog) -> None:
    rig, cookie = outsider()
    with caplog.at_level(logging.WARNING, logger="qqgate"):
        response = rig.call(blank("/_qqgate/auth", cookie=cookie, headers=CADDY))
    assert response.status_int == 403 and OPENID in response.text
    assert [r.getMessage() for r in caplog.records if "access denied" in r.getMessage()]


def test_a_bad_forwarded_uri_falls_back_to_the_home_page() -> None:
    headers = {**CADDY, "X-Forwarded-Uri": "//evil.example/x"}
    response = make_rig().call(blank("/_qqgate/auth", headers=headers))
    assert response.headers["Location"] == "/_qqgate/login?next=%2F"


# --- /refused: what nginx's error_page shows -------------------------------------------------------


def test_refused_presents_without_logging_again(caplog) -> None:
    rig, cookie = outsider()
    with caplog.at_level(logging.INFO, logger="qqgate"):
        page = rig.call(blank("/_qqgate/refused", cookie=cookie, headers=NGINX))
    assert page.status_int == 403 and OPENID in page.text and "/_qqgate/logout" in page.text
    assert not caplog.records


@pytest.mark.parametrize(
    ("extra", "status"),
    [
        pytest.param({}, 302, id="navigation"),
        pytest.param({"X-Original-Method": "POST"}, 401, id="post"),
        pytest.param({"Accept": "*/*"}, 401, id="curl"),
    ],
)
def test_refused_anonymous(extra, status) -> None:
    response = make_rig().call(blank("/_qqgate/refused", headers={**NGINX, **extra}))
    assert response.status_int == status
    if status == 302:
        assert response.headers["Location"] == LOGIN
    else:
        assert response.json["login_url"] == LOGIN


def test_refused_after_signing_in_elsewhere_goes_back() -> None:
    rig = make_rig()
    cookie = f"qqgate={rig.session_for()}"
    response = rig.call(blank("/_qqgate/refused", cookie=cookie, headers=NGINX))
    assert response.status_int == 302 and response.headers["Location"] == "/app?x=1"


# --- what nginx may cache ------------------------------------------------------------------------


def accel_expires(rig: Rig, cookie: str | None, key: str | None) -> str:
    headers = {**NGINX, **({"X-QQGate-Cache-Key": key} if key is not None else {})}
    return rig.call(blank("/_qqgate/auth", cookie=cookie, headers=headers)).headers[
        "X-Accel-Expires"
    ]


def test_a_2xx_is_cacheable_only_under_a_token_of_its_own_identity() -> None:
    rig = make_rig()
    token = rig.session_for()
    cookie = f"qqgate={token}"
    assert accel_expires(rig, cookie, token) == "10"  # auth_cache_seconds' default
    assert accel_expires(rig, cookie, None) == "0"  # a front that names no key caches nothing
    assert accel_expires(rig, cookie, "") == "0"
    assert accel_expires(rig, cookie, "forged") == "0"
    assert accel_expires(rig, cookie, rig.session_for(openid="F" * 32)) == "0"  # someone else's


def test_the_cache_never_outlives_the_session_or_the_setting() -> None:
    rig = make_rig(session_max_age="100", session_refresh="99")  # not yet due for a refresh
    token = rig.session_for(signed_in_at=int(rig.clock()) - 97)  # 3 seconds left
    assert accel_expires(rig, f"qqgate={token}", token) == "3"
    rig = make_rig(auth_cache_seconds="0")
    token = rig.session_for()
    assert accel_expires(rig, f"qqgate={token}", token) == "0"


def test_refusals_are_never_cacheable() -> None:
    rig, cookie = outsider()
    token = cookie.split("=", 1)[1]
    assert accel_expires(rig, cookie, token) == "0"  # 403
    assert accel_expires(make_rig(), None, "") == "0"  # 401


@pytest.mark.parametrize("value", ["-1", "301", "ten"])
def test_a_bad_auth_cache_seconds_names_the_key(value) -> None:
    from qqgate.config import ConfigError

    with pytest.raises(ConfigError) as raised:
        make_rig(auth_cache_seconds=value)
    assert raised.value.keys == ["auth_cache_seconds"]


# --- WebSocket handshakes: the Origin, as in proxy mode --------------------------------------------

HANDSHAKE = {
    **NGINX,
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
}


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        pytest.param(None, 202, id="no-origin-not-a-browser"),
        pytest.param("https://app.example.com", 202, id="own"),
        pytest.param("https://chat.example.net", 202, id="listed"),
        pytest.param("https://evil.example", 403, id="cross-site"),
        pytest.param("https://app.example.com.evil.example", 403, id="suffix"),
        pytest.param("null", 403, id="null"),
    ],
)
def test_websocket_handshakes_need_our_origin_and_are_never_cached(origin, status) -> None:
    rig = make_rig(websocket_origins="https://chat.example.net")
    token = rig.session_for()
    headers = {**HANDSHAKE, "X-QQGate-Cache-Key": token}
    if origin is not None:
        headers["Origin"] = origin
    response = rig.call(blank("/_qqgate/auth", cookie=f"qqgate={token}", headers=headers))
    assert response.status_int == status
    assert response.headers["X-Accel-Expires"] == "0"
    refused = rig.call(blank("/_qqgate/refused", cookie=f"qqgate={token}", headers=headers))
    assert refused.status_int == (302 if status == 202 else 403)
