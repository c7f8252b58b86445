"""``Deadline``: the QQ client's calls end at ``timeout`` however slowly a server answers, even
when it drips the head of its answer (which no per-read timeout sees)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from qqgate.deadline import Deadline, current_deadline
from qqgate.qq import QQClient, QQUnavailable

from .conftest import APP_ID

ANSWER = b'HTTP/1.1 200 OK\r\nContent-Length: 40\r\n\r\n{"access_token":"T","expires_in":"60"}  '


@pytest.fixture
def dripping_server() -> Iterator[str]:
    """A server on loopback that sends its answer, head first, one byte every 50 ms."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(30)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.recv(65536)
                for byte in ANSWER:
                    if stop.wait(0.05):
                        return
                    try:
                        conn.sendall(bytes([byte]))
                    except OSError:
                        break

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    stop.set()
    listener.close()
    thread.join(timeout=10)


def test_a_dripped_head_is_cut_off_at_the_timeout(dripping_server: str) -> None:
    client = QQClient(
        app_id=APP_ID, app_key="k", redirect_uri="http://127.0.0.1/cb", base_url=dripping_server
    )
    client.timeout = 0.5
    started = time.monotonic()
    with pytest.raises(QQUnavailable) as raised:
        client.sign_in("CODE")
    took = time.monotonic() - started
    assert raised.value.timeout and raised.value.endpoint == "token"
    assert took < 0.5 + 1.0, f"took {took:.2f} s"


def test_the_deadline_is_current_only_inside_its_block() -> None:
    assert current_deadline() is None
    with Deadline(5) as deadline:
        assert current_deadline() is deadline and 4 < deadline.left() <= 5
    assert current_deadline() is None and not deadline.expired


def test_a_socket_watched_after_expiry_is_shut_at_once() -> None:
    left, right = socket.socketpair()
    with left, right, Deadline(0.01) as deadline:
        time.sleep(0.2)
        assert deadline.expired and deadline.left() == 0
        deadline.watch(left)
        left.settimeout(5)
        assert left.recv(1) == b""  # shut down: no wait
