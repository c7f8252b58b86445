"""``QQGate``: the WSGI middleware that puts "Sign in with QQ" in front of an app.

Per request, in this order:

1. Remove every identity header a client may have sent (``X-QQ-OpenID`` and friends,
   ``Remote-User``) and ``REMOTE_USER``, on every path, signed in or not. Servers fold
   ``X-QQ_OpenID`` and ``X-QQ-OpenID`` into one environ key: removing by key covers every spelling.
2. Requests under ``{prefix}`` go to the gate's own routes (login, callback, ...).
3. A valid session cookie sets the identity headers, ``REMOTE_USER`` and
   ``environ["qqgate.identity"]``. (Several that name different users are none, and are cleared.)
   A session old enough (``session_refresh``) gets a fresh cookie added to the app's answer.
4. Without one, a public path passes with no identity; anything else is challenged and the wrapped
   app is never called.

Steps 1 and 3 run on every request, so they are kept cheap: no WebOb request and no cookie parser,
only our one cookie is looked at, and a token seen before costs a dict lookup in the session
codec's cache, which also holds the identity's environ entries, rendered once per token.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from . import logs
from .config import Settings
from .flow import SignInRoutes
from .forwarded import TrustedProxies
from .headers import IdentityHeaders
from .paths import PublicPaths
from .qq import QQClient
from .session import Identity
from .sessions import REFRESH, TOSSED_SESSION, Sessions
from .wsgiutil import TRUSTED_PROXIES, Environ, StartResponse, WSGIApp


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
        logs.configure_unless_configured(settings)
        self.identity_headers = IdentityHeaders(settings)
        self.sessions = Sessions(settings, clock, headers=self.identity_headers)
        self._load = self.sessions.load  # bound once: called on every request
        self._restricted = self.sessions.restricted
        qq_client = qq_client or QQClient(
            app_id=settings.app_id,
            app_key=settings.app_key,
            redirect_uri=settings.redirect_uri,
            base_url=settings.qq_base_url,
            timeout=settings.timeout,
            want_unionid=settings.unionid,
        )
        self.routes = SignInRoutes(settings, self.sessions, self.identity_headers, qq_client, clock)
        self.public_paths = PublicPaths(settings.public_paths)
        self._prefix = settings.prefix
        self._route_prefix = settings.prefix + "/"
        self.proxies = TrustedProxies(settings.trusted_proxies) or None

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        self.identity_headers.strip(environ)
        if self.proxies is not None:  # for wsgiutil.client_address, in the logs
            environ[TRUSTED_PROXIES] = self.proxies
        path = environ.get("PATH_INFO", "")
        if path.startswith(self._prefix) and (
            path == self._prefix or path.startswith(self._route_prefix)
        ):
            # Copies of our cookies that disagree are cleared, whatever the route answers.
            return self.routes(environ, self.sessions.clearing_tossed(environ, start_response))
        session = self._load(environ)
        if session is None:
            if TOSSED_SESSION in environ:
                start_response = self.sessions.clearing_tossed(environ, start_response)
            if path in self.public_paths:
                return self.app(environ, start_response)
            return self.routes.challenge(environ, start_response)
        if self._restricted and not self.sessions.allowed(session.identity):
            return self.routes.forbidden(environ, session.identity)(environ, start_response)
        if REFRESH in environ:  # sliding sessions: the token is old enough to re-issue
            start_response = self.sessions.refreshing(environ, start_response)
        environ.update(session.environ)
        return self.app(environ, start_response)

    def identify(self, environ: Environ) -> Identity | None:
        """The signed-in identity of this request, or None."""
        return self.sessions.identify(environ)
