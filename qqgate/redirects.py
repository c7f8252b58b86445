"""Validation of return-to targets (``next``): one validator for login, callback and logout.

Only a same-site path survives. Browsers are generous when they parse a Location header: the WHATWG
URL parser drops tab, CR and LF anywhere, strips leading control characters and spaces, and treats
``\\`` like ``/``, so ``/\\evil.example``, ``/\\t/evil.example`` and ``//evil.example`` all leave
the site.
Rather than predict every such trick we refuse any control character, space or backslash outright
and require a single leading ``/``. Whatever passes is percent-encoded to plain ASCII, so the header
a browser gets is exactly the string we checked.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from .wsgiutil import Environ

MAX_NEXT_LENGTH = 2048
# Characters kept as they are; everything else (non-ASCII, quotes, <, >, ...) is percent-encoded.
_KEEP = "/?&=%#;:@!$'()*+,~-._"


def safe_next(value: str | None, default: str = "/") -> str:
    """``value`` if it is a same-site path (exactly one leading ``/``), else ``default``."""
    if not value or len(value) > MAX_NEXT_LENGTH:
        return default
    if any(ch <= " " or ch in "\\\x7f" for ch in value):
        return default
    if not value.startswith("/") or value.startswith("//"):
        return default
    value = quote(value, safe=_KEEP)
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or len(value) > MAX_NEXT_LENGTH:
        return default
    return value


def mounted_at(environ: Environ, mount: str) -> str:
    """Where the app lives in the site's URL space: the server's ``SCRIPT_NAME`` when it set one,
    else the configured ``mount`` (a front that strips the mount leaves only that)."""
    return environ.get("SCRIPT_NAME") or mount


def request_target(environ: Environ, *, script_name: bool = True, mount: str = "") -> str:
    """The path and query of the current request (``SCRIPT_NAME``, or ``mount`` where the server
    set none, included unless told not to), percent-encoded, as a ``next`` value or a request
    target."""
    path = environ.get("PATH_INFO", "")
    if script_name:
        path = mounted_at(environ, mount) + path
    # PEP 3333: PATH_INFO holds the raw bytes decoded as latin-1; re-encode to get UTF-8 back.
    target = quote(path.encode("latin-1", "replace"), safe="/:@!$&'()*+,;=~-._")
    query = environ.get("QUERY_STRING", "")
    return f"{target}?{query}" if query else target
