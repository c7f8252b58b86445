"""The gate's own routes under ``{prefix}`` (login, callback, logout, userinfo, ping) and the
challenge of a visitor who is not signed in.

The callback is where a login gate is won or lost, so its order is fixed: read the parameters, check
the state against this browser's pending-login cookie (constant time, single use), and only then
send the code to QQ. A stolen or replayed code without the matching cookie never reaches QQ.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable
from urllib.parse import quote

from webob import Response
from webob.exc import HTTPFound

from . import wsgiutil
from .config import Settings
from .cookies import cookie_values, set_cookie
from .headers import IdentityHeaders
from .pages import html_page, json_response
from .qq import QQClient, QQError, QQUnavailable
from .redirects import request_target, safe_next
from .session import Identity, PendingLogin, SessionCodec, StateCodec, take_pending

log = logging.getLogger("qqgate")

MAX_CODE_LENGTH = 512
MAX_STATE_LENGTH = 128
# QQ errors that mean the app itself is not (yet) allowed to sign this user in.
_APP_NOT_APPROVED = {100008, 100010, 100030, 100031}

Identify = Callable[[dict], Identity | None]


class SignInRoutes:
    """WSGI app for everything under ``settings.prefix``."""

    def __init__(
        self,
        settings: Settings,
        sessions: SessionCodec,
        identify: Identify,
        identity_headers: IdentityHeaders,
        qq: QQClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.identify = identify
        self.identity_headers = identity_headers
        self.qq = qq
        self.states = StateCodec(settings.secret_keys, clock)
        self.clock = clock
        self._routes = {
            "/login": self.login,
            "/callback": self.callback,
            "/logout": self.logout,
            "/userinfo": self.userinfo,
            "/auth": self.auth,
            "/ping": self.ping,
        }

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        route = environ.get("PATH_INFO", "")[len(self.settings.prefix) :]
        handler = self._routes.get(route)
        response = handler(environ) if handler else self._not_found()
        return response(environ, start_response)

    # --- URLs -------------------------------------------------------------------------------

    def url(self, environ: dict, route: str, next_url: str | None = None) -> str:
        base = environ.get("SCRIPT_NAME", "") + self.settings.prefix + route
        return f"{base}?next={quote(next_url, safe='')}" if next_url else base

    # --- not signed in ------------------------------------------------------------------------

    def challenge(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        """Send a browser to the login; tell an API client with a 401, never a login page."""
        login_url = self.url(environ, "/login", safe_next(request_target(environ)))
        if wsgiutil.wants_html(environ):
            response: Response = HTTPFound(location=login_url)
            response.headerlist.append(("Cache-Control", "no-store"))
        else:
            response = json_response(401, {"error": "login_required", "login_url": login_url})
        return response(environ, start_response)

    def allowed(self, identity: Identity) -> bool:
        allowed = self.settings.allowed_openids
        return not allowed or identity.openid in allowed

    def forbidden(self, environ: dict, identity: Identity) -> Response:
        log.warning(
            "access denied openid=%s client=%s reason=not_in_allowed_openids",
            identity.openid,
            wsgiutil.client_address(environ),
        )
        return html_page(
            403,
            "无权访问 / Access denied",
            "您的QQ账号不在本站的允许名单中。请把下面的 OpenID 发给管理员以申请访问。\n"
            "Your QQ account is not on this site's list of allowed users. "
            "Send the OpenID below to the site's operator to ask for access.",
            details=[("OpenID", identity.openid), ("昵称 / Nickname", identity.nickname)],
            links=[(self.url(environ, "/logout"), "退出登录 / Sign out")],
        )

    # --- routes -------------------------------------------------------------------------------

    def login(self, environ: dict) -> Response:
        params = wsgiutil.query_params(environ) or {}
        next_url = safe_next((params.get("next") or [None])[0])
        state = secrets.token_urlsafe(32)
        pending = [*self._pending(environ), self.states.new(state, next_url)]
        authorize = self.qq.authorize_url(
            state, scope=self.settings.scope, mobile=wsgiutil.is_mobile(environ)
        )
        response = HTTPFound(location=authorize)
        response.headerlist += [self._state_cookie(pending), ("Cache-Control", "no-store")]
        return response

    def callback(self, environ: dict) -> Response:
        response = self._callback(environ)
        response.headers["Referrer-Policy"] = "no-referrer"  # the URL carries the code
        response.headers["Cache-Control"] = "no-store"
        return response

    def logout(self, environ: dict) -> Response:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD", "POST"):
            return self._error(
                environ, 405, "method_not_allowed", "只支持 GET 或 POST。\nUse GET or POST."
            )
        identity = self.identify(environ)
        params = wsgiutil.query_params(environ) or {}
        requested = (params.get("next") or [None])[0]
        if requested:
            response: Response = HTTPFound(location=safe_next(requested))
        else:
            response = html_page(
                200,
                "已退出登录 / Signed out",
                "您已退出登录。\nYou have signed out.",
                links=[(self.url(environ, "/login"), "重新登录 / Sign in again")],
            )
        response.headerlist += [self._session_cookie("", max_age=0), ("Cache-Control", "no-store")]
        if identity:
            log.info(
                "sign-out openid=%s client=%s", identity.openid, wsgiutil.client_address(environ)
            )
        return response

    def userinfo(self, environ: dict) -> Response:
        identity = self.identify(environ)
        if identity is None:
            login_url = self.url(environ, "/login")
            return json_response(401, {"error": "login_required", "login_url": login_url})
        return json_response(200, identity.as_json())

    def auth(self, environ: dict) -> Response:
        """For nginx auth_request: 202 with the identity headers, else 401 or 403; no redirect."""
        identity = self.identify(environ)
        if identity is None:
            response = Response(status=401)
            if wsgiutil.wants_html(environ):
                # Where nginx should send a browser. X-Original-URI only picks the return path,
                # which safe_next() confines to this site: it decides nothing about access.
                target = safe_next(environ.get("HTTP_X_ORIGINAL_URI"))
                response.headers["X-QQGate-Login"] = self.url(environ, "/login", target)
        elif not self.allowed(identity):
            response = Response(status=403)
        else:
            response = Response(status=202)
            response.headerlist.extend(self.identity_headers.headers(identity))
            environ["REMOTE_USER"] = identity.openid  # for the access log
        response.headerlist.append(("Cache-Control", "no-store"))
        return response

    def ping(self, environ: dict) -> Response:
        response = Response("ok\n", content_type="text/plain", charset="utf-8")
        response.headerlist.append(("Cache-Control", "no-store"))
        return response

    # --- the callback, step by step ----------------------------------------------------------

    def _callback(self, environ: dict) -> Response:
        params = wsgiutil.query_params(environ)
        if params is None:
            return self._bad_callback(
                environ, "bad_query", "回调参数无效。\nThe callback URL is malformed."
            )
        try:
            code = wsgiutil.single(params, "code")
            state = wsgiutil.single(params, "state")
        except ValueError:
            return self._bad_callback(
                environ, "duplicate_parameter", "回调参数重复。\nThe callback URL is malformed."
            )
        if not code:
            return self._no_code(environ, params)
        if len(code) > MAX_CODE_LENGTH or not code.isascii() or not code.isprintable():
            return self._bad_callback(
                environ, "bad_code", "授权码无效。\nThe authorization code is invalid."
            )
        pending = self._pending(environ)
        entry = take_pending(pending, state) if state and len(state) <= MAX_STATE_LENGTH else None
        if entry is None:
            return self._bad_callback(
                environ,
                "state_mismatch",
                "登录已过期，或不是从这个浏览器发起的。请重新登录。\n"
                "This sign-in has expired or was not started in this browser. Please start again.",
            )
        remaining = [p for p in pending if p is not entry]
        response = self._finish(environ, code, entry)
        response.headerlist.append(self._state_cookie(remaining))
        return response

    def _finish(self, environ: dict, code: str, entry: PendingLogin) -> Response:
        try:
            profile = self.qq.sign_in(code)
        except QQError as exc:
            return self._qq_failed(environ, exc, entry.next_url)
        identity = Identity(
            profile.openid,
            profile.nickname,
            profile.avatar_url,
            profile.unionid if self.settings.unionid else None,
            int(self.clock()),
        )
        if not self.allowed(identity):
            return self.forbidden(environ, identity)
        log.info("sign-in ok openid=%s client=%s", profile.openid, wsgiutil.client_address(environ))
        response = HTTPFound(location=entry.next_url)
        # Always a fresh session: whatever cookie the browser had before is replaced (no fixation).
        response.headerlist.append(self._session_cookie(self.sessions.dumps(identity)))
        return response

    def _no_code(self, environ: dict, params: dict[str, list[str]]) -> Response:
        if params.get("usercancel") or params.get("error") or params.get("msg"):
            return self._bad_callback(
                environ,
                "cancelled",
                "QQ登录已取消或被拒绝。\nThe QQ sign-in was cancelled or refused.",
            )
        return self._bad_callback(
            environ, "missing_code", "回调缺少授权码。\nThe callback has no authorization code."
        )

    def _qq_failed(self, environ: dict, exc: QQError, next_url: str) -> Response:
        log.warning(
            "sign-in failed reason=qq_%s endpoint=%s qq_code=%s client=%s",
            "unavailable" if isinstance(exc, QQUnavailable) else "error",
            exc.endpoint or "-",
            exc.code if exc.code is not None else "-",
            wsgiutil.client_address(environ),
        )
        retry = [(self.url(environ, "/login", next_url), "重新登录 / Try again")]
        if isinstance(exc, QQUnavailable):
            status = 504 if exc.timeout else 502
            text = (
                "暂时无法连接QQ，请稍后再试。\nQQ could not be reached. Please try again shortly."
            )
            return html_page(status, "QQ登录暂不可用 / QQ sign-in unavailable", text, links=retry)
        details = [("QQ error code", str(exc.code))] if exc.code is not None else []
        if exc.restart_login:
            text = (
                "授权码已失效，请重新登录。\n"
                "The authorization code has expired or was used. Please start again."
            )
            return html_page(
                400, "请重新登录 / Please start again", text, links=retry, details=details
            )
        text = "QQ拒绝了这次登录。\nQQ refused this sign-in."
        if exc.code in _APP_NOT_APPROVED:
            text += (
                "\n若本站应用尚未通过QQ互联审核，只有开发者本人的QQ账号可以登录。"
                "\nIf this site's app has not yet passed QQ Connect review, "
                "only the developer's own QQ account can sign in."
            )
        return html_page(502, "QQ登录失败 / QQ sign-in failed", text, links=retry, details=details)

    # --- helpers -------------------------------------------------------------------------------

    def _bad_callback(self, environ: dict, reason: str, text: str) -> Response:
        log.warning("sign-in failed reason=%s client=%s", reason, wsgiutil.client_address(environ))
        links = [(self.url(environ, "/login"), "重新登录 / Sign in again")]
        return html_page(400, "登录未完成 / Sign-in not completed", text, links=links)

    def _error(self, environ: dict, status: int, reason: str, text: str) -> Response:
        log.info(
            "rejected status=%s reason=%s client=%s",
            status,
            reason,
            wsgiutil.client_address(environ),
        )
        return html_page(status, f"{status}", text)

    def _not_found(self) -> Response:
        return html_page(404, "404", "没有这个页面。\nNo such page.")

    def _pending(self, environ: dict) -> list[PendingLogin]:
        cookie = environ.get("HTTP_COOKIE", "")
        for token in cookie_values(cookie, self.settings.state_cookie_name):
            pending = self.states.loads(token)
            if pending:
                return pending
        return []

    def _state_cookie(self, pending: list[PendingLogin]) -> tuple[str, str]:
        s = self.settings
        # The return from QQ is a cross-site navigation: a Strict cookie would not come back.
        samesite = "none" if s.cookie_samesite == "none" else "lax"
        value, max_age = (self.states.dumps(pending), 600) if pending else ("", 0)
        return set_cookie(
            s.state_cookie_name,
            value,
            max_age=max_age,
            path=s.prefix,
            domain=s.cookie_domain,
            secure=s.cookie_secure,
            samesite=samesite,
        )

    def _session_cookie(self, value: str, max_age: int | None = None) -> tuple[str, str]:
        s = self.settings
        return set_cookie(
            s.cookie_name,
            value,
            max_age=s.session_max_age if max_age is None else max_age,
            domain=s.cookie_domain,
            secure=s.cookie_secure,
            samesite=s.cookie_samesite,
        )
