"""Small, total helpers for reading a WSGI environ: bad input gives None or a default, never an
error."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from .forwarded import TrustedProxies

# WSGI's types (PEP 3333), for annotations: the environ, start_response, an application.
Environ = dict[str, Any]
StartResponse = Callable[..., Callable[[bytes], object]]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

# Set by the gate's callback route: this request's query holds credentials (code, state), which
# the access log must not show (qqgate.accesslog).
REDACT_QUERY = "qqgate.redact_query"
# The gate's TrustedProxies, put in the environ when trusted_proxies is set (qqgate.forwarded).
TRUSTED_PROXIES = "qqgate.trusted_proxies"
MAX_QUERY_LENGTH = 8192
MAX_QUERY_FIELDS = 64
FORM_TYPE = "application/x-www-form-urlencoded"
_MOBILE = re.compile(r"Mobile|Android|iPhone|iPod|iPad|Windows Phone|HarmonyOS|MQQBrowser")


def query_params(environ: Environ) -> dict[str, list[str]] | None:
    """The decoded query parameters, or None when the query string is oversized or unparseable."""
    raw = environ.get("QUERY_STRING", "")
    if len(raw) > MAX_QUERY_LENGTH:
        return None
    # PEP 3333 hands us the raw bytes as latin-1; undo that before percent-decoding as UTF-8.
    text = raw.encode("latin-1", "replace").decode("utf-8", "replace")
    try:
        return parse_qs(
            text, keep_blank_values=True, max_num_fields=MAX_QUERY_FIELDS, errors="replace"
        )
    except ValueError:
        return None


def single(params: dict[str, list[str]], name: str) -> str | None:
    """The one value of ``name``; None when absent. Raises ValueError when it is given twice."""
    values = params.get(name)
    if not values:
        return None
    if len(values) > 1:
        raise ValueError(f"{name} given more than once")
    return values[0]


def environ_key(header: str) -> str:
    """The environ key of a request header: ``X-QQ-OpenID`` -> ``HTTP_X_QQ_OPENID``."""
    return "HTTP_" + header.upper().replace("-", "_")


def wants_html(environ: Environ) -> bool:
    """A browser navigating (GET/HEAD, accepts HTML, not an XHR) rather than an API client."""
    if environ.get("REQUEST_METHOD") not in ("GET", "HEAD"):
        return False
    if environ.get("HTTP_X_REQUESTED_WITH", "").lower() == "xmlhttprequest":
        return False
    return "text/html" in environ.get("HTTP_ACCEPT", "")


def is_mobile(environ: Environ) -> bool:
    return bool(_MOBILE.search(environ.get("HTTP_USER_AGENT", "")))


def client_address(environ: Environ) -> str:
    """The visitor's address for log lines: past ``trusted_proxies`` when the gate has them."""
    proxies: TrustedProxies | None = environ.get(TRUSTED_PROXIES)
    if proxies is not None:
        return proxies.client(environ)
    return str(environ.get("REMOTE_ADDR", "-"))


def list_tokens(value: str) -> list[str]:
    """The items of a comma-separated header value, lowercased, empty ones skipped."""
    return [item.strip().lower() for item in value.split(",") if item.strip()]


def small_form(environ: Environ, limit: int) -> dict[str, list[str]]:
    """The fields of a POST's urlencoded form of at most ``limit`` bytes (by its
    ``Content-Length``); empty for anything else, a bigger body or one that does not parse."""
    content_type = str(environ.get("CONTENT_TYPE", "")).split(";")[0].strip().lower()
    length = str(environ.get("CONTENT_LENGTH", ""))
    if environ.get("REQUEST_METHOD") != "POST" or content_type != FORM_TYPE:
        return {}
    if not length.isdigit() or not 0 < int(length) <= limit:
        return {}
    try:
        body = environ["wsgi.input"].read(int(length))
        text = body.decode("utf-8")
        return parse_qs(text, max_num_fields=MAX_QUERY_FIELDS)
    except (OSError, ValueError, AttributeError, KeyError):  # a client gone, bad UTF-8, no input
        return {}
