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
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from .config import Settings
from .cookies import cookie_values
from .flow import SignInRoutes
from .headers import IdentityHeaders
from .paths import PublicPaths
from .qq import QQClient
from .session import Identity, SessionCodec

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


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
        self.sessions = SessionCodec(settings.secret_keys, settings.session_max_age, clock)
        self.identity_headers = IdentityHeaders(settings)
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

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        self.identity_headers.strip(environ)
        path = environ.get("PATH_INFO", "")
        if path.startswith(self._route_prefix) or path == self._prefix:
            return self.routes(environ, start_response)
        identity = self.identify(environ)
        if identity is None:
            if path in self.public_paths:
                return self.app(environ, start_response)
            return self.routes.challenge(environ, start_response)
        if not self.routes.allowed(identity):
            return self.routes.forbidden(environ, identity)(environ, start_response)
        environ.update(self.identity_headers.environ(identity))
        return self.app(environ, start_response)

    def identify(self, environ: dict) -> Identity | None:
        """The signed-in identity of this request, or None."""
        cookie = environ.get("HTTP_COOKIE", "")
        for token in cookie_values(cookie, self.settings.cookie_name):
            identity = self.sessions.loads(token)
            if identity is not None:
                return identity
        return None
