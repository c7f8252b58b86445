"""A development provider that answers like graph.qq.com, for trying qqgate without QQ.

``FakeQQ`` is a WSGI app serving QQ Connect's four endpoints with the *real* answer shapes, so a
client that works against it has already met QQ's quirks:

* ``GET /oauth2.0/authorize`` shows a consent page; a test user is chosen by a POST from that page
  (never automatically), then the browser goes to ``redirect_uri?code=C&state=S``.
* ``/oauth2.0/token`` answers ``access_token=..&expires_in=..`` url-encoded (JSON with ``fmt=json``)
  and errors as JSONP ``callback( {"error":100019,...} );`` with HTTP 200.
* ``/oauth2.0/me`` answers JSONP ``callback( {"client_id":..,"openid":..} );``.
* ``/user/get_user_info`` answers JSON served as ``text/html``; failures carry ``ret != 0``.

The fault switch (``faults=``, :meth:`FakeQQ.set_fault`, ``POST /_fake/faults``) makes an API
endpoint misbehave the ways real upstreams do: ``http500``, ``html``, ``empty``, ``garbage``,
``error:NNNNNN``, ``hang``, plus ``other_client`` (me) and ``ret`` (user_info). ``GET /_fake/calls``
and ``POST /_fake/reset`` let tests drive a provider running in another process.

Codes and tokens live in memory: run it as a single worker, e.g.
``gunicorn -k gthread --threads 8 'qqgate.dev.fakeqq:create_app()'``. The ``/_fake`` control paths
have no authentication: this is a development tool, never expose it to the internet.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import html
import json
import os
import random
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from webob import Request, Response
from webob.exc import HTTPFound

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["DEFAULT_USERS", "FakeQQ", "TestUser", "create_app", "openid_for", "unionid_for"]

CODE_LIFETIME = 600.0  # QQ: "the code lives 10 minutes"
TOKEN_LIFETIME = 7_776_000  # 90 days, what QQ sends as expires_in
MAX_ENTRIES = 100_000  # per store; a load test must not grow memory without bound
OTHER_CLIENT_ID = "100000999"  # the app a token "belongs to" under the other_client fault
API_PATHS = {"/oauth2.0/token": "token", "/oauth2.0/me": "me", "/user/get_user_info": "user_info"}
COMMON_FAULTS = frozenset({"http500", "html", "empty", "garbage", "hang"})
AVATAR_SIZES = (
    ("figureurl", 30),
    ("figureurl_1", 50),
    ("figureurl_2", 100),
    ("figureurl_qq_1", 40),
    ("figureurl_qq_2", 100),
    ("figureurl_qq", 640),
)
VIP_FIELDS = ("is_yellow_vip", "vip", "yellow_vip_level", "level", "is_yellow_year_vip")
ENDPOINT_FAULTS = {"token": frozenset(), "me": {"other_client"}, "user_info": {"ret"}}

ERRORS = {
    100000: "response_type is wrong or lost",
    100001: "client_id is lost",
    100002: "client_secret is lost",
    100004: "grant_type is wrong or lost",
    100005: "code is lost",
    100008: "client id is illegal",
    100009: "client secret is illegal",
    100010: "redirect uri is illegal",
    100014: "access token expired",
    100016: "access token check failed",
    100019: "code to access token error",
    100020: "code is reused error",
    100067: "code is expired",
}


@dataclass(frozen=True, slots=True)
class TestUser:
    """A QQ account offered on the consent page; ``key`` is its id in forms and HTML ids."""

    __test__ = False  # not a pytest test class, despite the name

    key: str
    nickname: str
    gender: str = "男"


DEFAULT_USERS: tuple[TestUser, ...] = (
    TestUser("xiaoming", "小明🐧"),
    TestUser("alice", "Alice", "女"),
    TestUser("nasty", '<b>"O\'Neil" & co</b>'),
)


def numbered_users(count: int) -> tuple[TestUser, ...]:
    """Extra test users ``user001``... for load tests, each with a Chinese+emoji nickname."""
    return tuple(TestUser(f"user{i:03d}", f"测试用户{i:03d}🐧") for i in range(1, count + 1))


def openid_for(app_id: str, user_key: str) -> str:
    """QQ's openid is per app: the same user gets a different one in every app."""
    return hashlib.sha256(f"openid\0{app_id}\0{user_key}".encode()).hexdigest()[:32].upper()


def unionid_for(user_key: str) -> str:
    """The unionid is per developer account, so it does not depend on the app."""
    return "UID_" + hashlib.sha256(f"unionid\0{user_key}".encode()).hexdigest()[:28].upper()


@dataclass(slots=True)
class _Grant:
    app_id: str
    user_key: str
    expires: float
    redirect_uri: str = ""
    used: bool = False


def _validate_fault(endpoint: str, fault: str) -> None:
    """Raise ValueError unless ``fault`` is one the API endpoint ``endpoint`` knows."""
    if endpoint not in ENDPOINT_FAULTS:
        raise ValueError(f"unknown endpoint {endpoint!r}; use one of {sorted(ENDPOINT_FAULTS)}")
    if fault in COMMON_FAULTS or fault in ENDPOINT_FAULTS[endpoint]:
        return
    if re.fullmatch(r"error:-?\d{1,9}", fault):
        return
    raise ValueError(f"unknown fault {fault!r} for {endpoint!r}")


class FakeQQ:
    """WSGI app imitating graph.qq.com for the apps ``{app_id: app_key}``."""

    hang_seconds = 30.0  # cap on the "hang" fault, so a forgotten release cannot pin a thread

    def __init__(
        self,
        apps: Mapping[str, str],
        users: Sequence[TestUser] = DEFAULT_USERS,
        *,
        clock: Callable[[], float] = time.time,
        latency: tuple[float, float] = (0.0, 0.0),
        faults: Mapping[str, str] | None = None,
    ) -> None:
        if not apps:
            raise ValueError("FakeQQ needs at least one app")
        if not 0 <= latency[0] <= latency[1]:
            raise ValueError(f"latency must be (min, max) with 0 <= min <= max, not {latency}")
        self.apps = dict(apps)
        self.users = {user.key: user for user in users}
        self.clock = clock
        self.latency = latency
        self.calls: collections.Counter[str] = collections.Counter()
        self._faults: dict[str, str] = {}
        self._lock = threading.Lock()
        self._release = threading.Event()
        self._codes: collections.OrderedDict[str, _Grant] = collections.OrderedDict()
        self._tokens: collections.OrderedDict[str, _Grant] = collections.OrderedDict()
        for endpoint, fault in (faults or {}).items():
            self.set_fault(endpoint, fault)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        req = Request(environ)
        try:
            resp = self._route(req)
        except UnicodeDecodeError:
            resp = _text(400, "Bad Request: parameters must be UTF-8")
        return resp(environ, start_response)

    # -- fault switch -------------------------------------------------------------------------

    def set_fault(self, endpoint: str, fault: str | None) -> None:
        """Make ``endpoint`` ("token", "me" or "user_info") misbehave; ``None`` clears it."""
        if fault:
            _validate_fault(endpoint, fault)
        elif endpoint not in ENDPOINT_FAULTS:
            raise ValueError(f"unknown endpoint {endpoint!r}")
        with self._lock:
            if fault:
                self._faults[endpoint] = fault
            else:
                self._faults.pop(endpoint, None)

    @property
    def faults(self) -> dict[str, str]:
        with self._lock:
            return dict(self._faults)

    def release(self) -> None:
        """End every request currently held by the "hang" fault."""
        with self._lock:
            # Swap in a fresh event so hangs that start after this call still hang.
            event, self._release = self._release, threading.Event()
        event.set()

    def reset(self) -> None:
        """Clear faults and call counters and release hung requests (codes/tokens stay)."""
        with self._lock:
            self._faults.clear()
            self.calls.clear()
        self.release()

    # -- routing ------------------------------------------------------------------------------

    def _route(self, req: Request) -> Response:
        path = req.path_info
        if path == "/oauth2.0/authorize":
            self._count("authorize")
            if req.method == "POST":
                return self._authorize_post(req)
            return self._authorize_page(req)
        if path in API_PATHS:
            return self._api(API_PATHS[path], req)
        if path.startswith("/avatar/"):
            return _avatar(path)
        if path.startswith("/_fake/"):
            return self._control(path, req)
        return _text(404, "Not Found")

    def _count(self, endpoint: str) -> None:
        with self._lock:
            self.calls[endpoint] += 1

    def _api(self, endpoint: str, req: Request) -> Response:
        self._count(endpoint)
        low, high = self.latency
        if high > 0:
            time.sleep(random.uniform(low, high))  # noqa: S311 - jitter, not cryptography
        fault = self.faults.get(endpoint)
        if fault == "hang":
            with self._lock:
                event = self._release
            event.wait(self.hang_seconds)  # wakes at once on release(), no polling needed
        elif fault and fault != "other_client":
            return _fault_response(endpoint, fault, req)
        handler = {"token": self._token, "me": self._me, "user_info": self._user_info}[endpoint]
        return handler(req)

    def _control(self, path: str, req: Request) -> Response:
        if path not in ("/_fake/calls", "/_fake/faults", "/_fake/reset"):
            return _text(404, "Not Found")
        if req.method == "GET" and path != "/_fake/reset":
            with self._lock:
                data = dict(self.calls) if path == "/_fake/calls" else dict(self._faults)
            return _json_response(data, "application/json")
        if req.method != "POST" or path == "/_fake/calls":
            return _text(405, "Method Not Allowed")
        if path == "/_fake/reset":
            self.reset()
            return _text(200, "reset")
        try:
            self.set_fault(req.POST.get("endpoint", ""), req.POST.get("fault") or None)
        except ValueError as exc:
            return _text(400, str(exc))
        return _text(200, "ok")

    # -- authorize ----------------------------------------------------------------------------

    def _authorize_error(self, params: Mapping[str, str]) -> int | None:
        client_id = params.get("client_id", "")
        if not client_id:
            return 100001
        if client_id not in self.apps:
            return 100008
        redirect = urlsplit(params.get("redirect_uri", ""))
        if redirect.scheme not in ("http", "https") or not redirect.netloc:
            return 100010
        return None

    def _authorize_page(self, req: Request) -> Response:
        params = req.GET
        error = self._authorize_error(params)
        if error is None and params.get("response_type") != "code":
            error = 100000
        if error is not None:
            return _html(_error_body(error), "QQ登录 - 错误 / Error")
        return _html(_consent_body(params, self.users.values()), "QQ登录 (development provider)")

    def _authorize_post(self, req: Request) -> Response:
        form = req.POST
        error = self._authorize_error(form)
        if error is not None:
            return _html(_error_body(error), "QQ登录 - 错误 / Error")
        redirect_uri, state = form["redirect_uri"], form.get("state", "")
        if "cancel" in form:
            return HTTPFound(location=_add_query(redirect_uri, usercancel="1", state=state))
        user_key = form.get("user", "")
        if user_key not in self.users:
            return _text(400, f"Unknown test user {user_key!r}")
        code = secrets.token_hex(16).upper()
        grant = _Grant(form["client_id"], user_key, self.clock() + CODE_LIFETIME, redirect_uri)
        with self._lock:
            _remember(self._codes, code, grant)
        return HTTPFound(location=_add_query(redirect_uri, code=code, state=state))

    # -- API endpoints ------------------------------------------------------------------------

    def _token(self, req: Request) -> Response:
        params = req.params
        result = self._client_error(params)
        if result is None:
            result = self._redeem(params)
        if isinstance(result, int):
            return _qq_error(req, result)
        answer = {"access_token": result, "expires_in": str(TOKEN_LIFETIME)}
        answer["refresh_token"] = secrets.token_hex(16).upper()
        if params.get("fmt") == "json":
            return _json_response({**answer, "expires_in": TOKEN_LIFETIME})
        return _body_response(urlencode(answer))

    def _client_error(self, params: Mapping[str, str]) -> int | None:
        if params.get("grant_type") != "authorization_code":
            return 100004
        for field, error in (("client_id", 100001), ("client_secret", 100002), ("code", 100005)):
            if not params.get(field):
                return error
        app_key = self.apps.get(params["client_id"])
        if app_key is None:
            return 100008
        if not hmac.compare_digest(app_key.encode(), params["client_secret"].encode()):
            return 100009
        return None

    def _redeem(self, params: Mapping[str, str]) -> str | int:
        """Trade a code for a new access token, or return QQ's error code."""
        with self._lock:
            grant = self._codes.get(params["code"])
            if grant is None or grant.app_id != params["client_id"]:
                return 100019
            if grant.used:
                return 100020
            if self.clock() >= grant.expires:
                return 100067
            if params.get("redirect_uri") != grant.redirect_uri:
                return 100010
            grant.used = True  # kept, not deleted, so a second use says 100020 and not 100019
            token = secrets.token_hex(16).upper()
            expires = self.clock() + TOKEN_LIFETIME
            _remember(self._tokens, token, _Grant(grant.app_id, grant.user_key, expires))
        return token

    def _lookup_token(self, token: str) -> _Grant | int:
        with self._lock:
            grant = self._tokens.get(token)
        if grant is None:
            return 100016
        if self.clock() >= grant.expires:
            return 100014
        return grant

    def _me(self, req: Request) -> Response:
        grant = self._lookup_token(req.params.get("access_token", ""))
        if isinstance(grant, int):
            return _qq_error(req, grant)
        app_id = OTHER_CLIENT_ID if self.faults.get("me") == "other_client" else grant.app_id
        answer = {"client_id": app_id, "openid": openid_for(app_id, grant.user_key)}
        if req.params.get("unionid") == "1":
            answer["unionid"] = unionid_for(grant.user_key)
        return _qq_answer(req, answer)

    def _user_info(self, req: Request) -> Response:
        params = req.params
        grant = self._lookup_token(params.get("access_token", ""))
        if isinstance(grant, int):
            return _json_response({"ret": 1002, "msg": "请先登录"})
        openid = openid_for(grant.app_id, grant.user_key)
        if params.get("oauth_consumer_key") != grant.app_id or params.get("openid") != openid:
            return _json_response({"ret": -1, "msg": "client request's app is not existed"})
        return _json_response(_profile(self.users[grant.user_key], openid, req.host_url))


def _remember(store: collections.OrderedDict[str, _Grant], key: str, grant: _Grant) -> None:
    store[key] = grant
    while len(store) > MAX_ENTRIES:
        store.popitem(last=False)


def _add_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query, fragment=""))


def _profile(user: TestUser, openid: str, host_url: str) -> dict[str, Any]:
    # Field set and string-typed numbers as get_user_info really sends them.
    profile: dict[str, Any] = {"ret": 0, "msg": "", "is_lost": 0, "nickname": user.nickname}
    profile |= {"gender": user.gender, "gender_type": 2 if user.gender == "女" else 1}
    profile |= {"province": "", "city": "", "year": "0", "constellation": ""}
    profile |= {name: f"{host_url}/avatar/{openid}/{size}" for name, size in AVATAR_SIZES}
    profile["figureurl_type"] = "1"
    profile |= dict.fromkeys(VIP_FIELDS, "0")
    return profile


# -- responses --------------------------------------------------------------------------------


def _body_response(body: str, status: int = 200, content_type: str = "text/html") -> Response:
    # QQ labels its API answers text/html whatever they contain; clients must read the body.
    return Response(body=body.encode(), status=status, content_type=content_type, charset="utf-8")


def _text(status: int, message: str) -> Response:
    return _body_response(message + "\n", status, "text/plain")


def _json_response(data: Mapping[str, Any], content_type: str = "text/html") -> Response:
    return _body_response(json.dumps(data, ensure_ascii=False), content_type=content_type)


def _qq_answer(req: Request, data: Mapping[str, Any]) -> Response:
    """JSON with ``fmt=json``, otherwise QQ's JSONP wrapping with its odd spacing."""
    body = json.dumps(data, ensure_ascii=False)
    return _body_response(body if req.params.get("fmt") == "json" else f"callback( {body} );\n")


def _qq_error(req: Request, code: int) -> Response:
    return _qq_answer(req, {"error": code, "error_description": ERRORS.get(code, "fault injected")})


def _fault_response(endpoint: str, fault: str, req: Request) -> Response:
    if fault == "http500":
        return _html(_error_body(None, "500 Internal Server Error"), "500", status=500)
    if fault == "html":
        return _html(_error_body(None, "系统繁忙，请稍后再试 / System busy"), "QQ互联")
    if fault == "empty":
        return _body_response("")
    if fault == "garbage":
        return _body_response("callback( {not json ); ")
    if fault == "ret":
        return _json_response({"ret": 1002, "msg": "请先登录"})
    code = int(fault.removeprefix("error:"))
    if endpoint == "user_info":
        return _json_response({"ret": code, "msg": "fault injected"})
    return _qq_error(req, code)


def _avatar(path: str) -> Response:
    match = re.fullmatch(r"/avatar/([0-9A-F]{6,64})/(\d{1,4})", path)
    if not match or not 1 <= int(match[2]) <= 1024:
        return _text(404, "Not Found")
    colour, size = match[1][:6], match[2]
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 10 10"><rect width="10" height="10" fill="#{colour}"/>'
        '<circle cx="5" cy="4" r="2" fill="#fff"/><path d="M1.5 10a3.5 3.5 0 0 1 7 0z" '
        'fill="#fff"/></svg>'
    )
    resp = _body_response(svg, content_type="image/svg+xml")
    resp.cache_control.max_age = 86400
    return resp


# -- HTML -------------------------------------------------------------------------------------

_e = html.escape  # quote=True by default: safe in text and in double-quoted attributes

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;"
    "color:#222}h1{font-size:1.3rem}form{margin:.5rem 0}button{width:100%;padding:.8rem;"
    "font-size:1rem;border-radius:.4rem;border:1px solid #12b7f5;background:#12b7f5;color:#fff}"
    "button#cancel{background:#fff;color:#555;border-color:#ccc}code{word-break:break-all}"
    ".note{color:#777;font-size:.85rem}"
)


def _html(body: str, title: str, status: int = 200) -> Response:
    page = (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
    resp = _body_response(page, status)
    resp.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    resp.headers["X-Frame-Options"] = "DENY"  # QQ's login page refuses to be framed too
    resp.cache_control.no_store = True
    return resp


def _error_body(code: int | None, message: str = "") -> str:
    if code is None:
        return f"<h1>{_e(message)}</h1>"
    return (
        "<h1>很抱歉，出现错误 / Sorry, something went wrong</h1>\n"
        f'<p>error: <code id="error-code">{code}</code></p>\n'
        f"<p>error_description: {_e(ERRORS[code])}({code})</p>"
    )


def _hidden_fields(params: Mapping[str, str]) -> str:
    names = ("client_id", "redirect_uri", "state", "scope")
    return "".join(
        f'<input type="hidden" name="{n}" value="{_e(params.get(n, ""))}">' for n in names
    )


def _consent_body(params: Mapping[str, str], users: Iterable[TestUser]) -> str:
    hidden = _hidden_fields(params)
    # The user travels only as the pressed button's name=value: approving takes a click.
    forms = [
        f'<form method="post" action="/oauth2.0/authorize" id="form-{_e(u.key)}">{hidden}'
        f'<button type="submit" name="user" value="{_e(u.key)}" id="approve-{_e(u.key)}">'
        f"以 {_e(u.nickname)} 授权登录 / Approve as {_e(u.nickname)}</button></form>"
        for u in users
    ]
    forms.append(
        f'<form method="post" action="/oauth2.0/authorize" id="form-cancel">{hidden}'
        '<button type="submit" name="cancel" value="1" id="cancel">取消 / Cancel</button></form>'
    )
    return (
        "<h1>QQ登录 (development provider)</h1>\n"
        f'<p>应用 <code id="app-id">{_e(params["client_id"])}</code> 请求使用你的 QQ 帐号登录'
        f" / This app asks to sign you in.</p>\n"
        f'<p class="note">回调 / redirect_uri: <code>{_e(params["redirect_uri"])}</code><br>'
        f"scope: <code>{_e(params.get('scope', ''))}</code></p>\n"
        "<p>选择一个测试帐号 / Choose a test user:</p>\n" + "\n".join(forms) + "\n"
        '<p class="note">This is qqgate.dev.fakeqq, a fake graph.qq.com for development.</p>'
    )


# -- gunicorn factory -------------------------------------------------------------------------


def _parse_latency(value: str) -> tuple[float, float]:
    """``"0-200"`` milliseconds -> ``(0.0, 0.2)`` seconds; ``"50"`` means exactly 50 ms."""
    low, _, high = value.strip().partition("-")
    try:
        bounds = (float(low or 0) / 1000, float(high or low or 0) / 1000)
    except ValueError:
        raise ValueError(f"FAKEQQ_LATENCY_MS must look like '0-200', not {value!r}") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise ValueError(f"FAKEQQ_LATENCY_MS must be 'min-max' with min <= max, not {value!r}")
    return bounds


def _parse_faults(value: str) -> dict[str, str]:
    """``"token=http500,me=other_client"`` -> ``{"token": "http500", "me": "other_client"}``."""
    faults = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        endpoint, sep, fault = item.partition("=")
        if not sep:
            raise ValueError(f"FAKEQQ_FAULTS items must be endpoint=fault, not {item!r}")
        faults[endpoint.strip()] = fault.strip()
    return faults


def create_app() -> FakeQQ:
    """Build a FakeQQ from FAKEQQ_* environment variables.

    For ``gunicorn 'qqgate.dev.fakeqq:create_app()'``: FAKEQQ_APP_ID, FAKEQQ_APP_KEY,
    FAKEQQ_LATENCY_MS (``"0-200"``), FAKEQQ_EXTRA_USERS (a count) and FAKEQQ_FAULTS
    (``"token=http500,me=other_client"``).
    """
    env = os.environ
    app_id = env.get("FAKEQQ_APP_ID", "101000001")
    app_key = env.get("FAKEQQ_APP_KEY", "fake-app-key-0123456789abcdef")
    extra_users = numbered_users(int(env.get("FAKEQQ_EXTRA_USERS", "0")))
    return FakeQQ(
        {app_id: app_key},
        users=DEFAULT_USERS + extra_users,
        latency=_parse_latency(env.get("FAKEQQ_LATENCY_MS", "0")),
        faults=_parse_faults(env.get("FAKEQQ_FAULTS", "")),
    )
