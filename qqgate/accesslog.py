"""``GateLogger``: gunicorn's logger as ``qqgate serve`` runs it (``logger_class`` in
``qqgate.gunicorn_conf``).

With ``log_format = json`` gunicorn's error and access lines are JSON objects too, one a line, like
the gate's own (``qqgate.logs.JsonFormatter``): an access line carries ``event: "request"`` and the
client, user, method, target, status, bytes, duration and user agent as fields.

gunicorn writes the request line, query included, into every access-log line. The callback's query
carries QQ's authorization code and the login's state, which must never reach a log, so this
logger drops the callback's query altogether (the gate marks that request in the environ) and, on
any other path, the values of parameters named like a credential (``code``, ``state``, ...).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from gunicorn import glogging

from . import reloads
from .logs import JsonFormatter
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


# JSON field -> gunicorn atom, for the access lines.
_ACCESS_FIELDS = {
    "client": "h",
    "user": "{remote_user}e",
    "method": "m",
    "target": "{raw_uri}e",
    "status": "s",
    "bytes": "B",
    "duration_ms": "M",
    "user_agent": "a",
}


class AccessJsonFormatter(JsonFormatter):
    """A JSON access line, its fields taken from the atoms gunicorn logs it with."""

    def format(self, record: logging.LogRecord) -> str:
        atoms = record.args
        if isinstance(atoms, Mapping):
            record.qqgate_event = "request"
            record.qqgate_fields = {name: atoms[atom] for name, atom in _ACCESS_FIELDS.items()}
        return super().format(record)


class GateLogger(glogging.Logger):  # type: ignore[misc] # gunicorn ships no type hints
    """gunicorn's logger: the request line and query redacted in every access-log atom, and
    JSON lines with ``log_format = json`` (from the settings the master checked)."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        settings = reloads.current()
        if settings is None or settings.log_format != "json":
            return
        for handler in self.error_log.handlers:
            handler.setFormatter(JsonFormatter())
        for handler in self.access_log.handlers:
            handler.setFormatter(AccessJsonFormatter())

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
