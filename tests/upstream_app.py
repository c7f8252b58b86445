"""A small upstream app for proxy tests, run under gunicorn: it reports exactly what it received."""

from __future__ import annotations

import hashlib
import json
import os
import time
from urllib.parse import parse_qs

SELF = os.environ.get("UPSTREAM_SELF", "http://127.0.0.1")
MiB = 1024 * 1024


def application(environ, start_response):
    path = environ["PATH_INFO"]
    query = {k: v[0] for k, v in parse_qs(environ.get("QUERY_STRING", "")).items()}
    handler = ROUTES.get(path, echo)
    return handler(environ, start_response, query)


def echo(environ, start_response, query):
    digest, length = hashlib.sha256(), 0
    stream = environ["wsgi.input"]
    while chunk := stream.read(MiB):
        digest.update(chunk)
        length += len(chunk)
    data = {
        "method": environ["REQUEST_METHOD"],
        "raw_uri": environ.get("RAW_URI"),
        "path": environ["PATH_INFO"],
        "query": environ.get("QUERY_STRING", ""),
        "headers": {
            k[5:].replace("_", "-").lower(): v for k, v in environ.items() if k.startswith("HTTP_")
        },
        "body_sha256": digest.hexdigest(),
        "body_length": length,
    }
    body = json.dumps(data).encode()
    start_response(
        "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    )
    return [body]


def set_cookies(environ, start_response, query):
    start_response(
        "200 OK",
        [
            ("Content-Type", "text/plain"),
            ("Set-Cookie", "app_a=1; Path=/"),
            ("Set-Cookie", "app_b=2; Path=/; HttpOnly"),
            ("Set-Cookie", "app_c=3, with comma; Path=/"),
        ],
    )
    return [b"cookies set"]


def redirect(environ, start_response, query):
    start_response("302 Found", [("Location", f"{SELF}/target?x=1"), ("Content-Length", "0")])
    return [b""]


def relative_redirect(environ, start_response, query):
    start_response("303 See Other", [("Location", "/target"), ("Content-Length", "0")])
    return [b""]


def download(environ, start_response, query):
    size = int(query.get("size", MiB))
    start_response(
        "200 OK", [("Content-Type", "application/octet-stream"), ("Content-Length", str(size))]
    )
    block = b"\0" * MiB

    def body():
        left = size
        while left > 0:
            piece = block if left >= MiB else block[:left]
            left -= len(piece)
            yield piece

    return body()


def slow(environ, start_response, query):
    time.sleep(min(float(query.get("seconds", "1")), 10))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"slow"]


def drip(environ, start_response, query):
    """``chunks`` pieces of ``size`` bytes, ``interval`` seconds apart: a long download."""
    chunks, size = int(query.get("chunks", "10")), int(query.get("size", "1024"))
    interval = min(float(query.get("interval", "0.5")), 5)
    start_response(
        "200 OK",
        [("Content-Type", "application/octet-stream"), ("Content-Length", str(chunks * size))],
    )

    def body():
        for n in range(chunks):
            yield bytes([n % 256]) * size
            time.sleep(interval)

    return body()


def events(environ, start_response, query):
    """Server-sent events, ``interval`` seconds apart, each flushed on its own."""
    count, interval = int(query.get("count", "5")), min(float(query.get("interval", "0.5")), 5)
    start_response("200 OK", [("Content-Type", "text/event-stream"), ("Cache-Control", "no-cache")])

    def body():
        for n in range(count):
            yield f"id: {n}\ndata: {time.time()!r}\n\n".encode()
            time.sleep(interval)

    return body()


ROUTES = {
    "/drip": drip,
    "/events": events,
    "/setcookies": set_cookies,
    "/redirect": redirect,
    "/relative-redirect": relative_redirect,
    "/download": download,
    "/slow": slow,
}
