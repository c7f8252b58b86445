"""Tests for qqgate.dev.fakeqq, the development provider that imitates graph.qq.com."""

from __future__ import annotations

import json
import re
import threading
import time
from urllib.parse import parse_qs, quote_from_bytes, urlsplit

import pytest
import webtest
from hypothesis import given, settings
from hypothesis import strategies as st

from qqgate.dev import fakeqq
from qqgate.dev.fakeqq import DEFAULT_USERS, FakeQQ, TestUser, create_app, openid_for, unionid_for

APP, KEY = "101000001", "key-one"
APP2, KEY2 = "102000002", "key-two"
CALLBACK = "https://app.example/_qqgate/callback"
# What the two apps registered at "QQ Connect": callbacks are matched exactly.
REGISTERED = {APP: [CALLBACK, CALLBACK + "?next=%2Fx"], APP2: [CALLBACK]}
JSONP = re.compile(r"^callback\(\s*(\{.*\})\s*\);?\s*$", re.DOTALL)


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake(clock: Clock) -> FakeQQ:
    return FakeQQ({APP: KEY, APP2: KEY2}, clock=clock, callbacks=REGISTERED, unionid_apps=[APP])


@pytest.fixture
def app(fake: FakeQQ) -> webtest.TestApp:
    return webtest.TestApp(fake)


def authorize_params(**overrides: str) -> dict[str, str]:
    params = {
        "response_type": "code",
        "client_id": APP,
        "redirect_uri": CALLBACK,
        "state": "st<&>1",
        "scope": "get_user_info",
    }
    return {k: v for k, v in {**params, **overrides}.items() if v is not None}


def approve(app: webtest.TestApp, user: str = "xiaoming", **overrides: str) -> dict[str, str]:
    """Click "approve as <user>" on the consent page; return the callback's query."""
    page = app.get("/oauth2.0/authorize", authorize_params(**overrides))
    resp = page.forms[f"form-{user}"].submit("user", value=user)
    assert resp.status_int == 302
    query = parse_qs(urlsplit(resp.location).query)
    return {k: v[0] for k, v in query.items()}


def token_params(code: str, /, **overrides: str | None) -> dict[str, str]:
    params = {
        "grant_type": "authorization_code",
        "client_id": APP,
        "client_secret": KEY,
        "code": code,
        "redirect_uri": CALLBACK,
    }
    return {k: v for k, v in {**params, **overrides}.items() if v is not None}


def parse_jsonp(body: str) -> dict:
    match = JSONP.match(body)
    assert match, body
    return json.loads(match[1])


def login(app: webtest.TestApp, user: str = "xiaoming", client_id: str = APP) -> str:
    """Run authorize + token; return the access token."""
    code = approve(app, user, client_id=client_id)["code"]
    secret = {APP: KEY, APP2: KEY2}[client_id]
    resp = app.get("/oauth2.0/token", token_params(code, client_id=client_id, client_secret=secret))
    return parse_qs(resp.text)["access_token"][0]


# -- authorize --------------------------------------------------------------------------------


def test_authorize_page_lists_users_and_escapes(app: webtest.TestApp) -> None:
    page = app.get("/oauth2.0/authorize", authorize_params(display="mobile"))
    assert page.content_type == "text/html"
    assert page.charset == "utf-8"
    assert '<html lang="zh-CN">' in page.text
    assert "QQ登录 (development provider)" in page.text
    for user in DEFAULT_USERS:
        button = page.html.find("button", id=f"approve-{user.key}")
        assert button["name"] == "user"
        assert button["value"] == user.key
        assert user.nickname in button.get_text()
        form = page.forms[f"form-{user.key}"]
        assert form.method.upper() == "POST"
        assert form.action == "/oauth2.0/authorize"
        assert form["state"].value == "st<&>1"
    assert page.html.find("button", id="cancel") is not None
    assert "&lt;b&gt;&quot;O&#x27;Neil&quot; &amp; co&lt;/b&gt;" in page.text
    assert "<b>" not in page.text
    assert 'value="st&lt;&amp;&gt;1"' in page.text


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        pytest.param({"client_id": "999"}, 100008, id="unknown-client"),
        pytest.param({"client_id": None}, 100001, id="missing-client"),
        pytest.param({"response_type": "token"}, 100000, id="bad-response-type"),
        pytest.param({"response_type": None}, 100000, id="missing-response-type"),
        pytest.param({"redirect_uri": None}, 100010, id="missing-redirect"),
        pytest.param({"redirect_uri": "ftp://app.example/cb"}, 100010, id="ftp-redirect"),
        pytest.param({"redirect_uri": "javascript:alert(1)"}, 100010, id="javascript-redirect"),
        pytest.param({"redirect_uri": "/relative"}, 100010, id="relative-redirect"),
    ],
)
def test_authorize_page_errors(app: webtest.TestApp, overrides: dict, code: int) -> None:
    page = app.get("/oauth2.0/authorize", authorize_params(**overrides))
    assert page.html.find(id="error-code").get_text() == str(code)
    assert page.html.find("form") is None


@pytest.mark.parametrize(
    ("redirect_uri", "prefix"),
    [
        pytest.param(CALLBACK, CALLBACK + "?code=", id="plain"),
        pytest.param(CALLBACK + "?next=%2Fx", CALLBACK + "?next=%2Fx&code=", id="with-query"),
    ],
)
def test_approve_redirects_with_code_and_state(
    app: webtest.TestApp, redirect_uri: str, prefix: str
) -> None:
    page = app.get("/oauth2.0/authorize", authorize_params(redirect_uri=redirect_uri))
    resp = page.forms["form-alice"].submit("user", value="alice")
    assert resp.status_int == 302
    assert resp.location.startswith(prefix)
    query = parse_qs(urlsplit(resp.location).query)
    assert query["state"] == ["st<&>1"]
    assert re.fullmatch(r"[0-9A-F]{32}", query["code"][0])


def test_approval_needs_the_button(app: webtest.TestApp) -> None:
    page = app.get("/oauth2.0/authorize", authorize_params())
    assert page.forms["form-nasty"].submit(status=400)
    assert page.forms["form-nasty"].submit("user").status_int == 302


def test_codes_are_random(app: webtest.TestApp) -> None:
    assert approve(app)["code"] != approve(app)["code"]


def test_cancel_redirects_with_usercancel(app: webtest.TestApp) -> None:
    page = app.get("/oauth2.0/authorize", authorize_params())
    resp = page.forms["form-cancel"].submit("cancel")
    query = parse_qs(urlsplit(resp.location).query)
    assert query == {"usercancel": ["1"], "state": ["st<&>1"]}


@pytest.mark.parametrize(
    ("form", "status", "text"),
    [
        pytest.param({"client_id": "999", "user": "alice"}, 200, "100008", id="unknown-client"),
        pytest.param({"redirect_uri": "ftp://x/", "user": "alice"}, 200, "100010", id="bad-uri"),
        pytest.param({"user": "mallory"}, 400, "Unknown test user", id="unknown-user"),
        pytest.param({}, 400, "Unknown test user", id="no-user"),
    ],
)
def test_approve_post_is_checked_again(
    app: webtest.TestApp, form: dict, status: int, text: str
) -> None:
    data = {"client_id": APP, "redirect_uri": CALLBACK, "state": "s", **form}
    resp = app.post("/oauth2.0/authorize", data, status=status)
    assert text in resp.text


# -- token ------------------------------------------------------------------------------------


def test_token_success_url_encoded(app: webtest.TestApp) -> None:
    code = approve(app)["code"]
    resp = app.get("/oauth2.0/token", token_params(code))
    assert resp.content_type in ("text/html", "text/plain")
    answer = parse_qs(resp.text, strict_parsing=True)
    assert answer.keys() == {"access_token", "expires_in", "refresh_token"}
    assert answer["expires_in"] == ["5184000"]  # 60 days, as a string (current docs)


def test_token_success_json(app: webtest.TestApp) -> None:
    code = approve(app)["code"]
    answer = json.loads(app.get("/oauth2.0/token", token_params(code, fmt="json")).text)
    assert answer["expires_in"] == "5184000"  # a string in JSON too, as QQ sends it
    assert answer["access_token"] != answer["refresh_token"]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        pytest.param({"grant_type": "password"}, 100004, id="bad-grant-type"),
        pytest.param({"client_id": None}, 100001, id="missing-client-id"),
        pytest.param({"client_secret": None}, 100002, id="missing-client-secret"),
        pytest.param({"code": None}, 100005, id="missing-code"),
        pytest.param({"client_id": "999"}, 100008, id="unknown-app"),
        pytest.param({"client_secret": "wrong"}, 100009, id="wrong-app-key"),
        pytest.param({"redirect_uri": CALLBACK + "x"}, 100010, id="other-redirect-uri"),
        pytest.param({"redirect_uri": None}, 100010, id="missing-redirect-uri"),
        pytest.param({"code": "0" * 32}, 100019, id="unknown-code"),
        pytest.param({"client_id": APP2, "client_secret": KEY2}, 100019, id="code-of-other-app"),
    ],
)
@pytest.mark.parametrize("fmt", [pytest.param(None, id="jsonp"), pytest.param("json", id="json")])
def test_token_errors(app: webtest.TestApp, overrides: dict, error: int, fmt: str | None) -> None:
    code = approve(app)["code"]
    resp = app.get("/oauth2.0/token", token_params(code, fmt=fmt, **overrides))
    assert resp.status_int == 200  # QQ reports errors in the body only
    answer = json.loads(resp.text) if fmt else parse_jsonp(resp.text)
    assert answer["error"] == error
    assert answer["error_description"]


def test_code_is_single_use(app: webtest.TestApp) -> None:
    code = approve(app)["code"]
    app.get("/oauth2.0/token", token_params(code))
    again = app.get("/oauth2.0/token", token_params(code))
    assert parse_jsonp(again.text)["error"] == 100020


def test_failed_exchange_does_not_burn_the_code(app: webtest.TestApp) -> None:
    code = approve(app)["code"]
    app.get("/oauth2.0/token", token_params(code, client_secret="wrong"))
    assert "access_token=" in app.get("/oauth2.0/token", token_params(code)).text


@pytest.mark.parametrize(
    ("age", "expired"),
    [
        pytest.param(599.0, False, id="just-in-time"),
        pytest.param(600.0, True, id="ten-minutes"),
        pytest.param(86400.0, True, id="a-day"),
    ],
)
def test_code_expiry(app: webtest.TestApp, clock: Clock, age: float, expired: bool) -> None:
    code = approve(app)["code"]
    clock.now += age
    body = app.get("/oauth2.0/token", token_params(code)).text
    assert (parse_jsonp(body)["error"] == 100067) if expired else body.startswith("access_token=")


def test_stored_codes_are_capped(app: webtest.TestApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(fakeqq, "MAX_ENTRIES", 2)
    first = approve(app)["code"]
    approve(app), approve(app)
    assert parse_jsonp(app.get("/oauth2.0/token", token_params(first)).text)["error"] == 100019


# -- me ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "keys"),
    [
        pytest.param({}, {"client_id", "openid"}, id="jsonp"),
        pytest.param({"fmt": "json"}, {"client_id", "openid"}, id="json"),
        pytest.param({"unionid": "1"}, {"client_id", "openid", "unionid"}, id="jsonp-unionid"),
        pytest.param(
            {"fmt": "json", "unionid": "1"}, {"client_id", "openid", "unionid"}, id="json-unionid"
        ),
    ],
)
def test_me_shapes(app: webtest.TestApp, params: dict, keys: set) -> None:
    token = login(app)
    resp = app.get("/oauth2.0/me", {"access_token": token, **params})
    assert resp.content_type == "text/html"
    answer = json.loads(resp.text) if "fmt" in params else parse_jsonp(resp.text)
    assert answer.keys() == keys
    assert answer["client_id"] == APP
    assert answer["openid"] == openid_for(APP, "xiaoming")
    if "unionid" in keys:
        assert answer["unionid"] == unionid_for("xiaoming")


@pytest.mark.parametrize(
    ("token", "age", "error"),
    [
        pytest.param("bogus", 0, 100016, id="unknown-token"),
        pytest.param("", 0, 100016, id="empty-token"),
        pytest.param(None, 91 * 86400, 100014, id="expired-token"),
    ],
)
@pytest.mark.parametrize("fmt", [pytest.param(None, id="jsonp"), pytest.param("json", id="json")])
def test_me_bad_token(
    app: webtest.TestApp, clock: Clock, token: str | None, age: int, error: int, fmt: str | None
) -> None:
    token = login(app) if token is None else token
    clock.now += age
    params = {"access_token": token, **({"fmt": fmt} if fmt else {})}
    body = app.get("/oauth2.0/me", params).text
    assert (json.loads(body) if fmt else parse_jsonp(body))["error"] == error


# -- get_user_info ----------------------------------------------------------------------------


@pytest.mark.parametrize("user", [pytest.param(u, id=u.key) for u in DEFAULT_USERS])
def test_user_info_round_trips_nickname(app: webtest.TestApp, user: TestUser) -> None:
    token = login(app, user.key)
    openid = openid_for(APP, user.key)
    params = {"access_token": token, "oauth_consumer_key": APP, "openid": openid}
    resp = app.get("/user/get_user_info", params)
    assert resp.headers["Content-Type"] == "text/html; charset=utf-8"
    assert json.dumps(user.nickname, ensure_ascii=False).encode() in resp.body  # raw UTF-8
    info = json.loads(resp.body.decode("utf-8"))
    assert (info["ret"], info["msg"], info["nickname"]) == (0, "", user.nickname)
    assert info["gender"] == user.gender
    assert info["vip"] == info["is_yellow_vip"] == info["level"] == "0"
    assert info["figureurl_qq_1"] == f"http://localhost/avatar/{openid}/40"
    assert info["figureurl_qq_2"].endswith("/100")
    avatar = app.get(urlsplit(info["figureurl_qq_2"]).path)
    assert avatar.content_type == "image/svg+xml"
    assert avatar.body.startswith(b"<svg")


@pytest.mark.parametrize(
    ("overrides", "ret"),
    [
        pytest.param({"access_token": "bogus"}, 1002, id="bad-token"),
        pytest.param({"access_token": None}, 1002, id="no-token"),
        pytest.param({"oauth_consumer_key": APP2}, -1, id="other-consumer-key"),
        pytest.param({"openid": openid_for(APP2, "xiaoming")}, -1, id="openid-of-other-app"),
        pytest.param({"openid": None}, -1, id="no-openid"),
    ],
)
def test_user_info_errors(app: webtest.TestApp, overrides: dict, ret: int) -> None:
    params = {
        "access_token": login(app),
        "oauth_consumer_key": APP,
        "openid": openid_for(APP, "xiaoming"),
    }
    params = {k: v for k, v in {**params, **overrides}.items() if v is not None}
    info = json.loads(app.get("/user/get_user_info", params).text)
    assert info["ret"] == ret
    assert "nickname" not in info


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/avatar/nothex/40", id="not-hex"),
        pytest.param("/avatar/ABCDEF0123/0", id="size-zero"),
        pytest.param("/avatar/ABCDEF0123/5000", id="size-huge"),
        pytest.param("/nowhere", id="unknown-path"),
        pytest.param("/_fake/nowhere", id="unknown-control"),
    ],
)
def test_not_found(app: webtest.TestApp, path: str) -> None:
    assert app.get(path, status=404).content_type == "text/plain"


# -- faults -----------------------------------------------------------------------------------


def api_request(app: webtest.TestApp, endpoint: str, token: str, code: str) -> webtest.TestResponse:
    if endpoint == "token":
        return app.get("/oauth2.0/token", token_params(code), expect_errors=True)
    if endpoint == "me":
        return app.get("/oauth2.0/me", {"access_token": token}, expect_errors=True)
    params = {"access_token": token, "oauth_consumer_key": APP, "openid": openid_for(APP, "alice")}
    return app.get("/user/get_user_info", params, expect_errors=True)


def is_jsonp_error(code: int):
    return lambda resp: parse_jsonp(resp.text)["error"] == code


FAULT_CASES = [
    *(
        pytest.param(
            ep, "http500", lambda r: r.status_int == 500 and "<html" in r.text, id=ep + "-500"
        )
        for ep in ("token", "me", "user_info")
    ),
    *(
        pytest.param(
            ep, "html", lambda r: r.status_int == 200 and "<html" in r.text, id=ep + "-html"
        )
        for ep in ("token", "me", "user_info")
    ),
    *(
        pytest.param(ep, "empty", lambda r: r.status_int == 200 and r.body == b"", id=ep + "-empty")
        for ep in ("token", "me", "user_info")
    ),
    *(
        pytest.param(ep, "garbage", lambda r: r.text == "callback( {not json ); ", id=ep + "-junk")
        for ep in ("token", "me", "user_info")
    ),
    pytest.param("token", "error:100062", is_jsonp_error(100062), id="token-error-code"),
    pytest.param("me", "error:100013", is_jsonp_error(100013), id="me-error-code"),
    pytest.param(
        "user_info", "error:100030", lambda r: json.loads(r.text)["ret"] == 100030, id="info-error"
    ),
    pytest.param(
        "me",
        "other_client",
        lambda r: parse_jsonp(r.text)["client_id"] not in (APP, APP2),
        id="me-other-client",
    ),
    pytest.param(
        "user_info", "ret", lambda r: json.loads(r.text)["ret"] == 1002, id="user-info-ret"
    ),
]


@pytest.mark.parametrize(("endpoint", "fault", "check"), FAULT_CASES)
@pytest.mark.parametrize("how", ["constructor", "set_fault", "control-url"])
def test_faults(clock: Clock, endpoint: str, fault: str, check, how: str) -> None:
    faults = {endpoint: fault} if how == "constructor" else None
    fake = FakeQQ(
        {APP: KEY, APP2: KEY2}, clock=clock, faults=faults, callbacks=REGISTERED, unionid_apps=[APP]
    )
    app = webtest.TestApp(fake)
    code = approve(app, "alice")["code"]
    token = login(app, "alice") if endpoint != "token" else ""
    if how == "set_fault":
        fake.set_fault(endpoint, fault)
    elif how == "control-url":
        app.post("/_fake/faults", {"endpoint": endpoint, "fault": fault})
    assert check(api_request(app, endpoint, token, code))
    assert app.get("/oauth2.0/authorize", authorize_params()).forms  # authorize is never faulted
    app.post("/_fake/faults", {"endpoint": endpoint, "fault": ""})
    assert api_request(app, endpoint, token, code).status_int == 200
    assert fake.faults == {}


@pytest.mark.parametrize(
    ("endpoint", "fault"),
    [
        pytest.param("authorize", "http500", id="not-an-api-endpoint"),
        pytest.param("token", "other_client", id="other-client-is-me-only"),
        pytest.param("me", "ret", id="ret-is-user-info-only"),
        pytest.param("me", "error:abc", id="error-not-numeric"),
        pytest.param("me", "explode", id="unknown-fault"),
    ],
)
def test_invalid_faults_are_rejected(
    fake: FakeQQ, app: webtest.TestApp, endpoint: str, fault: str
) -> None:
    with pytest.raises(ValueError, match="unknown"):
        fake.set_fault(endpoint, fault)
    with pytest.raises(ValueError, match="unknown"):
        FakeQQ({APP: KEY}, faults={endpoint: fault})
    app.post("/_fake/faults", {"endpoint": endpoint, "fault": fault}, status=400)
    assert fake.faults == {}


@pytest.mark.parametrize(
    "release", [pytest.param("release", id="release"), pytest.param("reset", id="reset-url")]
)
def test_hang_ends_on_release(fake: FakeQQ, app: webtest.TestApp, release: str) -> None:
    token = login(app)
    fake.set_fault("me", "hang")
    answers = []
    thread = threading.Thread(
        target=lambda: answers.append(app.get(f"/oauth2.0/me?access_token={token}"))
    )
    thread.start()
    time.sleep(0.2)
    assert thread.is_alive()  # still hanging
    fake.release() if release == "release" else app.post("/_fake/reset")
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert parse_jsonp(answers[0].text)["openid"] == openid_for(APP, "xiaoming")


def test_hang_is_capped(
    fake: FakeQQ, app: webtest.TestApp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fake, "hang_seconds", 0.05)
    fake.set_fault("token", "hang")
    started = time.monotonic()
    assert parse_jsonp(app.get("/oauth2.0/token").text)["error"] == 100004
    assert time.monotonic() - started < 2
    fake.release()
    fake.set_fault("token", "hang")  # a fresh hang after release() still waits
    started = time.monotonic()
    app.get("/oauth2.0/token")
    assert time.monotonic() - started >= 0.04


# -- counters, control paths, identity --------------------------------------------------------


def test_call_counter_and_reset(fake: FakeQQ, app: webtest.TestApp) -> None:
    token = login(app)
    app.get("/oauth2.0/me", {"access_token": token})
    app.get("/oauth2.0/me", {"access_token": token})
    app.get("/user/get_user_info", {"access_token": token})
    expected = {"authorize": 2, "token": 1, "me": 2, "user_info": 1}
    assert fake.calls == expected
    assert app.get("/_fake/calls").json == expected
    fake.set_fault("token", "empty")
    assert app.get("/_fake/faults").json == {"token": "empty"}
    app.post("/_fake/reset")
    assert fake.calls == {} and fake.faults == {}
    app.get("/oauth2.0/me", {"access_token": token})  # tokens survive a reset
    assert app.get("/_fake/calls").json == {"me": 1}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        pytest.param("GET", "/_fake/reset", id="get-reset"),
        pytest.param("POST", "/_fake/calls", id="post-calls"),
    ],
)
def test_control_methods(app: webtest.TestApp, method: str, path: str) -> None:
    app.request(path, method=method, status=405)


def test_counter_is_thread_safe(fake: FakeQQ, app: webtest.TestApp) -> None:
    def hammer() -> None:
        for _ in range(50):
            app.get("/oauth2.0/me", {"access_token": "x"})

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert fake.calls["me"] == 400


def test_latency_applies_to_api_only(monkeypatch: pytest.MonkeyPatch) -> None:
    sleeps: list[float] = []
    monkeypatch.setattr(fakeqq.time, "sleep", sleeps.append)
    app = webtest.TestApp(FakeQQ({APP: KEY}, latency=(0.01, 0.2), callbacks=REGISTERED))
    app.get("/oauth2.0/authorize", authorize_params())
    assert sleeps == []
    app.get("/oauth2.0/me")
    assert len(sleeps) == 1 and 0.01 <= sleeps[0] <= 0.2


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        pytest.param(({},), {}, id="no-apps"),
        pytest.param(({APP: KEY},), {"latency": (0.2, 0.1)}, id="latency-inverted"),
        pytest.param(({APP: KEY},), {"latency": (-1.0, 0.1)}, id="latency-negative"),
    ],
)
def test_constructor_validates(args: tuple, kwargs: dict) -> None:
    with pytest.raises(ValueError):
        FakeQQ(*args, **kwargs)


def test_openid_and_unionid() -> None:
    openid = openid_for(APP, "xiaoming")
    assert re.fullmatch(r"[0-9A-F]{32}", openid)
    assert openid == openid_for(APP, "xiaoming")
    assert openid != openid_for(APP2, "xiaoming")
    assert openid != openid_for(APP, "alice")
    assert re.fullmatch(r"UID_[0-9A-F]{28}", unionid_for("xiaoming"))
    assert unionid_for("xiaoming") != unionid_for("alice")


def test_openid_per_app_through_the_flow(app: webtest.TestApp) -> None:
    openids = {}
    for client_id in (APP, APP2):
        me = app.get("/oauth2.0/me", {"access_token": login(app, client_id=client_id)})
        openids[client_id] = parse_jsonp(me.text)["openid"]
    assert openids == {APP: openid_for(APP, "xiaoming"), APP2: openid_for(APP2, "xiaoming")}


def test_default_users() -> None:
    keys = {user.key: user.nickname for user in DEFAULT_USERS}
    assert keys["xiaoming"] == "小明🐧"
    assert keys["alice"] == "Alice"
    assert all(c in keys["nasty"] for c in "<>\"'&")


# -- create_app -------------------------------------------------------------------------------


def test_create_app_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("FAKEQQ_APP_ID", "FAKEQQ_APP_KEY", "FAKEQQ_LATENCY_MS", "FAKEQQ_FAULTS"):
        monkeypatch.delenv(name, raising=False)
    fake = create_app()
    assert fake.apps == {"101000001": "fake-app-key-0123456789abcdef"}
    assert fake.latency == (0.0, 0.0)
    assert fake.faults == {}


@pytest.mark.parametrize(
    ("latency_ms", "faults_env", "latency", "faults"),
    [
        pytest.param("0-200", "", (0.0, 0.2), {}, id="range"),
        pytest.param("50", " ", (0.05, 0.05), {}, id="single"),
        pytest.param(
            "",
            "token=http500, me=other_client",
            (0.0, 0.0),
            {"token": "http500", "me": "other_client"},
            id="faults",
        ),
        pytest.param(
            "10-20",
            "user_info=error:100030",
            (0.01, 0.02),
            {"user_info": "error:100030"},
            id="error-fault",
        ),
    ],
)
def test_create_app_from_env(
    monkeypatch: pytest.MonkeyPatch, latency_ms: str, faults_env: str, latency: tuple, faults: dict
) -> None:
    monkeypatch.setenv("FAKEQQ_APP_ID", "555")
    monkeypatch.setenv("FAKEQQ_APP_KEY", "k")
    monkeypatch.setenv("FAKEQQ_LATENCY_MS", latency_ms)
    monkeypatch.setenv("FAKEQQ_FAULTS", faults_env)
    fake = create_app()
    assert fake.apps == {"555": "k"}
    assert fake.latency == pytest.approx(latency)
    assert fake.faults == faults


@pytest.mark.parametrize(
    ("name", "value"),
    [
        pytest.param("FAKEQQ_LATENCY_MS", "fast", id="latency-words"),
        pytest.param("FAKEQQ_LATENCY_MS", "200-100", id="latency-inverted"),
        pytest.param("FAKEQQ_FAULTS", "token", id="fault-without-equals"),
        pytest.param("FAKEQQ_FAULTS", "token=explode", id="fault-unknown"),
        pytest.param("FAKEQQ_FAULTS", "login=http500", id="endpoint-unknown"),
    ],
)
def test_create_app_rejects_bad_env(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValueError):
        create_app()


# -- robustness -------------------------------------------------------------------------------

PATHS = ["/oauth2.0/authorize", "/oauth2.0/token", "/oauth2.0/me", "/user/get_user_info"]


@settings(max_examples=200, deadline=None)
@given(path=st.sampled_from(PATHS), raw=st.binary(max_size=80), post=st.booleans())
def test_arbitrary_parameters_never_crash(path: str, raw: bytes, post: bool) -> None:
    app = webtest.TestApp(FakeQQ({APP: KEY}, callbacks=REGISTERED))
    query = quote_from_bytes(raw, safe="=&")
    if post:
        resp = app.post(
            path, query, content_type="application/x-www-form-urlencoded", expect_errors=True
        )
    else:
        resp = app.get(f"{path}?{query}", expect_errors=True)
    assert resp.status_int < 500


# -- as strict as QQ: registered callbacks, unionid permission ---------------------------------


@pytest.mark.parametrize(
    "redirect_uri",
    [
        pytest.param("https://app.example/_qqgate/callback/", id="trailing-slash"),
        pytest.param("http://app.example/_qqgate/callback", id="http-not-https"),
        pytest.param("https://app.example:8443/_qqgate/callback", id="other-port"),
        pytest.param("https://APP.example/_qqgate/callback", id="host-case"),
        pytest.param("https://evil.example/_qqgate/callback", id="other-host"),
        pytest.param("https://app.example/_qqgate/callback?x=1", id="extra-query"),
        pytest.param("https://app.example/app/_qqgate/callback", id="other-path"),
    ],
)
def test_a_callback_not_registered_exactly_is_illegal(
    app: webtest.TestApp, redirect_uri: str
) -> None:
    """QQ checks redirect_uri against the app's registered callback, so must development: a
    mismatch stops on the provider's page, never reaching the callback, on GET and on POST."""
    page = app.get("/oauth2.0/authorize", authorize_params(redirect_uri=redirect_uri))
    assert page.html.find(id="error-code").get_text() == "100010"
    assert page.html.find("form") is None
    assert CALLBACK in page.html.find(id="hint").get_text(), "say what is registered"
    form = {"client_id": APP, "redirect_uri": redirect_uri, "state": "s", "user": "alice"}
    post = app.post("/oauth2.0/authorize", form)
    assert post.status_int == 200 and "100010" in post.text and "Location" not in post.headers


def test_an_app_without_callbacks_cannot_sign_in() -> None:
    page = webtest.TestApp(FakeQQ({APP: KEY})).get("/oauth2.0/authorize", authorize_params())
    assert page.html.find(id="error-code").get_text() == "100010"
    assert "registered: none" in page.html.find(id="hint").get_text()


def test_callbacks_can_be_registered_later() -> None:
    fake = FakeQQ({APP: KEY})
    fake.register(APP, CALLBACK)
    assert approve(webtest.TestApp(fake))["code"]


@pytest.mark.parametrize("fmt", [{}, {"fmt": "json"}], ids=["jsonp", "json"])
def test_unionid_needs_the_permission(app: webtest.TestApp, fmt: dict) -> None:
    """APP2 was not granted unionid: QQ fails /me?unionid=1 with 100048 (without unionid=1 the
    same token works)."""
    token = login(app, client_id=APP2)
    resp = app.get("/oauth2.0/me", {"access_token": token, "unionid": "1", **fmt})
    answer = json.loads(resp.text) if fmt else parse_jsonp(resp.text)
    assert answer == {"error": 100048, "error_description": "companyid not set"}
    plain = parse_jsonp(app.get("/oauth2.0/me", {"access_token": token}).text)
    assert plain["client_id"] == APP2 and "unionid" not in plain


def test_create_app_reads_callbacks_and_unionid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKEQQ_APP_ID", APP)
    monkeypatch.setenv("FAKEQQ_APP_KEY", KEY)
    monkeypatch.setenv("FAKEQQ_REDIRECT_URI", f"{CALLBACK} https://b.example/cb")
    monkeypatch.setenv("FAKEQQ_UNIONID", "true")
    fake = create_app()
    assert fake.callbacks == {APP: {CALLBACK, "https://b.example/cb"}}
    assert fake.unionid_apps == {APP}
    monkeypatch.setenv("FAKEQQ_UNIONID", "maybe")
    with pytest.raises(ValueError, match="FAKEQQ_UNIONID"):
        create_app()


def test_drip_sends_the_real_answer_a_byte_at_a_time(fake: FakeQQ) -> None:
    token = login(webtest.TestApp(fake))
    fake.set_fault("me", "drip")
    fake.drip_seconds = 0.001
    environ = webtest.TestRequest.blank(f"/oauth2.0/me?access_token={token}").environ
    pieces = list(fake(environ, lambda status, headers, exc_info=None: None))
    assert pieces and all(len(piece) == 1 for piece in pieces)
    assert parse_jsonp(b"".join(pieces).decode())["openid"] == openid_for(APP, "xiaoming")


def test_drip_sends_the_rest_at_once_on_release(fake: FakeQQ) -> None:
    token = login(webtest.TestApp(fake))
    fake.set_fault("me", "drip")
    fake.drip_seconds = 30.0
    environ = webtest.TestRequest.blank(f"/oauth2.0/me?access_token={token}").environ
    pieces = fake(environ, lambda status, headers, exc_info=None: None)
    fake.release()
    started = time.monotonic()
    body = b"".join(pieces)
    assert time.monotonic() - started < 2
    assert parse_jsonp(body.decode())["openid"] == openid_for(APP, "xiaoming")
