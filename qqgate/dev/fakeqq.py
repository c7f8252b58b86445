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
``error:NNNNNN``, ``hang``, ``drip`` (the right answer, a byte every ``drip_seconds``), plus
``other_client`` (me) and ``ret`` (user_info). ``GET /_fake/calls``
and ``POST /_fake/reset`` let tests drive a provider running in another process.

Codes and tokens live in memory: run it as one process, ``qqgate provider``
(``qqgate.dev.provider``) or
``gunicorn -k gthread --threads 8 --no-control-socket 'qqgate.dev.fakeqq:create_app()'``.
The ``/_fake`` control paths have no authentication: this is a development tool, never expose it
to the internet.
"""

from __future__ import annotations

import collections
import hmac
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

from .fakeqq_env import options_from_env
from .fakeqq_pages import (
    _avatar,
    _body_response,
    _consent_body,
    _error_body,
    _fault_response,
    _html,
    _json_response,
    _qq_answer,
    _qq_error,
    _text,
    drip,
)
from .fakeqq_users import DEFAULT_USERS, TestUser, openid_for, profile_of, unionid_for

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["DEFAULT_USERS", "FakeQQ", "TestUser", "create_app", "openid_for", "unionid_for"]

CODE_LIFETIME = 600.0  # QQ: "the code lives 10 minutes"
TOKEN_LIFETIME = 5_184_000  # 60 days, what QQ's current docs say (sent as a string)
MAX_ENTRIES = 100_000  # per store; a load test must not grow memory without bound
OTHER_CLIENT_ID = "100000999"  # the app a token "belongs to" under the other_client fault
API_PATHS = {"/oauth2.0/token": "token", "/oauth2.0/me": "me", "/user/get_user_info": "user_info"}
COMMON_FAULTS = frozenset({"http500", "html", "empty", "garbage", "hang", "drip"})
ENDPOINT_FAULTS = {"token": frozenset(), "me": {"other_client"}, "user_info": {"ret"}}


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
    drip_seconds = 0.05  # between two bytes of a "drip" answer (release() sends the rest)

    def __init__(
        self,
        apps: Mapping[str, str],
        users: Sequence[TestUser] = DEFAULT_USERS,
        *,
        clock: Callable[[], float] = time.time,
        latency: tuple[float, float] = (0.0, 0.0),
        faults: Mapping[str, str] | None = None,
        callbacks: Mapping[str, Iterable[str]] | None = None,
        unionid_apps: Iterable[str] = (),
    ) -> None:
        if not apps:
            raise ValueError("FakeQQ needs at least one app")
        if not 0 <= latency[0] <= latency[1]:
            raise ValueError(f"latency must be (min, max) with 0 <= min <= max, not {latency}")
        self.apps = dict(apps)
        # As at QQ Connect: each app's registered callbacks (matched exactly), and which apps were
        # granted unionid.
        self.callbacks = {app: set((callbacks or {}).get(app, ())) for app in self.apps}
        self.unionid_apps = set(unionid_apps)
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

    def register(self, app_id: str, redirect_uri: str) -> None:
        """Register one more callback for ``app_id``, as in QQ Connect's app settings."""
        with self._lock:
            self.callbacks.setdefault(app_id, set()).add(redirect_uri)

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
        elif fault and fault not in ("other_client", "drip"):
            return _fault_response(endpoint, fault, req)
        handler = {"token": self._token, "me": self._me, "user_info": self._user_info}[endpoint]
        if fault == "drip":
            with self._lock:
                event = self._release
            return drip(handler(req), self.drip_seconds, event)
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
            form = _fields(req.POST)
            self.set_fault(form.get("endpoint", ""), form.get("fault") or None)
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
        with self._lock:
            if params.get("redirect_uri") not in self.callbacks.get(client_id, ()):
                return 100010
        return None

    def _error_page(self, error: int, params: Mapping[str, str]) -> Response:
        """QQ's error page; for a callback mismatch, also what is registered (QQ does not say)."""
        hint = ""
        if error == 100010:
            with self._lock:
                registered = sorted(self.callbacks.get(params.get("client_id", ""), ()))
            hint = f"registered: {', '.join(registered) or 'none'}"
        return _html(_error_body(error, hint=hint), "QQ登录 - 错误 / Error")

    def _authorize_page(self, req: Request) -> Response:
        params = _fields(req.GET)
        error = self._authorize_error(params)
        if error is None and params.get("response_type") != "code":
            error = 100000
        if error is not None:
            return self._error_page(error, params)
        return _html(_consent_body(params, self.users.values()), "QQ登录 (development provider)")

    def _authorize_post(self, req: Request) -> Response:
        form = _fields(req.POST)
        error = self._authorize_error(form)
        if error is not None:
            return self._error_page(error, form)
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
        params = _fields(req.params)
        result: str | int | None = self._client_error(params)
        if result is None:
            result = self._redeem(params)
        if isinstance(result, int):
            return _qq_error(req, result)
        answer = {"access_token": result, "expires_in": str(TOKEN_LIFETIME)}
        answer["refresh_token"] = secrets.token_hex(16).upper()
        if params.get("fmt") == "json":
            return _json_response(answer)
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
        grant = self._lookup_token(_fields(req.params).get("access_token", ""))
        if isinstance(grant, int):
            return _qq_error(req, grant)
        app_id = OTHER_CLIENT_ID if self.faults.get("me") == "other_client" else grant.app_id
        answer = {"client_id": app_id, "openid": openid_for(app_id, grant.user_key)}
        if req.params.get("unionid") == "1":
            if grant.app_id not in self.unionid_apps:
                return _qq_error(req, 100048)  # QQ: "companyid not set"
            answer["unionid"] = unionid_for(grant.user_key)
        return _qq_answer(req, answer)

    def _user_info(self, req: Request) -> Response:
        params = _fields(req.params)
        grant = self._lookup_token(params.get("access_token", ""))
        if isinstance(grant, int):
            return _json_response({"ret": 1002, "msg": "请先登录"})
        openid = openid_for(grant.app_id, grant.user_key)
        if params.get("oauth_consumer_key") != grant.app_id or params.get("openid") != openid:
            return _json_response({"ret": -1, "msg": "client request's app is not existed"})
        return _json_response(profile_of(self.users[grant.user_key], openid, req.host_url))


def _fields(values: Any) -> dict[str, str]:  # WebOb's MultiDict, NestedMultiDict or NoVars
    """Query or form fields as text (a file upload is no field of QQ's)."""
    return {name: value for name, value in values.items() if isinstance(value, str)}


def _remember(store: collections.OrderedDict[str, _Grant], key: str, grant: _Grant) -> None:
    store[key] = grant
    while len(store) > MAX_ENTRIES:
        store.popitem(last=False)


def _add_query(url: str, **params: str) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit(parts._replace(query=query, fragment=""))


# -- gunicorn factory -------------------------------------------------------------------------


def create_app() -> FakeQQ:
    """Build a FakeQQ from FAKEQQ_* environment variables (``qqgate.dev.fakeqq_env`` lists them),
    for ``gunicorn 'qqgate.dev.fakeqq:create_app()'``."""
    return FakeQQ(**options_from_env(os.environ))
