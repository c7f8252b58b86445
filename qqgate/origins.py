"""Which browser origins may open a WebSocket to the site: the gate's own (the origin of
``redirect_uri``, or the request's scheme and Host) and those listed in ``websocket_origins``.

A page on another site cannot ride the visitor's cookie into a WebSocket (cross-site WebSocket
hijacking): browsers send the page's ``Origin`` on every WebSocket handshake. A client without one
is no browser and carries no victim's cookie. Proxy mode checks it in ``qqgate.upstream.tunnel``,
the forward-auth fronts in ``qqgate.forward``.
"""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

from .values import normal_origin
from .wsgiutil import Environ


class OriginPolicy:
    """Which browser origins may open a WebSocket through the gate."""

    def __init__(self, redirect_uri: str, extra: Iterable[str] = ()) -> None:
        parts = urlsplit(redirect_uri)
        own = normal_origin(f"{parts.scheme}://{parts.netloc}")
        self._allowed = frozenset({own, *extra} - {None})

    def allows(self, environ: Environ) -> bool:
        origin = environ.get("HTTP_ORIGIN")
        if origin is None:
            return True  # not a browser: no visitor's cookie to hijack
        normal = normal_origin(origin)
        if normal is None:
            return False  # "null" (a sandboxed frame, a file), or garbage
        scheme = environ.get("wsgi.url_scheme", "http")
        return normal in self._allowed or normal == normal_origin(
            f"{scheme}://{environ.get('HTTP_HOST', '')}"
        )
