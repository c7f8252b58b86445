"""WebSockets through proxy mode (issue 11): ``qqgate serve`` (gevent worker) in front of a real
WebSocket echo server (the ``websockets`` library), with the ``websockets`` client."""

from __future__ import annotations

import contextlib
import os
import threading
import time

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.http11 import Response
from websockets.sync.client import connect
from websockets.sync.server import serve

from .edge import serve_gate
from .live import signed_in
from .security.test_request_smuggling import ALICE, BOB

# A page that opens a WebSocket back to where it came from and echoes 100 messages (the browser
# test); its title says how it ended.
ECHO_PAGE = rb"""<!doctype html><meta charset="utf-8"><title>waiting</title><script>
const target = new URLSearchParams(location.search).get("ws") || `ws://${location.host}/chat`;
const socket = new WebSocket(target);
let echoed = 0;
socket.onopen = () => { for (let i = 0; i < 100; i++) socket.send(`message ${i} \u{1F427}`); };
socket.onmessage = (event) => {
  if (event.data === `message ${echoed} \u{1F427}`) echoed++;
  if (echoed === 100) { document.title = "echoed 100"; socket.close(); }
};
socket.onerror = () => { document.title = "refused"; };
</script>"""


class EchoUpstream:
    """A WebSocket echo server that records each handshake's headers; ``/refuse`` gets 403 and
    ``/page`` is ``ECHO_PAGE``."""

    def __init__(self) -> None:
        self.handshakes: list[dict[str, str]] = []
        self.server = serve(self._echo, "127.0.0.1", 0, process_request=self._check)
        self.port = self.server.socket.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def _check(self, connection, request):
        self.handshakes.append({k.lower(): v for k, v in request.headers.raw_items()})
        if request.path == "/refuse":
            return connection.respond(403, "refused by the app\n")
        if request.path.startswith("/page"):
            headers = Headers([("Content-Type", "text/html; charset=utf-8")])
            headers["Content-Length"] = str(len(ECHO_PAGE))
            return Response(200, "OK", headers, ECHO_PAGE)
        return None

    def _echo(self, connection) -> None:
        try:
            for message in connection:
                connection.send(message)
        except ConnectionClosed:
            pass

    def close(self) -> None:
        self.server.shutdown()


@pytest.fixture(scope="module")
def upstream():
    server = EchoUpstream()
    yield server
    server.close()


@pytest.fixture(scope="module")
def gate(upstream, tmp_path_factory):
    server = serve_gate(
        tmp_path_factory.mktemp("ws"),
        upstream.url,
        websocket_origins="https://partner.example",
        websocket_idle_timeout="2",
    )
    yield server
    server.stop()


def ws(gate, path: str = "/chat", openid: str | None = ALICE, origin: str | None = "own", **kw):
    headers = signed_in(openid) if openid else {}
    if origin == "own":
        origin = f"http://127.0.0.1:{gate.port}"
    return connect(
        f"ws://127.0.0.1:{gate.port}{path}",
        additional_headers=headers,
        origin=origin,
        open_timeout=10,
        **kw,
    )


def test_a_thousand_messages_round_trip_intact(gate, upstream) -> None:
    messages = [os.urandom(n) for n in (1, 125, 126, 65535, 65536, 200_000)]
    messages += [f"消息 {n} 🐧" for n in range(994)]
    with ws(gate) as socket:
        for message in messages:
            socket.send(message)
            assert socket.recv(timeout=10) == message
    handshake = upstream.handshakes[-1]
    assert handshake["x-qq-openid"] == ALICE
    assert "qqgate=" not in handshake.get("cookie", ""), "the gate's cookie stays at the gate"


def test_many_sockets_at_once(gate) -> None:
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(ws(gate, openid=openid)) for openid in (ALICE, BOB) * 25]
        for n, socket in enumerate(sockets):
            socket.send(f"hello {n}")
        for n, socket in enumerate(sockets):
            assert socket.recv(timeout=10) == f"hello {n}"


def test_anonymous_upgrade_is_refused_before_the_upstream(gate, upstream) -> None:
    before = len(upstream.handshakes)
    with pytest.raises(InvalidStatus) as refused:
        ws(gate, openid=None)
    assert refused.value.response.status_code == 401
    assert len(upstream.handshakes) == before


@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "http://127.0.0.1.evil.example",
        "null",
        "http://127.0.0.1",  # the gate's host on another port is another origin
    ],
)
def test_cross_site_upgrade_is_refused(gate, upstream, origin) -> None:
    before = len(upstream.handshakes)
    with pytest.raises(InvalidStatus) as refused:
        ws(gate, origin=origin)
    assert refused.value.response.status_code == 403
    assert len(upstream.handshakes) == before


@pytest.mark.parametrize("origin", ["https://partner.example", "HTTPS://Partner.Example:443", None])
def test_listed_origin_or_none_passes(gate, origin) -> None:
    with ws(gate, origin=origin) as socket:
        socket.send("hi")
        assert socket.recv(timeout=10) == "hi"


def test_upstream_refusal_is_passed_on(gate) -> None:
    with pytest.raises(InvalidStatus) as refused:
        ws(gate, path="/refuse")
    assert refused.value.response.status_code == 403
    assert b"refused by the app" in refused.value.response.body


def test_idle_tunnel_is_closed(gate) -> None:
    with ws(gate) as socket:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            socket.recv(timeout=10)
        assert 1.5 < time.monotonic() - started < 6


def test_other_upgrades_are_refused(gate) -> None:
    from .edge import Client, request

    for protocol, status in (("h2c", 501), ("TLS/1.0", 501), ("websocket, h2c", 501)):
        client = Client(gate.port)
        headers = {"Connection": "Upgrade, HTTP2-Settings", "Upgrade": protocol, **signed_in(ALICE)}
        client.send(request("GET", "/chat", headers))
        (answer,) = client.answers(1)
        client.close()
        assert answer.status == status, protocol


def test_upgrade_for_a_user_not_on_the_allow_list_is_403(tmp_path, upstream) -> None:
    gate = serve_gate(tmp_path, upstream.url, allowed_openids=BOB)
    try:
        with pytest.raises(InvalidStatus) as refused:
            ws(gate, openid=ALICE)
        assert refused.value.response.status_code == 403
        with ws(gate, openid=BOB) as socket:
            socket.send("ok")
            assert socket.recv(timeout=10) == "ok"
    finally:
        gate.stop()
