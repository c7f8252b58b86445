"""``GateLogger``: gunicorn's logger as ``qqgate serve`` runs it (``logger_class`` in
``qqgate.gunicorn_conf``).

gunicorn writes the request line, query included, into every access-log line. The callback's query
carries QQ's authorization code and the login's state, which must never reach a log, so this
logger drops the callback's query altogether (the gate marks that request in the environ) and, on
any other path, the values of parameters named like a credential (``code``, ``state``, ...).
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from gunicorn import glogging

from .wsgiutil import REDACT_QUERY, Environ, client_address

REDACTED = "[redacted]"
_CREDENTIAL = re.compile(
    r"(^|&)((?:code|state|access_token|refresh_token|token)=)[^&]*", re.IGNORECASE
)


def redact_query(environ: Environ) -> str:
    """The query string as the access log may show it."""
    query = str(environ.get("QUERY_STRING") or "")
    if not query:
        return ""
    if environ.get(REDACT_QUERY):
        return REDACTED
    return _CREDENTIAL.sub(rf"\1\2{REDACTED}", query)


def redact_uri(raw_uri: str, query: str) -> str:
    """``raw_uri`` (the request target as sent) with its query replaced by ``query``."""
    path, _, _ = raw_uri.partition("?")
    return f"{path}?{query}" if query else path


class GateLogger(glogging.Logger):  # type: ignore[misc] # gunicorn ships no type hints
    """gunicorn's logger, with the request line and query redacted in every access-log atom."""

    def atoms(
        self, resp: Any, req: Any, environ: Environ, request_time: timedelta
    ) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        query = redact_query(environ)
        uri = redact_uri(str(environ.get("RAW_URI", "")), query)
        atoms["h"] = client_address(environ)  # past trusted_proxies
        atoms["q"] = query
        atoms["r"] = f"{environ.get('REQUEST_METHOD')} {uri} {environ.get('SERVER_PROTOCOL')}"
        atoms["{query_string}e"] = query
        atoms["{raw_uri}e"] = uri
        return atoms
