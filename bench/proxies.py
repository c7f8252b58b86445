"""The proxies compared in ``bench/http.py --section proxy``, as gunicorn app factories.

Each forwards to ``BENCH_UPSTREAM`` (``http://127.0.0.1:PORT``). The peers (werkzeug's
ProxyMiddleware, WSGIProxy2) come from ``bench/requirements.txt``, installed into the benchmark's
own virtualenv: they are never dependencies of qqgate.
"""

from __future__ import annotations

import os
from collections.abc import Callable


def _upstream() -> str:
    return os.environ["BENCH_UPSTREAM"]


def werkzeug_proxy() -> Callable:
    from werkzeug.middleware.http_proxy import ProxyMiddleware

    def not_proxied(environ: dict, start_response: Callable) -> list[bytes]:
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not proxied\n"]

    # ProxyMiddleware cannot mount "/" (its prefixes get a trailing "/"): the section's requests go
    # to /app/..., which every proxy forwards unchanged.
    return ProxyMiddleware(not_proxied, {"/app/": {"target": _upstream() + "/app/"}})


def wsgiproxy2() -> Callable:
    from wsgiproxy import HostProxy

    return HostProxy(_upstream())
