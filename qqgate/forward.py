"""``{prefix}/auth`` and ``{prefix}/refused``: the gate as the judge of a front that serves the app
itself (nginx ``auth_request``, Caddy ``forward_auth``, Traefik ``ForwardAuth``, ingress-nginx).

The front asks ``/auth`` about each request; the answer depends on the session cookie and the
allow-list, nothing else. What the front tells about the request it asks for (its method and URI)
only shapes how a refusal is presented: a browser navigation is sent to sign in, with ``next``
taken from that URI and confined to this site by ``safe_next``; anything else gets the JSON 401.
It never grants access: the same cookie gets the same decision whatever the headers say.

Two families of fronts ask differently:

- nginx ``auth_request`` sends ``X-Original-URI`` (and, in our configurations,
  ``X-Original-Method``; ingress-nginx sends ``X-Original-URL`` and ``-Method``) and throws the
  answer's body away: ``/auth`` answers with a bare status (2xx, 401 or 403), and nginx's
  ``error_page`` fetches the page the browser should see from ``/refused``;
- Caddy and Traefik send ``X-Forwarded-Method``, ``-Proto``, ``-Host`` and ``-Uri`` and return
  the answer itself to the browser on anything but 2xx: ``/auth`` then answers in full (302 to
  the sign-in, the JSON 401, or the 403 page).

A WebSocket handshake (``Sec-WebSocket-Key``) from a page of another site gets 403, as in proxy
mode (``qqgate.origins``), and is never cached.

A 2xx carries the identity headers for the front to copy into the app's request, and says how long
nginx's ``proxy_cache`` may keep it (``X-Accel-Expires``, at most ``auth_cache_seconds``); every
other answer says never.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from webob import Response

from . import answers, logs, metrics, wsgiutil
from .answers import Answer
from .origins import OriginPolicy
from .redirects import safe_next
from .session import VerifiedToken
from .sessions import REFRESH
from .wsgiutil import Environ

if TYPE_CHECKING:
    from .flow import SignInRoutes

log = logging.getLogger("qqgate")

NO_STORE = ("Cache-Control", "no-store")
# nginx's own header for its proxy_cache, which it reads before Cache-Control: 0 is "never".
NOT_CACHED = ("X-Accel-Expires", "0")
# Browsers send it on every WebSocket handshake, and no page can set it on any other request;
# fronts pass it on to /auth (Upgrade and Connection are hop-by-hop: they do not).
HANDSHAKE = "HTTP_SEC_WEBSOCKET_KEY"
CACHE_KEY = "HTTP_X_QQGATE_CACHE_KEY"  # the key nginx files the answer under: $qqgate_session


@dataclass(frozen=True, slots=True)
class Asked:
    """The request a front asks about, as the front describes it (unvalidated)."""

    method: str
    target: str | None  # path and query
    answers_browser: bool  # the front returns a refusal as it is (Caddy, Traefik)

    def navigation(self, environ: Environ) -> bool:
        """Whether the request asked about is a browser navigating (see ``wants_html``)."""
        return wsgiutil.wants_html({**environ, "REQUEST_METHOD": self.method})


def asked(environ: Environ) -> Asked:
    """What the front says about the request it asks for: nginx's ``X-Original-*`` first (nginx
    answers the browser itself), then the ``X-Forwarded-*`` of Caddy and Traefik."""
    own_method = str(environ.get("REQUEST_METHOD", "GET"))
    original_method = environ.get("HTTP_X_ORIGINAL_METHOD")
    original = environ.get("HTTP_X_ORIGINAL_URI") or _target_of(environ.get("HTTP_X_ORIGINAL_URL"))
    if original is not None or original_method is not None:  # nginx, ingress-nginx
        return Asked(original_method or own_method, original, False)
    forwarded_uri = environ.get("HTTP_X_FORWARDED_URI")
    forwarded_method = environ.get("HTTP_X_FORWARDED_METHOD")
    if forwarded_uri is None and forwarded_method is None:
        return Asked(own_method, None, False)
    return Asked(forwarded_method or own_method, forwarded_uri, True)


def _target_of(url: str | None) -> str | None:
    """The path and query of ingress-nginx's ``X-Original-URL`` (a full URL)."""
    if not url:
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


class ForwardAuth:
    """The ``/auth`` and ``/refused`` routes of one gate."""

    def __init__(self, routes: SignInRoutes) -> None:
        self.routes = routes
        self.settings = routes.settings
        self.sessions = routes.sessions
        self.origins = OriginPolicy(self.settings.redirect_uri, self.settings.websocket_origins)

    def auth(self, environ: Environ) -> Response | Answer:
        """2xx with the identity headers; else 401 or 403, in full when the front passes the
        answer on to the browser. Every 403 logs the denial."""
        answer = self._judge(environ)
        status = answer.status if isinstance(answer, Answer) else str(answer.status_int)
        metrics.get().auth_answers.labels(status[:3]).inc()
        return answer

    def _judge(self, environ: Environ) -> Response | Answer:
        question = asked(environ)
        session = self.sessions.load(environ)
        if session is None:
            if question.answers_browser:
                return self._anonymous(environ, question)
            hint = self._login_hint(environ, question)
            return Answer("401 Unauthorized", [NOT_CACHED, NO_STORE, *hint])
        identity = session.identity
        if not self.sessions.allowed(identity):
            page = self.routes.forbidden(environ, identity)  # nginx drops the body, Caddy shows it
            page.headerlist.insert(0, NOT_CACHED)
            return page
        environ["REMOTE_USER"] = identity.openid  # for the access log
        if HANDSHAKE in environ:  # a WebSocket: the page's Origin must be ours, as in proxy mode
            if not self.origins.allows(environ):
                return self._cross_site(environ)
            return Answer("202 Accepted", [NOT_CACHED, NO_STORE, *session.headers])
        if REFRESH in environ:  # sliding sessions: the shipped nginx block passes it on
            refreshed = self.sessions.reissue(session)  # never kept: nginx skips a Set-Cookie
            return Answer("202 Accepted", [NOT_CACHED, NO_STORE, *session.headers, refreshed])
        return Answer("202 Accepted", [*self._cache(environ, session), NO_STORE, *session.headers])

    def refused(self, environ: Environ) -> Response | Answer:
        """What nginx's ``error_page`` shows after ``/auth`` refused: the same answer a Caddy
        front relays. The denial was logged by ``/auth``; this only presents it."""
        question = asked(environ)
        identity = self.sessions.identify(environ)
        if identity is None:
            return self._anonymous(environ, question)
        if not self.sessions.allowed(identity):
            sign_out = self.routes.url(environ, "/logout")
            pages = self.routes.pages
            return pages.forbidden(environ, identity.openid, identity.nickname, sign_out)
        if HANDSHAKE in environ and not self.origins.allows(environ):
            return Answer("403 Forbidden", [NO_STORE])  # /auth logged it
        # Signed in meanwhile (another tab): back to where the visitor was going.
        return answers.redirect(safe_next(question.target, self.routes.home))

    def _cross_site(self, environ: Environ) -> Answer:
        client = wsgiutil.client_address(environ)
        reason = "cross_site_websocket"
        logs.event(log, logging.WARNING, "rejected", status=403, reason=reason, client=client)
        return Answer("403 Forbidden", [NOT_CACHED, NO_STORE])

    def _cache(self, environ: Environ, session: VerifiedToken) -> list[tuple[str, str]]:
        """How long nginx may keep this 2xx: only when the key nginx files it under (its
        ``$qqgate_session``, sent as ``X-QQGate-Cache-Key``) is itself a session token of this very
        identity, so a cached answer is only ever served to a request that carries that token;
        never past ``auth_cache_seconds`` or the end of either session."""
        seconds = self.settings.auth_cache_seconds
        key = environ.get(CACHE_KEY)
        if not seconds or not key:
            return [NOT_CACHED]
        keyed = self.sessions.codec.verify(key)  # usually the same token: a cache lookup
        if keyed is None or keyed.identity != session.identity:
            return [NOT_CACHED]
        now = int(self.routes.clock())
        seconds = min(seconds, session.expires - now, keyed.expires - now)
        return [("X-Accel-Expires", str(seconds))] if seconds > 0 else [NOT_CACHED]

    def _anonymous(self, environ: Environ, question: Asked) -> Response | Answer:
        next_url = safe_next(question.target, self.routes.home)
        if question.navigation(environ):
            return answers.redirect(self.routes.start_url(environ, next_url))
        return self.routes.login_required(environ, next_url)

    def _login_hint(self, environ: Environ, question: Asked) -> list[tuple[str, str]]:
        """``X-QQGate-Login``, where a browser should be sent, for configurations that redirect
        from nginx itself (``$upstream_http_x_qqgate_login``)."""
        if not question.navigation(environ):
            return []
        target = safe_next(question.target, self.routes.home)
        return [("X-QQGate-Login", self.routes.start_url(environ, target))]
