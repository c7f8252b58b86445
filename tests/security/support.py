"""Helpers for the adversarial suite: an in-process gate with a stub QQ, environs built the way a
server builds them, browser-like checks of a Location header, the open-redirect corpora, a canned
graph.qq.com for the real ``QQClient``, and raw HTTP/1.1 over a socket.

Nothing here decides what is safe: each test states that. These helpers only make the attacks easy
to write down and the outcomes easy to read.
"""

from __future__ import annotations

import io
import json
import re
import secrets
import socket
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
import requests
from requests.adapters import BaseAdapter
from webob import Request, Response

from qqgate import QQGate
from qqgate.qq import QQError, QQProfile
from qqgate.session import Identity

from ..conftest import APP_ID, FakeClock, make_settings

SITE = "https://app.example.com"
HOST = "app.example.com"
HERE = f"{SITE}/here"
OPENID = "0123456789ABCDEF0123456789ABCDEF"
NICKNAME = "小明🐧"
AVATAR = "https://q.qlogo.cn/qqapp/101000001/0123/100"
DOWNSTREAM_MARKER = "DOWNSTREAM-APP-WAS-CALLED"
HTML_ACCEPT = "text/html,application/xhtml+xml"
# Every environ key that carries an identity to the app, for the default header names.
IDENTITY_KEYS = (
    "HTTP_X_QQ_OPENID",
    "HTTP_X_QQ_NICKNAME",
    "HTTP_X_QQ_UNIONID",
    "HTTP_REMOTE_USER",
    "REMOTE_USER",
)
DATA = Path(__file__).resolve().parent.parent / "data"


# --- the gate in-process --------------------------------------------------------------------------


class StubQQ:
    """Stands in for ``QQClient`` and behaves like QQ about codes: it only redeems codes it issued,
    each once. Every code the gate sends it is recorded, accepted or not."""

    def __init__(self, profile: QQProfile | None = None) -> None:
        self.profile = profile or QQProfile(OPENID, NICKNAME, AVATAR, "UID_STUB")
        self.issued: set[str] = set()
        self.redeemed: list[str] = []

    def authorize_url(
        self, state: str, *, scope: str = "get_user_info", mobile: bool = False
    ) -> str:
        query = urlencode({"client_id": APP_ID, "state": state, "scope": scope})
        return f"https://graph.qq.com/oauth2.0/authorize?{query}"

    def issue_code(self) -> str:
        code = secrets.token_hex(16).upper()
        self.issued.add(code)
        return code

    def sign_in(self, code: str) -> QQProfile:
        self.redeemed.append(code)
        if code not in self.issued:
            raise QQError("code rejected", endpoint="token", code=100019)
        self.issued.discard(code)
        return self.profile


class Downstream:
    """The wrapped app: records what it was called with and echoes it as JSON."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def __call__(self, environ: dict, start_response):
        identity = environ.get("qqgate.identity")
        seen: dict[str, object] = {
            k: v for k, v in environ.items() if k.startswith("HTTP_") or k == "REMOTE_USER"
        }
        seen["PATH_INFO"] = environ.get("PATH_INFO")
        seen["qqgate.identity"] = identity.as_json() if identity else None
        self.calls.append(seen)
        body = (DOWNSTREAM_MARKER + json.dumps(seen, ensure_ascii=True)).encode()
        start_response(
            "200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))]
        )
        return [body]


@dataclass
class Rig:
    """One gate with its stub QQ, downstream app and clock."""

    gate: QQGate
    qq: StubQQ
    app: Downstream
    clock: FakeClock

    def call(self, request: Request) -> Response:
        return call(self.gate, request)

    def login(self, query: str = "next=%2Fafter", cookie: str | None = None) -> tuple[str, str]:
        """Start a sign-in; return (state, pending-login cookie value)."""
        response = self.call(blank("/_qqgate/login", query, cookie=cookie))
        assert response.status_int == 302, response.status
        state = parse_qs(urlsplit(response.location).query)["state"][0]
        return state, set_cookie_value(response, "qqgate_state")

    def session_for(self, identity_fields: dict[str, object] | None = None) -> str:
        fields = {
            "openid": OPENID,
            "nickname": NICKNAME,
            "avatar_url": AVATAR,
            "unionid": "UID_STUB",
            "signed_in_at": int(self.clock()),
            **(identity_fields or {}),
        }
        return self.gate.sessions.codec.dumps(Identity(**fields))


def make_rig(qq: StubQQ | None = None, **overrides: str) -> Rig:
    clock = FakeClock()
    qq = qq or StubQQ()
    app = Downstream()
    gate = QQGate(app, make_settings(**overrides), qq_client=qq, clock=clock)
    return Rig(gate, qq, app, clock)


def blank(
    path: str = "/",
    query: str = "",
    *,
    cookie: str | None = None,
    headers: dict[str, str] | None = None,
    environ: dict[str, object] | None = None,
    method: str = "GET",
) -> Request:
    """A request as a server hands it to WSGI: ``path`` is PATH_INFO exactly as given (already
    percent-decoded once, latin-1), ``query`` is QUERY_STRING exactly as given. Built by hand
    because test clients fold a path starting with ``//`` into a host name."""
    request = Request.blank("/", base_url=SITE)
    env = request.environ
    env.update(
        REQUEST_METHOD=method,
        PATH_INFO=path,
        QUERY_STRING=query,
        HTTP_HOST=HOST,
        HTTP_ACCEPT=HTML_ACCEPT,
        REMOTE_ADDR="192.0.2.7",
    )
    if cookie is not None:
        env["HTTP_COOKIE"] = cookie
    for name, value in (headers or {}).items():
        env[environ_key(name)] = value
    env.update(environ or {})
    return request


def environ_key(header: str) -> str:
    """The environ key a server makes of a header name (wsgiref, and gunicorn's "dangerous" map)."""
    return "HTTP_" + header.upper().replace("-", "_")


def call(app, request: Request) -> Response:
    """The app's response; an exception escaping the app counts as the 500 a server would send."""
    try:
        return request.get_response(app)
    except Exception as exc:  # the point: record it as a 5xx, with the reason, and go on
        return Response(f"{type(exc).__name__}: {exc}", status=500, content_type="text/plain")


def set_cookies(response: Response) -> dict[str, str]:
    """Set-Cookie headers by cookie name."""
    return {h.split("=", 1)[0]: h for h in response.headers.getall("Set-Cookie")}


def set_cookie_value(response: Response, name: str) -> str:
    return set_cookies(response)[name].split(";", 1)[0].split("=", 1)[1]


def sets_session(response: Response) -> bool:
    """Whether the response sets a non-empty session cookie."""
    header = set_cookies(response).get("qqgate", "")
    return bool(header) and not header.startswith("qqgate=;")


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
