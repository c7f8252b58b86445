"""Tests for qqgate.qq: every body shape QQ answers, and the client against a real local socket.

Sample bodies follow QQ Connect's documentation as summarised in shared/qq-connect.md.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, parse_qsl, urlencode, urlsplit

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st

from qqgate import qq
from qqgate.qq import QQClient, QQError, QQProfile, QQUnavailable, parse_body
from qqgate.qqanswers import https_avatar

APP_ID = "101234567"
APP_KEY = "appkeySECRETf5b2c9"
CODE = "authcodeSECRET0a1b"
TOKEN = "FE04TOKENSECRET9C8B"
OPENID = "6A5C3B8F0E1D2C3B4A5968778695A4B3"
REDIRECT = "https://app.example/qq/callback"
SECRETS = (APP_KEY, CODE, TOKEN)

TOKEN_JSON = json.dumps({"access_token": TOKEN, "expires_in": "7776000", "refresh_token": "R1"})
ME_JSONP = f'callback( {{"client_id":"{APP_ID}","openid":"{OPENID}"}} );\n'
USER_INFO = json.dumps(
    {
        "ret": 0,
        "msg": "",
        "nickname": "小明🐧",
        "figureurl_qq_1": "http://thirdqq.qlogo.cn/g?b=oidb&k=1&s=40",
        "figureurl_qq_2": "http://thirdqq.qlogo.cn/g?b=oidb&k=1&s=100",
        "gender": "男",
    },
    ensure_ascii=False,
)


# --- parse_body -----------------------------------------------------------------------------------

ERROR_100019 = '{"error":100019,"error_description":"code to access token error"}'


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(
            f"access_token={TOKEN}&expires_in=7776000&refresh_token=88E4BE14",
            {"access_token": TOKEN, "expires_in": "7776000", "refresh_token": "88E4BE14"},
            id="token-urlencoded",
        ),
        pytest.param(
            TOKEN_JSON,
            {"access_token": TOKEN, "expires_in": "7776000", "refresh_token": "R1"},
            id="token-json",
        ),
        pytest.param(
            ME_JSONP, {"client_id": APP_ID, "openid": OPENID}, id="me-jsonp-without-unionid"
        ),
        pytest.param(
            f'callback({{"client_id":"{APP_ID}","openid":"{OPENID}","unionid":"UID_1"}})',
            {"client_id": APP_ID, "openid": OPENID, "unionid": "UID_1"},
            id="me-jsonp-with-unionid-tight",
        ),
        pytest.param(
            f'{{"client_id":"{APP_ID}","openid":"{OPENID}"}}',
            {"client_id": APP_ID, "openid": OPENID},
            id="me-json",
        ),
        pytest.param('{"ret":0,"nickname":"a"}', {"ret": 0, "nickname": "a"}, id="ret-int-0"),
        pytest.param('{"ret":"0","nickname":"a"}', {"ret": "0", "nickname": "a"}, id="ret-str-0"),
        pytest.param(
            '{"ret":0,"nickname":"小明 \\"🐧\\"\\u0007"}',
            {"ret": 0, "nickname": '小明 "🐧"\x07'},
            id="nickname-chinese-emoji-quotes-control",
        ),
        pytest.param('\ufeff  {"ret": 0}\r\n', {"ret": 0}, id="bom-and-whitespace-around-json"),
        pytest.param(
            "code=0&msg=ok", {"code": "0", "msg": "ok"}, id="urlencoded-code-0-is-not-an-error"
        ),
    ],
)
def test_parse_body_success(body: str, expected: dict[str, object]) -> None:
    assert parse_body(body) == expected
    assert parse_body(body.encode()) == expected


@pytest.mark.parametrize(
    ("body", "code", "description"),
    [
        pytest.param(
            f"callback( {ERROR_100019} );", 100019, "code to access token error", id="jsonp"
        ),
        pytest.param(
            f"callback({ERROR_100019})", 100019, "code to access token error", id="jsonp-tight"
        ),
        pytest.param(
            f"callback( {ERROR_100019} );\n", 100019, "code to access token error", id="jsonp-nl"
        ),
        pytest.param(
            f"  callback (\n\t{ERROR_100019}\n ) ;  \r\n",
            100019,
            "code to access token error",
            id="jsonp-loose-whitespace",
        ),
        pytest.param(
            'callback( {"error":100016,"error_description":"access token check failed"} );',
            100016,
            "access token check failed",
            id="jsonp-me-error",
        ),
        pytest.param(ERROR_100019, 100019, "code to access token error", id="plain-json"),
        pytest.param(
            '{"error":"100020","error_description":"code is reused error"}',
            100020,
            "code is reused error",
            id="json-error-as-string",
        ),
        pytest.param(
            "code=100019&msg=code%20to%20access%20token%20error",
            100019,
            "code to access token error",
            id="urlencoded-code-msg",
        ),
        pytest.param('{"ret":1002,"msg":"请先登录"}', 1002, "请先登录", id="ret-int"),
        pytest.param('{"ret":"1002","msg":"请先登录"}', 1002, "请先登录", id="ret-str"),
        pytest.param('{"ret":-1,"msg":"x"}', -1, "x", id="ret-negative"),
        pytest.param('{"ret":"oops","msg":"x"}', None, "x", id="ret-not-numeric"),
        pytest.param('{"ret":null}', None, "", id="ret-null"),
        pytest.param('{"ret":true}', None, "", id="ret-bool"),
        pytest.param(
            '{"error":"invalid_request"}', None, "invalid_request", id="oauth-string-error"
        ),
    ],
)
def test_parse_body_error_payloads(body: str, code: int | None, description: str) -> None:
    with pytest.raises(QQError) as info:
        parse_body(body.encode(), "token")
    err = info.value
    assert (err.code, err.description, err.endpoint) == (code, description, "token")
    assert "token" in str(err)


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b" \r\n\t", id="whitespace"),
        pytest.param(b"<html><body>502 Bad Gateway</body></html>", id="html"),
        pytest.param(b'<a href="x">moved</a>', id="html-with-equals"),
        pytest.param(b"\xff\xfe{\x00}", id="not-utf8"),
        pytest.param(b"[1, 2]", id="json-array"),
        pytest.param(b"null", id="json-null"),
        pytest.param(b'"access_token"', id="json-string"),
        pytest.param(b"42", id="json-number"),
        pytest.param(b'{"a": NaN}', id="json-nan"),
        pytest.param(b'{"access_token": "x",', id="truncated-json"),
        pytest.param(b"callback( [1] );", id="jsonp-array"),
        pytest.param(b"callback( {bad );", id="jsonp-bad-json"),
        pytest.param(b"callback( {} );;", id="jsonp-double-semicolon"),
        pytest.param(b"callback( {}", id="jsonp-unclosed"),
        pytest.param(b"access_token", id="bare-word"),
        pytest.param(b"a=1&&b=2", id="urlencoded-empty-field"),
        pytest.param(b"a=1&a=2", id="urlencoded-duplicate-key"),
        pytest.param(b"access_token=%ff", id="urlencoded-bad-percent-utf8"),
        pytest.param(b"[" * 100_000, id="deeply-nested"),
        pytest.param("&".join(f"k{i}=v" for i in range(101)).encode(), id="too-many-fields"),
    ],
)
def test_parse_body_unparseable(body: bytes) -> None:
    with pytest.raises(QQError) as info:
        parse_body(body, "me")
    assert info.value.code is None
    assert info.value.endpoint == "me"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
    lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
    max_leaves=20,
)


@given(
    st.binary()
    | st.text()
    | json_values.map(json.dumps)
    | json_values.map(lambda v: f"callback( {json.dumps(v)} );")
    | st.dictionaries(st.text(), st.text()).map(urlencode)
)
def test_parse_body_only_raises_qqerror(body: bytes | str) -> None:
    try:
        result = parse_body(body)
    except QQError:
        return
    assert isinstance(result, dict)


@pytest.mark.parametrize(
    ("code", "restart"),
    [
        pytest.param(100005, True, id="code-missing"),
        pytest.param(100019, True, id="code-to-token-failed"),
        pytest.param(100020, True, id="code-reused"),
        pytest.param(100067, True, id="code-expired"),
        pytest.param(100068, True, id="code-illegal"),
        pytest.param(100016, False, id="token-check-failed"),
        pytest.param(100009, False, id="appkey-invalid"),
        pytest.param(None, False, id="no-code"),
    ],
)
def test_restart_login(code: int | None, restart: bool) -> None:
    assert QQError("x", code=code).restart_login is restart


def test_qqerror_carries_data() -> None:
    err = QQError("short", endpoint="me", code=100016, description="<b>check</b>")
    assert (err.message, err.endpoint, err.code, err.description) == (
        "short",
        "me",
        100016,
        "<b>check</b>",
    )
    assert str(err) == "short"
    unavailable = QQUnavailable("down", endpoint="token", timeout=True)
    assert isinstance(unavailable, QQError)
    assert (unavailable.timeout, unavailable.code, unavailable.restart_login) == (True, None, False)


def test_known_codes_get_a_readable_message() -> None:
    with pytest.raises(QQError) as info:
        parse_body('callback( {"error":100020,"error_description":"code is reused error"} );')
    assert str(info.value) == "QQ returned error 100020: the authorization code was already used"


# --- log redaction --------------------------------------------------------------------------------

TOKEN_URL = (
    f"/oauth2.0/token?grant_type=authorization_code&client_id={APP_ID}"
    f"&client_secret={APP_KEY}&code={CODE}&redirect_uri=https%3A%2F%2Fapp.example%2F&fmt=json"
)


@pytest.mark.parametrize(
    ("msg", "args", "kept"),
    [
        pytest.param(
            '%s://%s:%s "%s %s %s" %s %s',
            ("https", "graph.qq.com", 443, "GET", TOKEN_URL, "HTTP/1.1", 200, None),
            ["grant_type=authorization_code", f"client_id={APP_ID}", "fmt=json", "HTTP/1.1"],
            id="connectionpool-request-line",
        ),
        pytest.param(
            "Incremented Retry for (url='%s'): %r",
            (TOKEN_URL, "Retry(total=0)"),
            ["Retry(total=0)"],
            id="retry-url",
        ),
        pytest.param(
            "GET /oauth2.0/me?access_token=%s&fmt=json",
            (TOKEN,),
            ["fmt=json"],
            id="access-token",
        ),
        pytest.param(
            "GET /oauth2.0/token?grant_type=refresh_token&refresh_token=%s&client_secret=%s",
            ("REFRESHSECRET", APP_KEY),
            ["grant_type=refresh_token"],
            id="refresh-token",
        ),
    ],
)
def test_redaction_filter(msg: str, args: tuple[object, ...], kept: list[str]) -> None:
    record = logging.LogRecord("urllib3.connectionpool", logging.DEBUG, "", 0, msg, args, None)
    assert qq.RedactSecrets().filter(record) is True
    message = record.getMessage()
    for secret in (*SECRETS, "REFRESHSECRET"):
        assert secret not in message
    assert "[redacted]" in message
    for text in kept:
        assert text in message


def test_redaction_leaves_other_records_alone() -> None:
    record = logging.LogRecord("x", logging.DEBUG, "", 0, "Starting new %s (%d)", ("c", 1), None)
    qq.RedactSecrets().filter(record)
    assert (record.msg, record.args) == ("Starting new %s (%d)", ("c", 1))


def test_redaction_is_installed_once() -> None:
    qq._install_redaction()
    filters = logging.getLogger("urllib3.connectionpool").filters
    assert sum(isinstance(f, qq.RedactSecrets) for f in filters) == 1


# --- a QQ on a real local socket ------------------------------------------------------------------

ROUTES = {"token": "/oauth2.0/token", "me": "/oauth2.0/me", "user_info": "/user/get_user_info"}


@dataclass
class Canned:
    body: bytes | str
    status: int = 200
    content_type: str = "text/plain"
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # before the status line
    stall: float = 0.0  # after the headers, before the body


@dataclass
class Seen:
    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class FakeQQ:
    base_url: str = ""
    stop: threading.Event = field(default_factory=threading.Event)
    seen: list[Seen] = field(default_factory=list)
    routes: dict[str, Canned] = field(
        default_factory=lambda: {
            "/oauth2.0/token": Canned(TOKEN_JSON),
            "/oauth2.0/me": Canned(ME_JSONP, content_type="application/javascript"),
            "/user/get_user_info": Canned(USER_INFO, content_type="text/html; charset=utf-8"),
        }
    )

    def answer(self, endpoint: str, body: bytes | str, **kwargs: object) -> None:
        self.routes[ROUTES[endpoint]] = Canned(body, **kwargs)  # type: ignore[arg-type]

    def query(self, endpoint: str) -> dict[str, str]:
        return next(s.query for s in self.seen if s.path == ROUTES[endpoint])


class Handler(BaseHTTPRequestHandler):
    server: ThreadingHTTPServer

    def do_GET(self) -> None:
        fake: FakeQQ = self.server.fake  # type: ignore[attr-defined]
        url = urlsplit(self.path)
        fake.seen.append(Seen(url.path, dict(parse_qsl(url.query)), dict(self.headers)))
        canned = fake.routes.get(url.path, Canned("not found", status=404))
        fake.stop.wait(canned.delay)
        body = canned.body.encode() if isinstance(canned.body, str) else canned.body
        self.send_response(canned.status)
        self.send_header("Content-Type", canned.content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in canned.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.flush()
        fake.stop.wait(canned.stall)
        with contextlib.suppress(OSError):  # the client may have given up first
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def fake_qq(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeQQ]:
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    fake = FakeQQ(base_url=f"http://127.0.0.1:{server.server_address[1]}")
    server.fake = fake  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield fake
    fake.stop.set()  # ends any sleeping handler
    server.shutdown()
    server.server_close()
    thread.join(5)


def make_client(base_url: str, **kwargs: object) -> QQClient:
    options: dict[str, object] = {
        "app_id": APP_ID,
        "app_key": APP_KEY,
        "redirect_uri": REDIRECT,
        "base_url": base_url,
        "timeout": 2.0,
    }
    options.update(kwargs)
    return QQClient(**options)  # type: ignore[arg-type]


@pytest.fixture
def client(fake_qq: FakeQQ) -> Iterator[QQClient]:
    with make_client(fake_qq.base_url) as c:
        yield c


def test_sign_in_sends_the_documented_queries(fake_qq: FakeQQ, client: QQClient) -> None:
    profile = client.sign_in(CODE)
    assert profile == QQProfile(
        openid=OPENID,
        nickname="小明🐧",
        avatar_url="http://thirdqq.qlogo.cn/g?b=oidb&k=1&s=100",
        unionid=None,
    )
    assert [s.path for s in fake_qq.seen] == list(ROUTES.values())
    assert fake_qq.query("token") == {
        "grant_type": "authorization_code",
        "client_id": APP_ID,
        "client_secret": APP_KEY,
        "code": CODE,
        "redirect_uri": REDIRECT,
        "fmt": "json",
    }
    assert fake_qq.query("me") == {"access_token": TOKEN, "fmt": "json"}
    assert fake_qq.query("user_info") == {
        "access_token": TOKEN,
        "oauth_consumer_key": APP_ID,
        "openid": OPENID,
    }


@pytest.mark.parametrize(
    "token_body",
    [
        pytest.param(TOKEN_JSON, id="json"),
        pytest.param(f"access_token={TOKEN}&expires_in=7776000&refresh_token=R", id="urlencoded"),
    ],
)
def test_exchange_code_accepts_both_token_shapes(
    fake_qq: FakeQQ, client: QQClient, token_body: str
) -> None:
    fake_qq.answer("token", token_body)
    assert client.exchange_code(CODE) == TOKEN


@pytest.mark.parametrize(
    ("want", "body", "expected"),
    [
        pytest.param(
            True,
            f'callback( {{"client_id":"{APP_ID}","openid":"{OPENID}","unionid":"UID_9F"}} );',
            "UID_9F",
            id="asked-and-given",
        ),
        pytest.param(True, ME_JSONP, None, id="asked-not-given"),
        pytest.param(
            False,
            f'{{"client_id":"{APP_ID}","openid":"{OPENID}","unionid":"UID_9F"}}',
            None,
            id="not-asked-ignored",
        ),
    ],
)
def test_fetch_openid_unionid(fake_qq: FakeQQ, want: bool, body: str, expected: str | None) -> None:
    fake_qq.answer("me", body)
    with make_client(fake_qq.base_url, want_unionid=want) as client:
        assert client.fetch_openid(TOKEN) == (OPENID, expected)
    assert ("unionid" in fake_qq.query("me")) is want
    if want:
        assert fake_qq.query("me")["unionid"] == "1"


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(f'{{"client_id":"999","openid":"{OPENID}"}}', id="other-app"),
        pytest.param(f'{{"openid":"{OPENID}"}}', id="client-id-missing"),
        pytest.param(f'{{"client_id":null,"openid":"{OPENID}"}}', id="client-id-null"),
        pytest.param(f'{{"client_id":"{APP_ID} ","openid":"{OPENID}"}}', id="client-id-padded"),
        pytest.param(f'{{"client_id":"{APP_ID}"}}', id="openid-missing"),
        pytest.param(f'{{"client_id":"{APP_ID}","openid":""}}', id="openid-empty"),
        pytest.param(f'{{"client_id":"{APP_ID}","openid":"{"A" * 65}"}}', id="openid-too-long"),
        pytest.param(f'{{"client_id":"{APP_ID}","openid":"a b"}}', id="openid-space"),
        pytest.param(f'{{"client_id":"{APP_ID}","openid":"<x>"}}', id="openid-markup"),
        pytest.param(f'{{"client_id":"{APP_ID}","openid":"A\\n"}}', id="openid-newline"),
        pytest.param(f'{{"client_id":"{APP_ID}","openid":123}}', id="openid-number"),
    ],
)
def test_fetch_openid_rejects(fake_qq: FakeQQ, client: QQClient, body: str) -> None:
    fake_qq.answer("me", body)
    with pytest.raises(QQError) as info:
        client.fetch_openid(TOKEN)
    assert info.value.endpoint == "me"


def test_fetch_openid_accepts_numeric_client_id(fake_qq: FakeQQ, client: QQClient) -> None:
    fake_qq.answer("me", f'{{"client_id":{APP_ID},"openid":"{OPENID}"}}')
    assert client.fetch_openid(TOKEN) == (OPENID, None)


def test_bad_unionid_is_rejected(fake_qq: FakeQQ) -> None:
    fake_qq.answer("me", f'{{"client_id":"{APP_ID}","openid":"{OPENID}","unionid":"<x>"}}')
    with make_client(fake_qq.base_url, want_unionid=True) as client, pytest.raises(QQError):
        client.fetch_openid(TOKEN)


@pytest.mark.parametrize(
    ("info", "nickname", "avatar"),
    [
        pytest.param(
            {"ret": 0, "nickname": "n", "figureurl_qq_1": "https://q/40"},
            "n",
            "https://q/40",
            id="qq2-missing",
        ),
        pytest.param(
            {"ret": 0, "nickname": "n", "figureurl_qq_1": "https://q/40", "figureurl_qq_2": ""},
            "n",
            "https://q/40",
            id="qq2-empty",
        ),
        pytest.param({"ret": "0", "nickname": "n"}, "n", "", id="no-avatars"),
        pytest.param(
            {"ret": 0, "figureurl_qq_2": "javascript:alert(1)", "figureurl_qq_1": "http://q/1"},
            "",
            "http://q/1",
            id="non-http-avatar-skipped",
        ),
        pytest.param({"ret": 0, "nickname": None}, "", "", id="nickname-null"),
        pytest.param({"ret": 0, "nickname": 12}, "12", "", id="nickname-number"),
        pytest.param({"ret": 0, "nickname": "龙" * 300}, "龙" * 256, "", id="nickname-capped"),
        pytest.param(
            {"ret": 0, "nickname": "a\ud83db"}, "a\ufffdb", "", id="lone-surrogate-replaced"
        ),
        pytest.param({"ret": 0, "nickname": "\ud83d\udc27"}, "🐧", "", id="escaped-pair-kept"),
    ],
)
def test_sign_in_profile(
    fake_qq: FakeQQ, client: QQClient, info: dict[str, object], nickname: str, avatar: str
) -> None:
    fake_qq.answer("user_info", json.dumps(info), content_type="text/html; charset=utf-8")
    profile = client.sign_in(CODE)
    assert (profile.nickname, profile.avatar_url) == (nickname, avatar)


@pytest.mark.parametrize(
    ("endpoint", "body", "code"),
    [
        pytest.param("token", f"callback( {ERROR_100019} );\n", 100019, id="token-jsonp-error"),
        pytest.param("token", "code=100020&msg=code%20is%20reused", 100020, id="token-code-msg"),
        pytest.param("token", "expires_in=7776000", None, id="token-missing"),
        pytest.param("token", '{"access_token":""}', None, id="token-empty"),
        pytest.param("token", '{"access_token":7}', None, id="token-not-a-string"),
        pytest.param(
            "me",
            'callback( {"error":100016,"error_description":"access token check failed"} );',
            100016,
            id="me-error",
        ),
        pytest.param("user_info", '{"ret":1002,"msg":"请先登录"}', 1002, id="user-info-ret"),
        pytest.param("user_info", "<html>maintenance</html>", None, id="user-info-html"),
    ],
)
def test_sign_in_errors(
    fake_qq: FakeQQ, client: QQClient, endpoint: str, body: str, code: int | None
) -> None:
    fake_qq.answer(endpoint, body)
    with pytest.raises(QQError) as info:
        client.sign_in(CODE)
    assert (info.value.endpoint, info.value.code) == (endpoint, code)
    assert not isinstance(info.value, QQUnavailable)


def test_empty_code_is_refused_without_asking_qq(fake_qq: FakeQQ, client: QQClient) -> None:
    with pytest.raises(QQError) as info:
        client.exchange_code("")
    assert info.value.restart_login
    assert fake_qq.seen == []


@pytest.mark.parametrize(
    ("status", "body", "code", "in_message"),
    [
        pytest.param(500, "<html>oops</html>", None, "HTTP 500", id="500-html"),
        pytest.param(502, "", None, "HTTP 502", id="502-empty"),
        pytest.param(400, f"callback( {ERROR_100019} );", 100019, "100019", id="400-qq-error"),
        pytest.param(503, '{"access_token":"x"}', None, "HTTP 503", id="503-looks-fine"),
        pytest.param(302, "", None, "HTTP 302", id="redirect-not-followed"),
    ],
)
def test_http_status(
    fake_qq: FakeQQ, client: QQClient, status: int, body: str, code: int | None, in_message: str
) -> None:
    fake_qq.answer("token", body, status=status, headers={"Location": "/oauth2.0/me"})
    with pytest.raises(QQError) as info:
        client.exchange_code(CODE)
    assert info.value.code == code
    assert in_message in str(info.value)
    assert len(fake_qq.seen) == 1


def test_body_over_one_mib_is_refused(fake_qq: FakeQQ, client: QQClient) -> None:
    fake_qq.answer("token", b" " * qq.MAX_BODY + b"{}")
    with pytest.raises(QQError, match="1 MiB"):
        client.exchange_code(CODE)


@pytest.mark.parametrize(
    "canned",
    [
        pytest.param({"delay": 3.0}, id="no-status-line"),
        pytest.param({"stall": 3.0}, id="headers-then-silence"),
    ],
)
def test_timeout(fake_qq: FakeQQ, canned: dict[str, float]) -> None:
    fake_qq.answer("token", TOKEN_JSON, **canned)
    started = time.monotonic()
    with make_client(fake_qq.base_url, timeout=0.3) as client, pytest.raises(QQUnavailable) as info:
        client.exchange_code(CODE)
    assert time.monotonic() - started < 2.0
    assert (info.value.timeout, info.value.endpoint) == (True, "token")


@pytest.fixture
def closed_port() -> Iterator[int]:
    # Bound but not listening: connecting is refused, and nobody else can take the port meanwhile.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


def test_refused_connection(closed_port: int) -> None:
    client = make_client(f"http://127.0.0.1:{closed_port}")
    with pytest.raises(QQUnavailable) as info:
        client.exchange_code(CODE)
    assert (info.value.timeout, info.value.endpoint) == (False, "token")


def assert_no_secrets(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text


@pytest.mark.parametrize(
    ("call", "canned", "logged"),
    [
        pytest.param("refused", {}, False, id="refused"),
        pytest.param("token", {"delay": 3.0}, False, id="token-timeout"),
        pytest.param("token", {"body": "<html>", "status": 500}, True, id="token-500"),
        pytest.param("token", {"body": f"callback( {ERROR_100019} );"}, True, id="token-error"),
        pytest.param("me", {"stall": 3.0}, True, id="me-body-timeout"),
        pytest.param("user_info", {"body": '{"ret":"1002"}'}, True, id="user-info-error"),
    ],
)
def test_no_secret_in_errors_or_logs(
    fake_qq: FakeQQ,
    closed_port: int,
    caplog: pytest.LogCaptureFixture,
    call: str,
    canned: dict[str, object],
    logged: bool,
) -> None:
    caplog.set_level(logging.DEBUG, logger="urllib3")
    base_url = f"http://127.0.0.1:{closed_port}" if call == "refused" else fake_qq.base_url
    if call != "refused":
        fake_qq.answer(call, **{"body": TOKEN_JSON, **canned})  # type: ignore[arg-type]
    with make_client(base_url, timeout=0.3) as client, pytest.raises(QQError) as info:
        client.sign_in(CODE)
    err = info.value
    assert err.__cause__ is None and err.__context__ is None
    assert_no_secrets(f"{err} {err!r} {err.description} {''.join(traceback.format_exception(err))}")
    assert_no_secrets(caplog.text)
    assert_no_secrets(repr(client))
    if logged:  # urllib3 did log the token request line, with its secrets blanked
        assert any("/oauth2.0/token?" in r.getMessage() for r in caplog.records)
        assert "[redacted]" in caplog.text


def test_qq_cookies_never_carry_over(fake_qq: FakeQQ) -> None:
    session = requests.Session()
    session.cookies.set("leftover", "from-someone-else", domain="127.0.0.1")
    fake_qq.answer("token", TOKEN_JSON, headers={"Set-Cookie": "uin=o123; Path=/"})
    with make_client(fake_qq.base_url, session=session) as client:
        client.sign_in(CODE)
        client.sign_in(CODE)
    assert all("Cookie" not in s.headers for s in fake_qq.seen)
    assert len(session.cookies) == 0


class RecordingSession(requests.Session):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[dict[str, object]] = []
        self.closed = False

    def request(self, method: str, url: str, **kwargs: object) -> requests.Response:  # type: ignore[override]
        self.calls.append(kwargs)
        return super().request(method, url, **kwargs)  # type: ignore[arg-type]

    def close(self) -> None:
        self.closed = True
        super().close()


def test_every_call_is_bounded_and_not_redirected(fake_qq: FakeQQ) -> None:
    session = RecordingSession()
    client = make_client(fake_qq.base_url, session=session, timeout=1.5)
    client.sign_in(CODE)
    assert len(session.calls) == 3
    timeouts = [kwargs["timeout"] for kwargs in session.calls]
    # one deadline for the three: each call gets what is left of it
    assert 0 < timeouts[2] <= timeouts[1] <= timeouts[0] <= 1.5, timeouts
    for kwargs in session.calls:
        assert kwargs["allow_redirects"] is False
        assert kwargs["stream"] is True
        assert "verify" not in kwargs
    client.close()
    assert not session.closed  # the caller's session is the caller's to close


def test_owned_session_is_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_client("https://graph.qq.com")
    assert client.session.verify is True
    closed: list[bool] = []
    monkeypatch.setattr(client.session, "close", lambda: closed.append(True))
    client.close()
    assert closed == [True]


def test_session_without_tls_verification_is_refused() -> None:
    session = requests.Session()
    session.verify = False
    with pytest.raises(ValueError, match="TLS"):
        make_client("https://graph.qq.com", session=session)


@pytest.mark.parametrize(
    ("kwargs", "extra"),
    [
        pytest.param({}, {}, id="default"),
        pytest.param({"mobile": True}, {"display": ["mobile"]}, id="mobile"),
        pytest.param(
            {"scope": "get_user_info,get_vip_info"},
            {"scope": ["get_user_info,get_vip_info"]},
            id="scope",
        ),
    ],
)
def test_authorize_url(kwargs: dict[str, object], extra: dict[str, list[str]]) -> None:
    client = make_client("https://graph.qq.com/")
    url = urlsplit(client.authorize_url("st&te=1", **kwargs))  # type: ignore[arg-type]
    assert (url.scheme, url.netloc, url.path) == ("https", "graph.qq.com", "/oauth2.0/authorize")
    expected = {
        "response_type": ["code"],
        "client_id": [APP_ID],
        "redirect_uri": [REDIRECT],
        "state": ["st&te=1"],
        "scope": ["get_user_info"],
    }
    assert parse_qs(url.query) == {**expected, **extra}
    assert APP_KEY not in url.query


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "http://thirdqq.qlogo.cn/g?b=oidb&k=x&s=100",
            "https://thirdqq.qlogo.cn/g?b=oidb&k=x&s=100",
        ),
        ("http://q.qlogo.cn/qqapp/101/ABC/100", "https://q.qlogo.cn/qqapp/101/ABC/100"),
        ("http://qzapp.qlogo.cn/qzapp/101/ABC/50", "https://qzapp.qlogo.cn/qzapp/101/ABC/50"),
        ("HTTP://Q.QLOGO.CN/a", "https://Q.QLOGO.CN/a"),
        ("http://qlogo.cn", "https://qlogo.cn"),
        ("https://q.qlogo.cn/a", "https://q.qlogo.cn/a"),
        # not QQ's hosts: left alone
        ("http://evil.example/?x=http://q.qlogo.cn/", "http://evil.example/?x=http://q.qlogo.cn/"),
        ("http://q.qlogo.cn.evil.example/a", "http://q.qlogo.cn.evil.example/a"),
        ("http://q.qlogo.cn@evil.example/a", "http://q.qlogo.cn@evil.example/a"),
        ("http://evilqlogo.cn/a", "http://evilqlogo.cn/a"),
        ("http://q.qlogo.cn:8080/a", "http://q.qlogo.cn:8080/a"),
        ("", ""),
    ],
)
def test_https_avatar_only_for_qqs_hosts(url: str, expected: str) -> None:
    assert https_avatar(url) == expected
