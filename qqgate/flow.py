"""The gate's own routes under ``{prefix}`` (sign_in, login, callback, logout, userinfo, ping; auth
and refused are ``qqgate.forward``'s) and the challenge of a visitor who is not signed in.

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

from . import answers, logs, metrics, readiness, wsgiutil
from .answers import Answer
from .config import Settings
from .fetchsite import FetchSite
from .forward import ForwardAuth
from .headers import IdentityHeaders
from .pages import Pages, json_response
from .qq import QQClient, QQError, QQUnavailable
from .qqanswers import CONFIG, FIXES, NOT_APPROVED, RESTART, UNIONID, https_avatar
from .redirects import mounted_at, request_target, safe_next
from .session import (
    Identity,
    PendingLogin,
)
from .sessions import Sessions
from .wsgiutil import Environ, StartResponse

log = logging.getLogger("qqgate")

# The page for each QQ refusal (qqanswers.REMEDIES); the config errors also carry the review note,
# since an app not yet approved fails the same way for everyone but its developer.
_REFUSAL_MESSAGES = {
    NOT_APPROVED: ["qq_not_approved.message"],
    UNIONID: ["qq_unionid.message"],
    CONFIG: ["qq_config.message", "qq_not_approved.note"],
}
MAX_CODE_LENGTH = 512
MAX_STATE_LENGTH = 128
MAX_FORM = 1024  # bytes of a sign-out form: its one field


class SignInRoutes:
    """WSGI app for everything under ``settings.prefix``."""

    def __init__(
        self,
        settings: Settings,
        sessions: Sessions,
        identity_headers: IdentityHeaders,
        qq: QQClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self._mount = settings.mount  # redirect_uri's; see redirects.mounted_at
        self.home = self._mount + "/"  # where a return path that is not safe goes
        self.identity_headers = identity_headers
        self.qq = qq
        self.clock = clock
        self.pages = Pages(settings)
        self.fetch_site = FetchSite(settings.redirect_uri)
        self.forward = ForwardAuth(self)  # /auth and /refused, for nginx, Caddy and Traefik
        self._routes = {
            "/sign_in": self.sign_in,
            "/login": self.login,
            "/callback": self.callback,
            "/logout": self.logout,
            "/userinfo": self.userinfo,
            "/auth": self.forward.auth,
            "/refused": self.forward.refused,
            "/ping": self.ping,
            "/ready": self.ready,
            "/metrics": self.metrics_text,
        }

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        route = environ.get("PATH_INFO", "")[len(self.settings.prefix) :]
        handler = self._routes.get(route)
        response = handler(environ) if handler else self._not_found(environ)
        return response(environ, start_response)

    # --- URLs -------------------------------------------------------------------------------

    def url(self, environ: Environ, route: str, next_url: str | None = None) -> str:
        base = mounted_at(environ, self._mount) + self.settings.prefix + route
        return f"{base}?next={quote(next_url, safe='')}" if next_url else base

    def start_url(self, environ: Environ, next_url: str | None = None) -> str:
        """Where a visitor starts signing in: the sign-in page, or straight to QQ's."""
        return self.url(environ, "/sign_in" if self.settings.sign_in_page else "/login", next_url)

    # --- not signed in ------------------------------------------------------------------------

    def challenge(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        """Send a browser to sign in; tell an API client with a 401, never a login page."""
        next_url = safe_next(request_target(environ, mount=self._mount), self.home)
        if wsgiutil.wants_html(environ):
            # Bodiless and relative: the answer every anonymous visit gets, kept cheap.
            location = self.start_url(environ, next_url)
            metrics.get().challenges.labels("302").inc()
            return answers.redirect(location)(environ, start_response)
        metrics.get().challenges.labels("401").inc()
        return self.login_required(environ, next_url)(environ, start_response)

    def forbidden(self, environ: Environ, identity: Identity) -> Response:
        logs.event(
            log,
            logging.WARNING,
            "access denied",
            openid=identity.openid,
            client=wsgiutil.client_address(environ),
            reason="not_in_allowed_openids",
        )
        sign_out = self.url(environ, "/logout")
        return self.pages.forbidden(environ, identity.openid, identity.nickname, sign_out)

    # --- routes -------------------------------------------------------------------------------

    def sign_in(self, environ: Environ) -> Response | Answer:
        """The sign-in page with its QQ button; a visitor already signed in goes on to ``next``."""
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
            return self._error(environ, 405, "method_not_allowed", "sign_in_method.message")
        next_url = safe_next(_next_param(environ), self.home)
        identity = self.sessions.identify(environ)
        if identity is not None and self.sessions.allowed(identity):
            return answers.redirect(next_url)
        return self.pages.sign_in(environ, self.url(environ, "/login", next_url))

    def login(self, environ: Environ) -> Response | Answer:
        if self.sessions.looping(environ):
            # Back again without a session: the browser drops it. Another trip to QQ won't help.
            return self._bad_callback(environ, "sign_in_loop")
        next_url = safe_next(_next_param(environ), self.home)
        state = secrets.token_urlsafe(32)
        pending_cookie = self.sessions.add_pending(environ, state, next_url)
        authorize = self.qq.authorize_url(
            state, scope=self.settings.scope, mobile=wsgiutil.is_mobile(environ)
        )
        return answers.redirect(authorize, pending_cookie)

    def callback(self, environ: Environ) -> Response | Answer:
        environ[wsgiutil.REDACT_QUERY] = True  # its query (code, state) is not for the access log
        response = self._callback(environ)
        answers.set_header(response, "Referrer-Policy", "no-referrer")  # the URL carries the code
        answers.set_header(response, "Cache-Control", "no-store")
        return response

    def logout(self, environ: Environ) -> Response | Answer:
        if environ.get("REQUEST_METHOD") not in ("GET", "HEAD", "POST"):
            return self._error(environ, 405, "method_not_allowed", "method_not_allowed.message")
        session = self.sessions.load(environ)
        identity = None if session is None else session.identity
        requested = _next_param(environ)
        everywhere = _everywhere(environ)
        if identity is not None and not self._may_sign_out(environ):
            # A link or form on another site: ask, with a form that posts from our own page.
            sign_out = self.url(environ, "/logout", safe_next(requested) if requested else None)
            if everywhere:
                sign_out += ("&" if "?" in sign_out else "?") + "everywhere=1"
            return self.pages.confirm_sign_out(environ, sign_out, safe_next(requested))
        if everywhere and self.sessions.store is None:
            # Promising what cannot be kept is worse than refusing: nothing is signed out.
            return self._error(environ, 400, "everywhere_unavailable", "everywhere.message")
        if session is not None:
            self.sessions.revoke(session, everywhere=everywhere)
        response: Response | Answer
        if requested:
            response = answers.redirect(safe_next(requested, self.home))
        else:
            response = self.pages.signed_out(environ, self.start_url(environ))
            response.headerlist.append(("Cache-Control", "no-store"))
        response.headerlist.append(self.sessions.clear())
        reset = self.sessions.forget_returns(environ)
        if reset:
            response.headerlist.append(reset)
        if identity:
            client = wsgiutil.client_address(environ)
            scope = "everywhere" if everywhere else None
            logs.event(
                log, logging.INFO, "sign-out", openid=identity.openid, scope=scope, client=client
            )
        return response

    def _may_sign_out(self, environ: Environ) -> bool:
        """A POST unless another site sent it; a GET only with a sign of our own site."""
        site = self.fetch_site(environ)
        return site == "same" or (site is None and environ.get("REQUEST_METHOD") == "POST")

    def userinfo(self, environ: Environ) -> Response:
        identity = self.sessions.identify(environ)
        if identity is None:
            return self.login_required(environ)
        return json_response(200, identity.as_json())

    def ping(self, environ: Environ) -> Response:
        response = Response("ok\n", content_type="text/plain", charset="utf-8")
        response.headerlist.append(("Cache-Control", "no-store"))
        return response

    def ready(self, environ: Environ) -> Response:
        """200 when this gate can serve; 503 with the reason (in proxy mode: the upstream)."""
        upstream = self.settings.upstream
        problem = readiness.upstream_problem(
            upstream, min(readiness.CONNECT_TIMEOUT, self.settings.upstream_timeout)
        )
        if problem:
            response = json_response(503, {"status": "not_ready", "reason": problem})
        else:
            response = json_response(200, {"status": "ready", "upstream": upstream})
        response.headerlist.append(("Cache-Control", "no-store"))
        return response

    def metrics_text(self, environ: Environ) -> Response:
        """The Prometheus text format, for ``metrics_allow`` addresses only."""
        allow = self.settings.metrics_allow
        if not allow:
            return self._not_found(environ)
        if not metrics.scrape_allowed(environ, allow):
            return json_response(403, {"error": "metrics_not_allowed"})
        body, content_type = metrics.exposition()
        headers = [("Content-Type", content_type), ("Cache-Control", "no-store")]
        return Response(body=body, headerlist=headers)

    # --- the callback, step by step ----------------------------------------------------------

    def _callback(self, environ: Environ) -> Response | Answer:
        params = wsgiutil.query_params(environ)
        if params is None:
            return self._bad_callback(environ, "bad_query")
        try:
            code = wsgiutil.single(params, "code")
            state = wsgiutil.single(params, "state")
        except ValueError:
            return self._bad_callback(environ, "duplicate_parameter")
        if not code or params.get("msg"):
            # QQ documents its errors as code=<error number>&msg=...: that code is no grant.
            return self._no_code(environ, params)
        if len(code) > MAX_CODE_LENGTH or not code.isascii() or not code.isprintable():
            return self._bad_callback(environ, "bad_code")
        if not state or len(state) > MAX_STATE_LENGTH:
            return self._bad_callback(environ, "state_mismatch")
        entry, remaining = self.sessions.take_pending(environ, state)
        if entry is None:
            return self._bad_callback(environ, "state_mismatch")
        response = self._finish(environ, code, entry)
        response.headerlist.append(remaining)
        return response

    def _finish(self, environ: Environ, code: str, entry: PendingLogin) -> Response | Answer:
        try:
            profile = self.qq.sign_in(code)
        except QQError as exc:
            return self._qq_failed(environ, exc, entry.next_url)
        avatar = profile.avatar_url
        identity = Identity(
            profile.openid,
            profile.nickname,
            https_avatar(avatar) if self.settings.avatar_https else avatar,
            profile.unionid if self.settings.unionid else None,
            int(self.clock()),
        )
        if not self.sessions.allowed(identity):
            return self.forbidden(environ, identity)
        client = wsgiutil.client_address(environ)
        logs.event(log, logging.INFO, "sign-in ok", openid=profile.openid, client=client)
        # Always a fresh session: whatever cookie the browser had before is replaced (no fixation).
        return answers.redirect(entry.next_url, self.sessions.issue(identity))

    def _no_code(self, environ: Environ, params: dict[str, list[str]]) -> Response:
        if params.get("usercancel") or params.get("error") or params.get("msg"):
            return self._bad_callback(environ, "cancelled")
        return self._bad_callback(environ, "missing_code")

    def _qq_failed(self, environ: Environ, exc: QQError, next_url: str) -> Response:
        unavailable = isinstance(exc, QQUnavailable)
        remedy = None if unavailable else exc.remedy
        fields: dict[str, object] = {
            "reason": "qq_unavailable" if unavailable else f"qq_{remedy or 'error'}",
            "endpoint": exc.endpoint or "-",
            "qq_code": exc.code if exc.code is not None else "-",
            "client": wsgiutil.client_address(environ),
        }
        if remedy in FIXES:
            fields["fix"] = FIXES[remedy]
        logs.event(log, logging.WARNING, "sign-in failed", **fields)
        # The visitor already chose QQ: "try again" goes straight back to it.
        retry = (self.url(environ, "/login", next_url), "action.try_again")
        if isinstance(exc, QQUnavailable):
            status = 504 if exc.timeout else 502
            return self.pages.error(
                environ, status, "qq_unavailable.title", ["qq_unavailable.message"], action=retry
            )
        details = [("detail.qq_error_code", str(exc.code))] if exc.code is not None else []
        if remedy == RESTART:
            restart = (retry[0], "action.start_again")
            keys = ["qq_restart.message"]
            return self.pages.error(
                environ, 400, "qq_restart.title", keys, action=restart, details=details
            )
        keys = _REFUSAL_MESSAGES.get(remedy or "", ["qq_refused.message"])
        return self.pages.error(
            environ, 502, "qq_refused.title", keys, action=retry, details=details
        )

    # --- helpers -------------------------------------------------------------------------------

    def _bad_callback(self, environ: Environ, reason: str) -> Response:
        """400 for a callback that cannot complete; ``reason`` names the log reason and the
        message (``{reason}.message`` in :mod:`qqgate.i18n`)."""
        client = wsgiutil.client_address(environ)
        logs.event(log, logging.WARNING, "sign-in failed", reason=reason, client=client)
        action = (self.start_url(environ), "action.start_again")
        return self.pages.error(
            environ, 400, "not_completed.title", [f"{reason}.message"], action=action
        )

    def _error(self, environ: Environ, status: int, reason: str, message_key: str) -> Response:
        client = wsgiutil.client_address(environ)
        logs.event(log, logging.INFO, "rejected", status=status, reason=reason, client=client)
        return self.pages.error(environ, status, f"{reason}.title", [message_key])

    def login_required(self, environ: Environ, next_url: str | None = None) -> Response:
        """The 401 an API client gets instead of a login page."""
        login_url = self.url(environ, "/login", next_url)
        return json_response(401, {"error": "login_required", "login_url": login_url})

    def _not_found(self, environ: Environ) -> Response:
        return self.pages.error(environ, 404, "not_found.title", ["not_found.message"])


def _everywhere(environ: Environ) -> bool:
    """Whether a sign-out asks for every browser: ``everywhere=1`` in the query, or in the form
    a POST sends (read up to ``MAX_FORM`` bytes; a bigger or other body does not ask)."""
    if (wsgiutil.query_params(environ) or {}).get("everywhere") == ["1"]:
        return True
    return wsgiutil.small_form(environ, MAX_FORM).get("everywhere") == ["1"]


def _next_param(environ: Environ) -> str | None:
    """The first ``next`` query parameter, unvalidated (pass it through ``safe_next``)."""
    values = (wsgiutil.query_params(environ) or {}).get("next")
    return values[0] if values else None
