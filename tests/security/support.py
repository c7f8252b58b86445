"""Helpers for the adversarial suite (the gate itself comes from ``tests.rig``): browser-like
checks of a Location header, the open-redirect corpora, a canned graph.qq.com for the real
``QQClient``, and raw HTTP/1.1 over a socket.

Nothing here decides what is safe: each test states that. These helpers only make the attacks easy
to write down and the outcomes easy to read.
"""

from __future__ import annotations

import io
import json
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter

from ..conftest import APP_ID
from ..rig import HOST, HTML_ACCEPT, OPENID, SITE

HERE = f"{SITE}/here"
# Every environ key that carries an identity to the app, for the default header names.
IDENTITY_KEYS = (
    "HTTP_X_QQ_OPENID",
    "HTTP_X_QQ_NICKNAME",
    "HTTP_X_QQ_UNIONID",
    "HTTP_REMOTE_USER",
    "REMOTE_USER",
)
DATA = Path(__file__).resolve().parent.parent / "data"


# --- where a browser goes ---------------------------------------------------------------------------

_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))


def whatwg_prepare(url: str) -> str:
    """What the WHATWG URL parser does to an http(s) URL before parsing it: strip leading and
    trailing C0 controls and spaces, remove every tab, CR and LF, and read ``\\`` as ``/``."""
    url = url.strip(_C0_OR_SPACE)
    url = re.sub("[\t\r\n]", "", url)
    return url.replace("\\", "/")


def offsite(location: str) -> str | None:
    """None if ``location``, resolved against HERE by ``urljoin`` and by a WHATWG-like reading,
    stays on https://app.example.com; else a sentence saying where it goes."""
    if any(ch in location for ch in "\r\n\x00"):
        return f"Location {location!r} has CR, LF or NUL"
    for parser, candidate in (("urljoin", location), ("whatwg", whatwg_prepare(location))):
        parts = urlsplit(urljoin(HERE, candidate))
        if parts.scheme != "https" or parts.netloc.lower() not in (HOST, f"{HOST}:443"):
            return f"{parser} resolves Location {location!r} to {parts.scheme}://{parts.netloc}"
    return None


# --- the corpora -----------------------------------------------------------------------------------

_ESCAPE = re.compile(r"\\(?:x([0-9A-Fa-f]{2})|u([0-9A-Fa-f]{4})|([trn\\])|(.?))")
_SIMPLE = {"t": "\t", "r": "\r", "n": "\n", "\\": "\\"}
CORPORA = (
    ("oauth2-proxy", "openredirects-oauth2-proxy.txt", False),
    ("mod_auth_openidc", "openredirects-mod_auth_openidc.txt", False),
    ("qqgate", "openredirects-qqgate.txt", True),
)


def _unescape(line: str) -> str:
    def replace(match: re.Match[str]) -> str:
        hex2, hex4, simple, other = match.groups()
        if hex2 or hex4:
            return chr(int(hex2 or hex4, 16))
        if simple:
            return _SIMPLE[simple]
        raise ValueError(f"unknown escape \\{other} in {line!r}")

    return _ESCAPE.sub(replace, line)


def read_corpus(filename: str, escapes: bool) -> list[tuple[int, str]]:
    """(line number, payload) for each payload line of ``tests/data/filename``."""
    text = (DATA / filename).read_text(encoding="utf-8")
    rows = []
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line == "#" or line.startswith("# "):
            continue
        rows.append((number, _unescape(line) if escapes else line))
    return rows


def readable_id(text: str, limit: int = 48) -> str:
    return re.sub(r"[^A-Za-z0-9._%@/+=,~-]", "_", ascii(text)[1:-1])[:limit]


def corpus_params() -> list:
    """Every distinct payload of the three corpora, as pytest params (first occurrence named)."""
    seen: set[str] = set()
    params = []
    for source, filename, escapes in CORPORA:
        for number, payload in read_corpus(filename, escapes):
            if payload in seen:
                continue
            seen.add(payload)
            params.append(pytest.param(payload, id=f"{source}:{number}:{readable_id(payload)}"))
    return params


# --- a canned graph.qq.com for the real QQClient ------------------------------------------------


@dataclass
class CannedQQ(BaseAdapter):
    """A requests transport adapter answering QQ's three API calls with fixed raw bodies, so the
    real ``QQClient`` parses exactly the bytes a test chooses. No socket is opened."""

    bodies: dict[str, bytes]
    seen: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(self, request, **kwargs) -> requests.Response:
        path = urlsplit(request.url).path
        self.seen.append(path)
        response = requests.Response()
        response.status_code = 200
        response.raw = io.BytesIO(self.bodies[path])
        response.url = request.url
        response.request = request
        return response

    def close(self) -> None:
        pass


def canned_session(user_info: bytes, openid: str = OPENID) -> requests.Session:
    me = json.dumps({"client_id": APP_ID, "openid": openid})
    session = requests.Session()
    session.mount(
        "https://graph.qq.com/",
        CannedQQ(
            {
                "/oauth2.0/token": b'{"access_token":"CANNEDTOKEN","expires_in":7776000}',
                "/oauth2.0/me": f"callback( {me} );\n".encode(),
                "/user/get_user_info": user_info,
            }
        ),
    )
    return session


# --- raw HTTP/1.1 ----------------------------------------------------------------------------------


@dataclass
class RawResponse:
    status: int  # 0 when the server closed the connection without answering
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


def raw_http(port: int, head: bytes, timeout: float = 10.0) -> RawResponse:
    """Send ``head`` (request line and header lines, each ending in CRLF, without the blank line)
    as written, with ``Connection: close``, and read the answer to the end."""
    request = head + b"Connection: close\r\n\r\n"
    chunks = []
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        while True:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            chunks.append(chunk)
    return parse_raw_response(b"".join(chunks))


def parse_raw_response(data: bytes) -> RawResponse:
    if not data:
        return RawResponse(0, [], b"")
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = [
        tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if ":" in line
    ]
    response = RawResponse(status, headers, body)  # type: ignore[arg-type]
    if (response.header("Transfer-Encoding") or "").lower() == "chunked":
        response.body = _dechunk(body)
    return response


def _dechunk(body: bytes) -> bytes:
    out = bytearray()
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2 :]
    return bytes(out)


def get_head(target: bytes, *header_lines: bytes, host: bytes = b"127.0.0.1") -> bytes:
    """``GET target HTTP/1.1`` with Host, a browser Accept and ``header_lines`` (each with CRLF)."""
    lines = [b"GET " + target + b" HTTP/1.1\r\n", b"Host: " + host + b"\r\n"]
    lines.append(b"Accept: " + HTML_ACCEPT.encode() + b"\r\n")
    return b"".join(lines) + b"".join(header_lines)
