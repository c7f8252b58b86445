"""The proxy's HTTP/1.1 client (qqgate.upstream.http1) against scripted answers on a socket pair: framing,
connection reuse, and every answer it must refuse rather than pass on."""

from __future__ import annotations

import io
import socket
import threading

import httptools
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qqgate.upstream import http1


@pytest.fixture
def pair():
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    theirs.settimeout(5)
    yield http1.Connection(ours), theirs
    ours.close()
    theirs.close()


def answer(pair, raw: bytes, method: str = "GET", close: bool = False) -> http1.Response:
    connection, upstream = pair
    upstream.sendall(raw)
    if close:
        upstream.shutdown(socket.SHUT_WR)
    return connection.response(method)


def read_all(response: http1.Response) -> bytes:
    return b"".join(response.body(size=7))  # small reads cross every chunk boundary


# --- answers passed on ----------------------------------------------------------------------


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    b"5;name=value\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: dropped\r\n\r\n"
)


@pytest.mark.parametrize(
    ("raw", "method", "close", "body", "reusable"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            "GET",
            False,
            b"hello",
            True,
            id="content-length",
        ),
        pytest.param(CHUNKED, "GET", False, b"hello world", True, id="chunked-ext-and-trailer"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the end",
            "GET",
            True,
            b"to the end",
            False,
            id="until-close-never-reused",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
            "HEAD",
            False,
            b"",
            True,
            id="head-has-no-body",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "HEAD",
            False,
            b"",
            False,
            id="bytes-after-a-head-answer-never-reused",
        ),
        pytest.param(b"HTTP/1.1 204 No Content\r\n\r\n", "GET", False, b"", True, id="204"),
        pytest.param(
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n",
            "GET",
            False,
            b"",
            True,
            id="304-length-is-not-a-body",
        ),
        pytest.param(
            b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n"
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "POST",
            False,
            b"ok",
            True,
            id="interim-answers-skipped",
        ),
        pytest.param(
            b"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok",
            "GET",
            False,
            b"ok",
            False,
            id="http10-closes-by-default",
        ),
        pytest.param(
            b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 2\r\n\r\nok",
            "GET",
            False,
            b"ok",
            True,
            id="http10-keep-alive",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok",
            "GET",
            False,
            b"ok",
            False,
            id="connection-close",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n",
            "GET",
            False,
            b"ok",
            False,
            id="bytes-after-the-body-never-reused",
        ),
    ],
)
def test_framing(pair, raw, method, close, body, reusable) -> None:
    response = answer(pair, raw, method, close)
    assert read_all(response) == body
    assert response.complete
    assert response.reusable is reusable


def test_status_reason_and_fields_are_kept_in_order() -> None:
    ours, theirs = socket.socketpair()
    theirs.sendall(
        b"HTTP/1.1 404 Not Here\r\nSet-Cookie: a=1\r\nX-Long:  first \t \r\n"
        b"Set-Cookie: b=2, c\r\nX-Empty:\r\nContent-Length: 0\r\n\r\n"
    )
    response = http1.Connection(ours).response("GET")
    assert (response.status, response.reason) == (404, "Not Here")
    assert response.fields == [
        ("Set-Cookie", "a=1"),
        ("X-Long", "first"),  # without the whitespace around it (RFC 9110, 5.5)
        ("Set-Cookie", "b=2, c"),
        ("X-Empty", ""),
        ("Content-Length", "0"),
    ]
    ours.close()
    theirs.close()


def test_small_answer_arrives_whole_with_its_head(pair) -> None:
    response = answer(pair, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
    assert response.buffered_body() == b"hello"
    assert response.reusable


def test_large_answer_is_streamed_not_buffered(pair) -> None:
    connection, upstream = pair
    body = bytes(range(256)) * 4096  # 1 MiB
    sender = threading.Thread(
        target=upstream.sendall,
        args=(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body),),
    )
    sender.start()
    response = connection.response("GET")
    assert response.buffered_body() is None
    chunks = list(response.body(size=64 * 1024))
    sender.join()
    assert b"".join(chunks) == body
    assert max(map(len, chunks)) <= 64 * 1024
    assert response.reusable


def test_two_exchanges_on_one_connection(pair) -> None:
    connection, upstream = pair
    for text in (b"one", b"two"):
        connection.send(http1.request_head("GET", "/", {"Host": "app"}))
        upstream.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n" + text)
        response = connection.response("GET")
        assert read_all(response) == text and response.reusable
        assert connection.idle_and_open()
    upstream.shutdown(socket.SHUT_WR)  # the upstream closes the idle connection
    assert not connection.idle_and_open()


# --- answers refused --------------------------------------------------------------------------


OK = b"HTTP/1.1 200 OK\r\n"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(OK + b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", id="te+cl"),
        pytest.param(OK + b"Transfer-Encoding: gzip, chunked\r\n\r\n", id="te-gzip"),
        pytest.param(OK + b"Transfer-Encoding: identity\r\n\r\n", id="te-identity"),
        pytest.param(OK + b"Content-Length: 5\r\nContent-Length: 6\r\n\r\n", id="cl-differ"),
        pytest.param(OK + b"Content-Length: 5, 6\r\n\r\n", id="cl-list-differ"),
        pytest.param(OK + b"Content-Length: +5\r\n\r\n", id="cl-plus"),
        pytest.param(OK + b"Content-Length: 0x5\r\n\r\n", id="cl-hex"),
        pytest.param(OK + b"Content-Length: \xb2\r\n\r\n", id="cl-superscript-two"),
        pytest.param(OK + b"Content-Length: -1\r\n\r\n", id="cl-negative"),
        pytest.param(OK + b"Content-Length: 99999999999999999999\r\n\r\n", id="cl-huge"),
        pytest.param(OK + b"Foo : bar\r\n\r\n", id="space-before-colon"),
        pytest.param(OK + b"no colon here\r\n\r\n", id="no-colon"),
        pytest.param(OK + b"X-A: 1\rX-Injected: 2\r\n\r\n", id="bare-cr-inside"),
        pytest.param(OK + b"X-A: one\x00two\r\n\r\n", id="nul-in-value"),
        pytest.param(OK + b"X-A: 1\r\n \x01\r\n\r\n", id="control-in-fold"),
        pytest.param(b"ICY 200 OK\r\n\r\n", id="not-http"),
        pytest.param(b"HTTP/2 200\r\n\r\n", id="http2-status-line"),
        pytest.param(b"HTTP/1.1 20 OK\r\n\r\n", id="two-digit-status"),
        pytest.param(b"HTTP/1.1 200 OK\x00\r\n\r\n", id="nul-in-reason"),
        pytest.param(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\n\r\n", id="101"),
        pytest.param(b"HTTP/1.1 100 Continue\r\n\r\n" * 20, id="endless-interim"),
        pytest.param(OK + b"X-Big: " + b"a" * 70000 + b"\r\n\r\n", id="head-over-64k"),
        pytest.param(OK + b"X-A: 1\r\n" * 101 + b"\r\n", id="over-100-fields"),
        # Issue 10, item 6: lists and repeats of one length were passed on as written, and
        # gunicorn then failed on them with a 500.
        pytest.param(OK + b"Content-Length: 2, 2\r\n\r\nok", id="cl-list-equal"),
        pytest.param(OK + b"Content-Length: 2\r\nContent-Length: 2\r\n\r\nok", id="cl-twice"),
        pytest.param(OK + b"Content-Length: ,2\r\n\r\nok", id="cl-leading-comma"),
        pytest.param(OK + b"Content-Length: \r\n\r\nok", id="cl-empty"),
        pytest.param(OK + b"Content-Length: 2 2\r\n\r\nok", id="cl-inner-space"),
        # llhttp is strict: a bare LF ends no line, obs-fold is refused, not unfolded.
        pytest.param(b"HTTP/1.1 200 OK\nContent-Length: 2\n\nok", id="bare-lf-line-ends"),
        pytest.param(OK + b"X-A: 1\r\n 2\r\nContent-Length: 0\r\n\r\n", id="obs-fold"),
        pytest.param(OK + b"X-A: a\x7fb\r\n\r\n", id="del-in-value"),
        pytest.param(OK + b"Transfer-Encoding: chunked, chunked\r\n\r\n", id="te-chunked-twice"),
        pytest.param(
            OK + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            id="te-two-fields",
        ),
        pytest.param(OK + b"Transfer-Encoding: chunked, gzip\r\n\r\nabc", id="te-not-last"),
        pytest.param(OK + b"Transfer-Encoding: xchunked\r\n\r\nabc", id="te-xchunked"),
        pytest.param(b"HTTP/0.9 200 OK\r\n\r\n", id="http09"),
        pytest.param(b"HTTP/1.2 200 OK\r\nContent-Length: 0\r\n\r\n", id="http12"),
    ],
)
def test_unframeable_answers_are_refused(pair, raw) -> None:
    with pytest.raises(http1.BadResponse):
        answer(pair, raw)


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        pytest.param(
            OK + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n", http1.BadResponse, id="chunk-size"
        ),
        pytest.param(
            OK + b"Transfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
            http1.BadResponse,
            id="chunk-longer-than-its-size",
        ),
        pytest.param(
            OK + b"Transfer-Encoding: chunked\r\n\r\n5\r\nab", http1.IncompleteBody, id="cut-chunk"
        ),
        pytest.param(
            OK + b"Transfer-Encoding: chunked\r\n\r\n", http1.IncompleteBody, id="cut-before-chunk"
        ),
        pytest.param(OK + b"Content-Length: 10\r\n\r\nabc", http1.IncompleteBody, id="cut-sized"),
        pytest.param(
            OK + b"Transfer-Encoding: chunked\r\n\r\n0\r\n" + b"X-T: 1\r\n" * 101 + b"\r\n",
            http1.BadResponse,
            id="endless-trailers",
        ),
    ],
)
def test_broken_bodies_raise_and_are_never_reused(pair, raw, error) -> None:
    # A fault that arrives with the head is found before the answer starts (the proxy then gives
    # its 502 page); one that arrives later ends the body with the error.
    response = None
    with pytest.raises(error):
        response = answer(pair, raw, close=True)
        read_all(response)
    assert response is None or not response.reusable


def test_close_before_any_answer_is_upstream_closed(pair) -> None:
    # The proxy retries a bodiless GET once on this error: an idle connection the upstream closed.
    with pytest.raises(http1.UpstreamClosed):
        answer(pair, b"", close=True)


def test_close_inside_the_head_is_a_bad_answer(pair) -> None:
    with pytest.raises(http1.BadResponse):
        answer(pair, b"HTTP/1.1 200 OK\r\nContent-Le", close=True)


# --- requests ---------------------------------------------------------------------------------


def test_request_head_is_one_block() -> None:
    head = http1.request_head("GET", "/a%20b?x=1", {"Host": "app", "X-QQ-Nickname": "%E5%B0%8F"})
    assert head == b"GET /a%20b?x=1 HTTP/1.1\r\nHost: app\r\nX-QQ-Nickname: %E5%B0%8F\r\n\r\n"


@pytest.mark.parametrize(
    ("method", "target", "headers"),
    [
        pytest.param("GET /x HTTP/1.1\r\nX:", "/", {}, id="method-with-spaces"),
        pytest.param("", "/", {}, id="empty-method"),
        pytest.param("GET", "/a b", {}, id="space-in-target"),
        pytest.param("GET", "/a\r\nX-Injected: 1", {}, id="crlf-in-target"),
        pytest.param("GET", "", {}, id="empty-target"),
        pytest.param("GET", "/\x00", {}, id="nul-in-target"),
        pytest.param("GET", "/", {"X-A": "1\r\nX-Injected: 2"}, id="crlf-in-value"),
        pytest.param("GET", "/", {"X-A": "1\nX-Injected: 2"}, id="lf-in-value"),
        pytest.param("GET", "/", {"X-A": "1\r"}, id="cr-in-value"),
        pytest.param("GET", "/", {"X-A: 1\r\nX-B": "2"}, id="crlf-in-name"),
        pytest.param("GET", "/", {"X A": "1"}, id="space-in-name"),
        pytest.param("GET", "/", {"": "1"}, id="empty-name"),
        pytest.param("GET", "/", {"X-A": "小明"}, id="not-latin-1"),
    ],
)
def test_requests_that_would_change_meaning_are_refused(method, target, headers) -> None:
    with pytest.raises(http1.BadRequest):
        http1.request_head(method, target, {"Host": "app", **headers})


def test_bodies_are_sent_sized_or_chunked(pair) -> None:
    connection, upstream = pair
    connection.send(b"HEAD\r\n\r\n", io.BytesIO(b"abcdef"), 6)
    assert upstream.recv(100) == b"HEAD\r\n\r\nabcdef"
    connection.send(b"HEAD\r\n\r\n", iter([b"abc", b"", b"de"]), None)
    received = b""
    while not received.endswith(b"0\r\n\r\n"):
        received += upstream.recv(100)
    assert received == b"HEAD\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"


def test_large_body_is_streamed(pair) -> None:
    connection, upstream = pair
    body = bytes(range(256)) * 1024 * 3  # 768 KiB: past the size sent with the head
    received = bytearray()

    def drain() -> None:
        while len(received) < len(body) + 5:
            received.extend(upstream.recv(65536))

    reader = threading.Thread(target=drain)
    reader.start()
    connection.send(b"HEAD\n", io.BytesIO(body), len(body))
    reader.join()
    assert bytes(received) == b"HEAD\n" + body


@pytest.mark.parametrize("size", [10, 200_000], ids=["small", "large"])
def test_body_shorter_than_its_length_is_a_bad_request(pair, size) -> None:
    connection, upstream = pair
    reader = threading.Thread(target=drain, args=(upstream,))
    reader.start()
    with pytest.raises(http1.BadRequest):
        connection.send(b"HEAD\r\n\r\n", io.BytesIO(b"x" * (size - 1)), size)
    connection.sock.shutdown(socket.SHUT_WR)
    reader.join()


def drain(sock: socket.socket) -> None:
    while sock.recv(65536):
        pass


# --- the proxy's rules on top of llhttp, against llhttp alone (hypothesis) ---------------------
#
# http1 owns no parser: it feeds llhttp and adds rules (one chunked coding, HTTP/1.0 or 1.1, no
# control in the reason, 100 fields, 64 KiB heads). Generated answers, valid and mutated, go to
# both: whatever llhttp refuses, http1 refuses; whatever http1 passes on, llhttp parsed to the same
# end with the same body.


_STATUS_LINES = [b"HTTP/1.1 200 OK", b"HTTP/1.0 200 OK", b"HTTP/1.1 404 ", b"HTTP/1.1 204 No"]
_FIELDS = [
    b"Content-Length: 5",
    b"Content-Length: 5, 5",
    b"Content-Length: 05",
    b"Content-Length:  5 ",
    b"Content-Length: 6",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: chunked, identity",
    b"Transfer-Encoding:chunked",
    b"Connection: close",
    b"Connection: keep-alive",
    b"X-A: a" + b" " * 300 + b"b",
    b"X-A: one\x00two",
    b"X-A: \x80\xff",
    b" folded",
    b"X-B: 1\rX-C: 2",
    b"X-Long: " + b"v" * 2000,
    b"Set-Cookie: a=1; Path=/",
]
_BODIES = [
    b"hello",
    b"hell",
    b"hello!",
    b"5\r\nhello\r\n0\r\n\r\n",
    b"5;ext=1;x\r\nhello\r\n0\r\nX-T: 1\r\n\r\n",
    b"5\r\nhel",
    b"zz\r\n",
    b"5 \r\nhello\r\n0\r\n\r\n",
    b"",
]


@st.composite
def answers(draw) -> bytes:
    status = draw(st.sampled_from(_STATUS_LINES))
    fields = draw(st.lists(st.sampled_from(_FIELDS), max_size=5))
    ending = draw(st.sampled_from([b"\r\n", b"\n"]))
    body = draw(st.sampled_from(_BODIES))
    raw = ending.join([status, *fields]) + ending + ending + body
    for _ in range(draw(st.integers(0, 2))):  # byte mutations anywhere
        at = draw(st.integers(0, len(raw)))
        byte = draw(st.sampled_from([b"", b"\r", b"\n", b"\x00", b" ", b",", b"0", b"\t"]))
        raw = raw[:at] + byte + raw[at + draw(st.integers(0, 1)) :]
    return raw


class _Reference:
    """llhttp alone: body and end of the first final answer, or the error."""

    def __init__(self, raw: bytes) -> None:
        self.body, self.complete, self.error = b"", False, False
        self._parser = httptools.HttpResponseParser(self)
        try:
            self._parser.feed_data(raw)
        except httptools.HttpParserError:
            self.error = not self.complete
        except httptools.HttpParserUpgrade:
            self.error = True

    def on_headers_complete(self) -> None:
        self.final = self._parser.get_status_code() >= 200

    def on_body(self, data: bytes) -> None:
        if not self.complete:
            self.body += data

    def on_message_complete(self) -> None:
        if self.final:
            self.complete = True


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers())
def test_http1_refuses_all_that_llhttp_refuses_and_agrees_on_the_rest(raw) -> None:
    reference = _Reference(raw)
    ours, theirs = socket.socketpair()
    ours.settimeout(2)
    try:
        theirs.sendall(raw)
        theirs.shutdown(socket.SHUT_WR)
        try:
            response = http1.Connection(ours).response("GET")
            body = b"".join(response.body())
        except (http1.BadResponse, http1.IncompleteBody, http1.UpstreamClosed):
            return  # refused: allowed whatever llhttp said (http1 only adds rules)
        assert not reference.error, f"llhttp refused what http1 passed on: {raw!r}"
        assert body == reference.body
        if response.reusable:
            assert reference.complete, "reused a connection llhttp had not seen end"
    finally:
        ours.close()
        theirs.close()
