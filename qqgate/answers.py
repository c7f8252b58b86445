"""The gate's bodiless answers: redirects, and what nginx's ``auth_request`` asks for.

Pages and JSON are WebOb responses (``qqgate.pages``); everything else is an ``Answer``. Its
``Location`` stays as the gate wrote it: a relative path, or an absolute URL from configuration
(QQ's authorize URL). WebOb's responses would make a relative ``Location`` absolute from the
client's ``Host`` header (``Host: evil.example`` gave ``Location: http://evil.example/...``). Every
answer carries a Content-Type, as the WSGI spec's checker (``wsgiref.validate``) requires.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from .wsgiutil import Environ, StartResponse

PLAIN = ("Content-Type", "text/plain; charset=utf-8")


class HasHeaders(Protocol):
    """An answer whose headers can still change: an ``Answer`` or a WebOb response."""

    headerlist: list[tuple[str, str]]


class Answer:
    """A status and headers, no body; cheap to build (``/auth`` answers one per request)."""

    __slots__ = ("headerlist", "status")

    def __init__(self, status: str, headerlist: list[tuple[str, str]]) -> None:
        self.status = status
        self.headerlist = [PLAIN, *headerlist, ("Content-Length", "0")]

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(self.status, self.headerlist)
        return []


def redirect(location: str, *headers: tuple[str, str]) -> Answer:
    """A 302 to ``location`` (a path, or a configured absolute URL); never cached."""
    return Answer("302 Found", [("Location", location), ("Cache-Control", "no-store"), *headers])


def set_header(answer: HasHeaders, name: str, value: str) -> None:
    """Set ``name`` to ``value``, replacing what the answer had under that name."""
    lower = name.lower()
    answer.headerlist[:] = [(k, v) for k, v in answer.headerlist if k.lower() != lower]
    answer.headerlist.append((name, value))
