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
from urllib.parse import quote

from .config import Settings
from .cookies import cookie_values
from .flow import SignInRoutes
from .paths import PublicPaths
from .qq import QQClient
from .session import Identity, SessionCodec
from .wsgiutil import environ_key

IDENTITY_KEY = "qqgate.identity"

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
        qq_client = qq_client or QQClient(
            app_id=settings.app_id,
            app_key=settings.app_key,
            redirect_uri=settings.redirect_uri,
            base_url=settings.qq_base_url,
            timeout=settings.timeout,
            want_unionid=settings.unionid,
        )
        self.routes = SignInRoutes(settings, self.sessions, self.identify, qq_client, clock)
        self.public_paths = PublicPaths(settings.public_paths)
        self._untrusted = (
            *(environ_key(name) for name in settings.identity_headers),
            "HTTP_REMOTE_USER",
            "REMOTE_USER",
            IDENTITY_KEY,
        )
        self._openid_key, self._nickname_key, self._unionid_key = (
            environ_key(name) for name in settings.identity_headers
        )
        self._prefix = settings.prefix
        self._route_prefix = settings.prefix + "/"

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        for key in self._untrusted:
            environ.pop(key, None)
        path = environ.get("PATH_INFO", "")
        if path.startswith(self._route_prefix) or path == self._prefix:
            return self.routes(environ, start_response)
        identity = self.identify(environ)
        if identity is None:
            if path in self.public_paths:
                return self.app(environ, start_response)
            return self.routes.challenge(environ, start_response)
        allowed = self.settings.allowed_openids
        if allowed and identity.openid not in allowed:
            return self.routes.forbidden(environ, identity)(environ, start_response)
        environ.update(self.identity_environ(identity))
        return self.app(environ, start_response)

    def identify(self, environ: dict) -> Identity | None:
        """The signed-in identity of this request, or None."""
        cookie = environ.get("HTTP_COOKIE", "")
        for token in cookie_values(cookie, self.settings.cookie_name):
            identity = self.sessions.loads(token)
            if identity is not None:
                return identity
        return None

    def identity_environ(self, identity: Identity) -> dict[str, object]:
        """The environ entries that carry ``identity`` to the app."""
        extra: dict[str, object] = {
            self._openid_key: identity.openid,
            # Header values are latin-1 (PEP 3333); nicknames are Chinese, emoji, even CR/LF.
            self._nickname_key: quote(identity.nickname, safe=""),
            "REMOTE_USER": identity.openid,
            IDENTITY_KEY: identity,
        }
        if self.settings.unionid and identity.unionid:
            extra[self._unionid_key] = identity.unionid
        return extra
