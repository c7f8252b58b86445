"""A sample downstream app that shows what the gate passes on; used by the demo and the tests.

It reads the identity exactly as any downstream app should: from the headers (percent-decoding the
nickname) or, in-process, from ``environ["qqgate.identity"]``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from html import escape
from urllib.parse import unquote

from ..config import load_settings
from ..middleware import QQGate
from ..wsgiutil import Environ, StartResponse

_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Sample app</title>
<style>body{{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem}}
h1{{overflow-wrap:anywhere}}
td{{padding:.2rem .6rem;border-bottom:1px solid #ddd;word-break:break-all}}</style></head>
<body><h1 id="greeting">{greeting}</h1>
<table>{rows}</table>
<p><a href="/_qqgate/logout">Sign out / 退出登录</a></p></body></html>
"""


def sample_app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    """Greets the signed-in user and lists the X-QQ-* headers it received."""
    if environ.get("PATH_INFO") == "/headers.json":
        return _json(environ, start_response)
    openid = environ.get("HTTP_X_QQ_OPENID")
    nickname = unquote(environ.get("HTTP_X_QQ_NICKNAME", ""))
    if openid:
        greeting = f"你好 / Hello, {nickname} ({openid})"
    else:
        greeting = "Hello, anonymous visitor (public page)"
    headers = {k: v for k, v in environ.items() if k.startswith("HTTP_X_QQ") or k == "REMOTE_USER"}
    rows = "".join(
        f"<tr><td>{escape(k)}</td><td>{escape(str(v))}</td></tr>"
        for k, v in sorted(headers.items())
    )
    body = _PAGE.format(greeting=escape(greeting), rows=rows).encode()
    start_response(
        "200 OK", [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))]
    )
    return [body]


def _json(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    identity = environ.get("qqgate.identity")
    data = {
        "path": environ.get("PATH_INFO"),
        "headers": {k: v for k, v in environ.items() if k.startswith("HTTP_")},
        "remote_user": environ.get("REMOTE_USER"),
        "identity": identity.as_json() if identity else None,
    }
    body = json.dumps(data, ensure_ascii=False).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def gated_sample() -> QQGate:
    """Factory for ``gunicorn 'qqgate.dev.sample:gated_sample()'``: the sample app behind the gate,
    configured from ``QQGATE_CONFIG`` (optional) and ``QQGATE_*`` variables."""
    return QQGate(sample_app, load_settings(os.environ.get("QQGATE_CONFIG")))
