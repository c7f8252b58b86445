"""The test harness, in-process half: a stub of QQ (``StubQQ``) and a gate around a recording app
(``Rig``, with the stub or with the development provider of ``tests.live``). Requests are built
the way a server builds them (``blank``). The network half is ``tests.live``.

Nothing here decides what is safe: each test states that. These helpers make requests easy to
write down the way a server builds them and outcomes easy to read.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from webob import Request, Response
from webtest import TestApp

from qqgate import QQGate
from qqgate.qq import QQError, QQProfile
from qqgate.session import Identity

from .conftest import APP_ID, FakeClock, make_settings

if TYPE_CHECKING:
    from .live import Provider

SITE = "https://app.example.com"
HOST = "app.example.com"
OPENID = "0123456789ABCDEF0123456789ABCDEF"
NICKNAME = "小明🐧"
AVATAR = "https://q.qlogo.cn/qqapp/101000001/0123/100"
DOWNSTREAM_MARKER = "DOWNSTREAM-APP-WAS-CALLED"
HTML_ACCEPT = "text/html,application/xhtml+xml"


# --- QQ, stubbed --------------------------------------------------------------------------------


class StubQQ:
    """Stands in for ``QQClient`` and behaves like QQ about codes: it redeems only codes it issued,
    each once. Every code the gate sends is recorded in ``redeemed``, accepted or not. Set
    ``result`` to a ``QQError`` to make the next redemptions fail that way."""

    def __init__(self, profile: QQProfile | None = None) -> None:
        self.result: QQProfile | QQError = profile or QQProfile(
            OPENID, NICKNAME, AVATAR, "UID_STUB"
        )
        self.issued: set[str] = set()
        self.redeemed: list[str] = []

    def authorize_url(
        self, state: str, *, scope: str = "get_user_info", mobile: bool = False
    ) -> str:
        query = {"client_id": APP_ID, "state": state, "scope": scope}
        if mobile:
            query["display"] = "mobile"
        return f"https://graph.qq.com/oauth2.0/authorize?{urlencode(query)}"

    def issue_code(self, code: str | None = None) -> str:
        """A code QQ would send the browser back with (``code`` if given, else a random one)."""
        code = code or secrets.token_hex(16).upper()
        self.issued.add(code)
        return code

    def sign_in(self, code: str) -> QQProfile:
        self.redeemed.append(code)
        if isinstance(self.result, QQError):
            raise self.result
        if code not in self.issued:
            raise QQError("code rejected", endpoint="token", code=100019)
        self.issued.discard(code)
        return self.result


# --- the wrapped app ----------------------------------------------------------------------------


class Downstream:
    """The wrapped app: records what it was called with and echoes it as JSON (the marker in
    the body shows that the app, not the gate, answered)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        identity = environ.get("qqgate.identity")
        seen: dict[str, Any] = {
            k: v for k, v in environ.items() if k.startswith("HTTP_") or k == "REMOTE_USER"
        }
        seen["PATH_INFO"] = environ.get("PATH_INFO")
        seen["qqgate.identity"] = identity.as_json() if identity else None
        self.calls.append(seen)
        body = json.dumps({"marker": DOWNSTREAM_MARKER, **seen}, ensure_ascii=True).encode()
        start_response(
            "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
        )
        return [body]


# --- requests as a server builds them -------------------------------------------------------------


def blank(
    path: str = "/",
    query: str = "",
    *,
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
    environ: dict[str, object] | None = None,
    method: str = "GET",
) -> Request:
    """A request as a server hands it to WSGI: ``path`` is PATH_INFO exactly as given (already
    percent-decoded once, latin-1), ``query`` is QUERY_STRING exactly as given. Built by hand
    because test clients fold a path starting with ``//`` into a host name."""
    request = Request.blank("/", base_url=SITE)
    env = request.environ
    env.update(
        REQUEST_METHOD=method,
        PATH_INFO=path,
        QUERY_STRING=query,
        HTTP_HOST=HOST,
        HTTP_ACCEPT=HTML_ACCEPT,
        REMOTE_ADDR="192.0.2.7",
    )
    if cookie is not None:
        env["HTTP_COOKIE"] = cookie
    for name, value in (headers or {}).items():
        env[environ_key(name)] = value
    env.update(environ or {})
    return request


def environ_key(header: str) -> str:
    """The environ key a server makes of a header name (wsgiref, and gunicorn's "dangerous" map)."""
    return "HTTP_" + header.upper().replace("-", "_")


def call(app: Any, request: Request) -> Response:
    """The app's response; an exception escaping the app counts as the 500 a server would send."""
    try:
        return request.get_response(app)
    except Exception as exc:  # the point: record it as a 5xx, with the reason, and go on
        return Response(f"{type(exc).__name__}: {exc}", status=500, content_type="text/plain")


def set_cookies(response: Any) -> dict[str, str]:
    """Set-Cookie headers by cookie name (a WebOb or WebTest response)."""
    return {h.split("=", 1)[0]: h for h in response.headers.getall("Set-Cookie")}


def set_cookie_value(response: Any, name: str) -> str:
    return set_cookies(response)[name].split(";", 1)[0].split("=", 1)[1]


def sets_session(response: Any) -> bool:
    """Whether the response sets a non-empty session cookie."""
    header = set_cookies(response).get("qqgate", "")
    return bool(header) and not header.startswith("qqgate=;")


# --- the gate in-process --------------------------------------------------------------------------


class Login(NamedTuple):
    """A started sign-in: where the gate sent the browser, the state, the pending-login cookie."""

    url: str
    state: str
    cookie: str


@dataclass
class Rig:
    """One gate in-process around a ``Downstream``, with its clock, and either a ``StubQQ``
    (``qq``) or the development provider on loopback (``provider``, through the real client)."""

    gate: QQGate
    app: Downstream
    clock: FakeClock
    qq: StubQQ = field(default_factory=StubQQ)
    provider: Provider | None = None

    @cached_property
    def browser(self) -> TestApp:
        """WebTest around the gate, for requests a test client can express."""
        return TestApp(self.gate, extra_environ={"REMOTE_ADDR": "192.0.2.7"})

    @property
    def paths(self) -> list[str]:
        """PATH_INFO of each call that reached the app."""
        return [seen["PATH_INFO"] for seen in self.app.calls]

    def call(self, request: Request) -> Response:
        return call(self.gate, request)

    def get(self, path: str, cookie: str | None = None, **kw: Any) -> Any:
        """GET through WebTest; any status is returned, not raised."""
        headers = kw.pop("headers", {})
        if cookie is not None:
            headers["Cookie"] = cookie
        return self.browser.get(path, headers=headers, expect_errors=True, **kw)

    def start_login(
        self, next_url: str = "/after", cookie: str | None = None, *, query: str | None = None
    ) -> Login:
        """Start a sign-in for ``next_url`` (or with the raw ``query``)."""
        query = f"next={quote(next_url, safe='')}" if query is None else query
        response = self.call(blank("/_qqgate/login", query, cookie=cookie))
        assert response.status_int == 302, response.status
        state = parse_qs(urlsplit(response.location).query)["state"][0]
        return Login(response.location, state, set_cookie_value(response, "qqgate_state"))

    def login(
        self, next_url: str = "/after", cookie: str | None = None, *, query: str | None = None
    ) -> tuple[str, str]:
        """Start a sign-in; return (state, pending-login cookie value)."""
        started = self.start_login(next_url, cookie, query=query)
        return started.state, started.cookie

    def callback(self, query: str, state_cookie: str | None) -> Any:
        cookie = f"qqgate_state={state_cookie}" if state_cookie else None
        return self.get(f"/_qqgate/callback?{query}", cookie=cookie)

    def code_for(self, authorize_url: str, user: str = "xiaoming") -> str:
        """A code for this sign-in: from the provider when there is one, else from the stub."""
        if self.provider is None:
            return self.qq.issue_code()
        return self.provider.code_for(authorize_url, user)

    def session_for(self, **fields: object) -> str:
        """A session cookie value for the stub's user (``fields`` override), signed now."""
        profile = self.qq.result if isinstance(self.qq.result, QQProfile) else StubQQ().result
        assert isinstance(profile, QQProfile)
        values: dict[str, Any] = {
            "openid": profile.openid,
            "nickname": profile.nickname,
            "avatar_url": profile.avatar_url,
            "unionid": profile.unionid,
            "signed_in_at": int(self.clock()),
            **fields,
        }
        return self.gate.sessions.codec.dumps(Identity(**values))


def make_rig(
    *,
    qq: StubQQ | None = None,
    profile: QQProfile | None = None,
    provider: Provider | None = None,
    clock: FakeClock | None = None,
    **overrides: str,
) -> Rig:
    """A rig around a fresh ``Downstream``. With ``provider``, the gate's real ``QQClient`` talks
    to it (timeout 1 s); otherwise a ``StubQQ`` answers."""
    clock = clock or FakeClock()
    app = Downstream()
    if provider is not None:
        provider.fake.register(APP_ID, f"{SITE}/_qqgate/callback")
        settings = make_settings(
            qq_base_url=provider.url,
            timeout="1",
            redirect_uri=f"{SITE}/_qqgate/callback",
            **overrides,
        )
        return Rig(QQGate(app, settings, clock=clock), app, clock, provider=provider)
    qq = qq or StubQQ(profile)
    gate = QQGate(app, make_settings(**overrides), qq_client=qq, clock=clock)
    return Rig(gate, app, clock, qq)
