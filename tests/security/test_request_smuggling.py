"""Proxy mode at the edge (issue 10): ``qqgate serve`` (real gunicorn, the shipped settings) in front
of upstreams that record every request, attacked from raw client sockets.

The one invariant every test checks: the upstream sees exactly the requests the gate passed, with
the identity the gate set, and every client gets its own answer.
"""

from __future__ import annotations

import time
from urllib.parse import quote

import pytest

from ..edge import (
    Client,
    LaxUpstream,
    RecordingUpstream,
    inner_request,
    request,
    serve_gate,
)
from ..live import signed_in
from ..rig import NICKNAME
from ..test_proxy import ScriptedUpstream

ALICE, BOB, CAROL = "A" * 32, "B" * 32, "C" * 32
EVIL = "E" * 32


@pytest.fixture(scope="module")
def recording():
    upstream = RecordingUpstream()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def gate(recording, tmp_path_factory):
    server = serve_gate(tmp_path_factory.mktemp("edge"), recording.url)
    yield server
    server.stop()


@pytest.fixture
def seen(recording):
    """The requests the recording upstream receives during one test."""
    recording.seen.clear()
    return recording.seen


def settle() -> None:
    time.sleep(0.3)  # let a smuggled request, had one got through, reach the upstream


def send_smuggled(client: Client, hidden: bytes) -> None:
    """A public POST whose body is ``hidden``, with ``Connection`` naming its length."""
    headers = {"Connection": "Content-Length", "Content-Length": str(len(hidden))}
    client.send(request("POST", "/public/x", headers, hidden))


SMUGGLED = inner_request("GET", "/admin/delete-everything", X_QQ_OpenID=EVIL, Content_Length="0")


# --- 1. framing comes from what the gate knows -----------------------------------------------


@pytest.mark.parametrize(
    "connection",
    [
        pytest.param("Content-Length", id="content-length"),
        pytest.param("content-length", id="lowercase"),
        pytest.param("close, Content-Length", id="in-a-list"),
        pytest.param("Keep-Alive,  CONTENT-LENGTH ", id="odd-case-and-spaces"),
        pytest.param("Host, Content-Length, X-Forwarded-For", id="with-other-owned"),
    ],
)
def test_connection_cannot_remove_the_forwarded_length(gate, seen, connection) -> None:
    client = Client(gate.port)
    headers = {"Connection": connection, "Content-Length": str(len(SMUGGLED))}
    client.send(request("POST", "/public/anything", headers, SMUGGLED))
    (answer,) = client.answers(1)
    settle()
    assert answer.status == 200 and answer.json()["path"] == "/public/anything"
    assert [(s.method, s.path) for s in seen] == [("POST", "/public/anything")]
    assert seen[0].body == SMUGGLED, "the body reached the upstream as a body"
    assert seen[0].openid is None


@pytest.mark.parametrize(
    "connection",
    [
        pytest.param("Transfer-Encoding", id="transfer-encoding"),
        pytest.param("Transfer-Encoding, Content-Length", id="both"),
    ],
)
def test_connection_cannot_remove_the_forwarded_chunking(gate, seen, connection) -> None:
    client = Client(gate.port)
    chunked = b"%x\r\n%b\r\n0\r\n\r\n" % (len(SMUGGLED), SMUGGLED)
    headers = {"Connection": connection, "Transfer-Encoding": "chunked"}
    client.send(request("POST", "/public/anything", headers, chunked))
    (answer,) = client.answers(1)
    settle()
    assert answer.status == 200
    assert [(s.method, s.path) for s in seen] == [("POST", "/public/anything")]
    assert seen[0].body == SMUGGLED


@pytest.mark.parametrize(
    "named",
    [
        pytest.param("X-QQ-OpenID, X-QQ-Nickname", id="identity"),
        pytest.param("x-qq-openid", id="identity-lowercase"),
        pytest.param("Host, X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Host", id="forwarded"),
    ],
)
def test_connection_cannot_remove_what_the_gate_sets(gate, seen, named) -> None:
    client = Client(gate.port)
    client.send(request("GET", "/private", {"Connection": named, **signed_in(ALICE)}))
    (answer,) = client.answers(1)
    assert answer.status == 200 and answer.json()["openid"] == ALICE
    (request_seen,) = seen
    assert request_seen.headers["x-qq-openid"] == ALICE
    assert request_seen.headers["x-qq-nickname"] == quote(NICKNAME, safe="")
    assert request_seen.headers["host"] == "gate.example"
    assert request_seen.headers["x-forwarded-for"] == "127.0.0.1"
    assert request_seen.headers["x-forwarded-proto"] == "http"
    assert request_seen.headers["x-forwarded-host"] == "gate.example"


def test_a_client_header_the_client_names_is_still_dropped(gate, seen) -> None:
    client = Client(gate.port)
    client.send(
        request("GET", "/private", {"Connection": "X-Mine", "X-Mine": "1", **signed_in(ALICE)})
    )
    assert client.answers(1)[0].status == 200
    assert "x-mine" not in seen[0].headers


# --- escalations: answers shifted between users, captured requests, a protected page ---------


def test_no_answer_shift_between_users(gate, seen) -> None:
    """A slow smuggled request left its answer on the pooled connection: B then got the
    attacker's answer and C got B's page, with B's openid in it."""
    attacker = Client(gate.port)
    slow = inner_request("GET", "/slow", Content_Length="0")
    send_smuggled(attacker, slow)
    assert attacker.answers(1)[0].json()["path"] == "/public/x"
    for openid in (BOB, CAROL):
        user = Client(gate.port)
        user.send(request("GET", "/whoami", signed_in(openid)))
        (answer,) = user.answers(1)
        assert answer.json()["openid"] == openid and answer.json()["path"] == "/whoami"
    settle()
    assert [(s.path, s.openid) for s in seen] == [
        ("/public/x", None),
        ("/whoami", BOB),
        ("/whoami", CAROL),
    ]


def test_no_request_captured_as_a_smuggled_body(gate, seen) -> None:
    """An unfinished smuggled POST with a large length took the next user's request (cookies,
    identity headers) as its body."""
    attacker = Client(gate.port)
    capture = inner_request("POST", "/comments", Content_Length="400")
    send_smuggled(attacker, capture)
    assert attacker.answers(1)[0].status == 200
    victim = Client(gate.port)
    victim.send(request("GET", "/inbox", signed_in(BOB)))
    (answer,) = victim.answers(1)
    assert answer.json()["openid"] == BOB and answer.json()["path"] == "/inbox"
    settle()
    assert [(s.path, s.openid) for s in seen] == [("/public/x", None), ("/inbox", BOB)]
    assert all(BOB not in s.body.decode("latin-1") for s in seen)


def test_no_protected_page_through_a_public_one(gate, seen) -> None:
    """An unfinished smuggled head for a protected path, completed by an anonymous request to a
    public path, returned the protected page."""
    attacker = Client(gate.port)
    unfinished = b"GET /protected HTTP/1.1\r\nX-QQ-OpenID: " + EVIL.encode() + b"\r\nX-Junk: "
    send_smuggled(attacker, unfinished)
    attacker.answers(1)
    anonymous = Client(gate.port)
    anonymous.send(request("GET", "/public/page"))
    (answer,) = anonymous.answers(1)
    assert answer.json()["path"] == "/public/page" and answer.json()["openid"] is None
    settle()
    assert [s.path for s in seen] == ["/public/x", "/public/page"]
    assert all(s.openid != EVIL for s in seen)


# --- 2. bodies an upstream does not expect ---------------------------------------------------


@pytest.fixture(scope="module")
def lax():
    upstream = LaxUpstream()
    yield upstream
    upstream.close()


@pytest.fixture(scope="module")
def lax_gate(lax, tmp_path_factory):
    server = serve_gate(tmp_path_factory.mktemp("lax"), lax.url)
    yield server
    server.stop()


HIDDEN = inner_request("GET", "/secret-file", X_QQ_OpenID=EVIL)


@pytest.mark.parametrize("method", ["GET", "HEAD", "TRACE"])
@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_body_on_get_head_trace_is_refused(lax_gate, lax, method, framing) -> None:
    lax.seen.clear()
    client = Client(lax_gate.port)
    if framing == "length":
        headers, body = {"Content-Length": str(len(HIDDEN))}, HIDDEN
    else:
        headers = {"Transfer-Encoding": "chunked"}
        body = b"%x\r\n%b\r\n0\r\n\r\n" % (len(HIDDEN), HIDDEN)
    client.send(request(method, "/public/file", headers, body))
    status = client.head_status() if method == "HEAD" else client.answers(1)[0].status
    client.close()
    settle()
    assert status == 400
    assert lax.seen == [], "nothing reached the upstream"


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "OPTIONS"])
def test_unread_body_never_becomes_a_request(lax_gate, lax, method) -> None:
    """http.server leaves these bodies unread; on a pooled connection they were the next
    request. A request with a body now closes its upstream connection."""
    lax.seen.clear()
    client = Client(lax_gate.port)
    client.send(request(method, "/public/form", {"Content-Length": str(len(HIDDEN))}, HIDDEN))
    (answer,) = client.answers(1)
    assert answer.status == 200 and answer.json()["path"] == "/public/form"
    follower = Client(lax_gate.port)
    follower.send(request("GET", "/public/next"))
    assert follower.answers(1)[0].json()["path"] == "/public/next"
    settle()
    assert [s.path for s in lax.seen] == ["/public/form", "/public/next"]


def test_get_without_a_body_keeps_its_pooled_connection(lax_gate, lax) -> None:
    lax.seen.clear()
    client = Client(lax_gate.port)
    for n in range(3):
        client.send(request("GET", f"/public/{n}"))
        assert client.answers(1)[0].json()["path"] == f"/public/{n}"


# --- 5, 6. answers the proxy cannot pass on whole ---------------------------------------------


def upstream_gate(tmp_path, raw: bytes, then_close: bool = True):
    """A gate in front of an upstream that answers ``raw``, then closes, or stays silent with the
    connection open (waiting for a next request the gate never sends)."""
    answers = [(raw, True)] if then_close else [(raw, False), (b"", True)]
    upstream = ScriptedUpstream(answers)
    return upstream, serve_gate(tmp_path, upstream.url, upstream_timeout="1")


@pytest.mark.parametrize(
    ("raw", "then_close"),
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n8\r\nabc",
            True,
            id="closed-mid-chunk",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n",
            True,
            id="closed-before-last-chunk",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n8\r\nabc",
            False,
            id="timeout-mid-chunk",
        ),
    ],
)
def test_chunked_body_cut_short_reaches_the_client_cut(tmp_path, raw, then_close) -> None:
    upstream, gate = upstream_gate(tmp_path, raw, then_close)
    try:
        client = Client(gate.port)
        client.send(request("GET", "/public/file"))
        (answer,) = client.answers(1)
        assert answer.status == 200 and not answer.complete, "no last chunk"
        assert answer.body.startswith(b"hello")
        assert client.closed
    finally:
        log = gate.stop()
        upstream.close()
    assert "client connection aborted" in log
    assert "Traceback" not in log


def test_sized_body_cut_short_reaches_the_client_short(tmp_path) -> None:
    upstream, gate = upstream_gate(tmp_path, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc")
    try:
        client = Client(gate.port)
        client.send(request("GET", "/public/file"))
        (answer,) = client.answers(1)
        assert answer.headers["content-length"] == "10"
        assert answer.body == b"abc" and not answer.complete and client.closed
    finally:
        log = gate.stop()
        upstream.close()
    assert "client connection aborted" in log and "Traceback" not in log


@pytest.mark.parametrize(
    "length",
    ["2, 2", ",2", "", "2,", "+2", "0x2", "2 2", "-2"],
)
def test_unframeable_length_is_the_502_page(tmp_path, length) -> None:
    raw = b"HTTP/1.1 200 OK\r\nContent-Length: %b\r\n\r\nok" % length.encode()
    upstream, gate = upstream_gate(tmp_path, raw)
    try:
        client = Client(gate.port)
        client.send(request("GET", "/public/file", {"Accept": "text/html"}))
        (answer,) = client.answers(1)
        client.close()
        assert answer.status == 502 and b"<html" in answer.body.lower()
    finally:
        log = gate.stop()
        upstream.close()
    assert "upstream failed" in log and "bad_response" in log
    assert "Traceback" not in log and " 500 " not in log


# --- 7. the client's own framing faults are 400s ---------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(b"5\r\nhello\r\nzz\r\n", id="bad-chunk-size"),
        pytest.param(b"5\r\nhelloXX\r\n0\r\n\r\n", id="chunk-longer-than-its-size"),
        pytest.param(b"5;\x01\r\nhello\r\n0\r\n\r\n", id="control-in-extension"),
    ],
)
def test_bad_chunked_body_from_the_client_is_a_400(gate, seen, body) -> None:
    client = Client(gate.port)
    headers = {"Transfer-Encoding": "chunked", **signed_in(ALICE)}
    client.send(request("POST", "/upload", headers, body))
    (answer,) = client.answers(1)
    assert answer.status == 400


def test_bad_chunked_body_is_logged_as_the_clients_fault(tmp_path, recording) -> None:
    gate = serve_gate(tmp_path, recording.url)
    try:
        client = Client(gate.port)
        headers = {"Transfer-Encoding": "chunked", **signed_in(ALICE)}
        client.send(request("POST", "/upload", headers, b"5\r\nhello\r\nzz\r\n"))
        assert client.answers(1)[0].status == 400
        client.close()
    finally:
        log = gate.stop()
    assert "request not forwarded" in log and "client=127.0.0.1" in log
    assert "upstream failed" not in log and "Traceback" not in log


def test_body_shorter_than_its_length_is_a_400(gate, seen) -> None:
    client = Client(gate.port, timeout=10)
    client.send(request("POST", "/upload", {"Content-Length": "100", **signed_in(ALICE)}, b"short"))
    client.sock.shutdown(1)  # the client is done sending
    answers = client.answers(1)
    assert not answers or answers[0].status == 400
    assert all(s.path != "/upload" or len(s.body) != 100 for s in seen)
