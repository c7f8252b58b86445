"""The app behind the gate in the server matrix (tests/test_servers.py): the gate configured from
``QQGATE_CONFIG`` around a small app that echoes what it received. A module-level ``application``
for servers that import one (mod_wsgi, waitress, werkzeug), ``create()`` for gunicorn."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from qqgate import QQGate
from qqgate.config import config_path, load_settings


def echo(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    """What the app received: identity, client headers, mount and path, and for a POST the body's
    length and SHA-256 (read to the end, as CONTENT_LENGTH says)."""
    identity = environ.get("qqgate.identity")
    seen: dict[str, Any] = {
        "identity": identity.as_json() if identity else None,
        "remote_user": environ.get("REMOTE_USER"),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        "script_name": environ.get("SCRIPT_NAME", ""),
        "path": environ.get("PATH_INFO", ""),
    }
    if environ.get("REQUEST_METHOD") == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        digest, read, stream = hashlib.sha256(), 0, environ["wsgi.input"]
        while read < length:
            chunk = stream.read(min(65536, length - read))
            if not chunk:
                break
            digest.update(chunk)
            read += len(chunk)
        seen["body"] = {"length": read, "sha256": digest.hexdigest()}
    body = json.dumps(seen).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def create() -> QQGate:
    return QQGate(echo, load_settings(config_path()))


application = create()
