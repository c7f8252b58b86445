"""Where a request comes from, as the browser tells it: for actions a link on another site must
not be able to take on the visitor's behalf (signing out).

Browsers say it in ``Sec-Fetch-Site`` (``same-origin``, ``same-site``, ``none`` for what the
visitor typed or bookmarked, ``cross-site``); older ones only in ``Origin`` (always on POST) or
``Referer``. Non-browsers send none of these: no signal at all, which the caller weighs.
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from .values import normal_origin
from .wsgiutil import Environ

Site = Literal["same", "cross"] | None
_SAME = frozenset({"same-origin", "same-site", "none"})


class FetchSite:
    """Tells requests from the gate's own site (the request's scheme and Host, or the origin of
    ``redirect_uri``) from those another site started."""

    def __init__(self, redirect_uri: str) -> None:
        parts = urlsplit(redirect_uri)
        self._own = normal_origin(f"{parts.scheme}://{parts.netloc}")

    def __call__(self, environ: Environ) -> Site:
        """ "same", "cross", or None when the request carries no signal."""
        fetch_site = environ.get("HTTP_SEC_FETCH_SITE", "").strip().lower()
        if fetch_site:
            return "same" if fetch_site in _SAME else "cross"
        origin = environ.get("HTTP_ORIGIN") or _origin_of(environ.get("HTTP_REFERER", ""))
        if not origin:
            return None
        return "same" if self._is_own(environ, origin) else "cross"

    def _is_own(self, environ: Environ, origin: str) -> bool:
        normal = normal_origin(origin)  # "null" (a sandboxed frame) or garbage: None, not ours
        if normal is None:
            return False
        scheme = environ.get("wsgi.url_scheme", "http")
        return normal in (self._own, normal_origin(f"{scheme}://{environ.get('HTTP_HOST', '')}"))


def _origin_of(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "null"
    return (
        f"{parts.scheme}://{parts.netloc}"
        if parts.scheme and parts.netloc
        else ("null" if url else "")
    )
