"""``QQGate``: the WSGI middleware that puts "Sign in with QQ" in front of an app.

Per request, in this order:

1. Remove every identity header a client may have sent (``X-QQ-OpenID`` and friends,
   ``Remote-User``) and ``REMOTE_USER``, on every path, signed in or not. Servers fold
   ``X-QQ_OpenID`` and ``X-QQ-OpenID`` into one environ key: removing by key covers every spelling.
2. Requests under ``{prefix}`` go to the gate's own routes (login, callback, ...).
3. A valid session cookie sets the identity headers, ``REMOTE_USER`` and
   ``environ["qqgate.identity"]``.
4. Without one, a public path passes with no identity; anything else is challenged and the wrapped
   app is never called.

Steps 1 and 3 run on every request, so they are kept cheap: no WebOb request and no cookie parser,
only our one cookie is looked at, and a token seen before costs a dict lookup in the session
codec's cache, which also holds the identity's environ entries, rendered once per token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from .config import Settings
from .cookies import CookieReader
from .flow import SignInRoutes
from .headers import IdentityHeaders
from .paths import PublicPaths
from .qq import QQClient
from .session import Identity, SessionCodec, VerifiedToken
from .wsgiutil import Environ, StartResponse, WSGIApp


class QQGate:
    """Wrap ``app`` so that only visitors signed in with QQ reach it."""

    def __init__(
        self,
        app: WSGIApp,
        settings: Settings,
        *,
        qq_client: QQClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.settings = settings
        self.identity_headers = IdentityHeaders(settings)
        self.sessions = SessionCodec(
            settings.secret_keys,
            settings.session_max_age,
            clock,
            render=self.identity_headers.environ,
        )
        qq_client = qq_client or QQClient(
            app_id=settings.app_id,
            app_key=settings.app_key,
            redirect_uri=settings.redirect_uri,
            base_url=settings.qq_base_url,
            timeout=settings.timeout,
            want_unionid=settings.unionid,
        )
        self.routes = SignInRoutes(
            settings, self.sessions, self.identify, self.identity_headers, qq_client, clock
        )
        self.public_paths = PublicPaths(settings.public_paths)
        self._prefix = settings.prefix
        self._route_prefix = settings.prefix + "/"
        self._cookies = CookieReader(settings.cookie_name)
        self._allowed_openids = settings.allowed_openids
        self._remembered_token = self._cookies.remembered
        self._cached_session = self.sessions.cache.peek
        self._clock = clock

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        self.identity_headers.strip(environ)
        path = environ.get("PATH_INFO", "")
        if path.startswith(self._prefix) and (
            path == self._prefix or path.startswith(self._route_prefix)
        ):
            return self.routes(environ, start_response)
        # The usual signed-in request, with no call it can do without: a Cookie header seen
        # before, its token verified before and unexpired, no allow-list. session() below gives
        # the same answer for it, slower; everything else goes there.
        cookie = environ.get("HTTP_COOKIE")
        if cookie is not None:
            token = self._remembered_token(cookie)
            if token is not None:
                session = self._cached_session(token)
                if (
                    session is not None
                    and session.expires > self._clock()
                    and not self._allowed_openids
                ):
                    environ.update(session.environ)
                    return self.app(environ, start_response)
        session = self.session(environ)
        if session is None:
            if path in self.public_paths:
                return self.app(environ, start_response)
            return self.routes.challenge(environ, start_response)
        if self._allowed_openids and session.identity.openid not in self._allowed_openids:
            return self.routes.forbidden(environ, session.identity)(environ, start_response)
        environ.update(session.environ)
        return self.app(environ, start_response)

    def identify(self, environ: Environ) -> Identity | None:
        """The signed-in identity of this request, or None."""
        session = self.session(environ)
        return None if session is None else session.identity

    def session(self, environ: Environ) -> VerifiedToken | None:
        """This request's verified session token (identity and rendered environ), or None."""
        cookie = environ.get("HTTP_COOKIE")
        token = self._cookies.first(cookie) if cookie else None
        if token is None:
            return None
        session = self.sessions.verify(token)
        if session is not None:
            return session
        # Several cookies of our name (another path or domain): the first one that verifies.
        for token in self._cookies.values(cookie or "")[1:]:
            session = self.sessions.verify(token)
            if session is not None:
                return session
        return None
