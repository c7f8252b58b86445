"""Proxy mode over real sockets: an upstream under gunicorn, the gate (qqgate.wsgi) under gunicorn
in front of it, and clients that speak HTTP to the gate."""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import time
from pathlib import Path

import pytest
import requests
from webob import Request

from qqgate.upstream import http1

from .live import PROCESS_SECRET as SECRET
from .live import session_token, write_gate_ini
from .rig import OPENID
from .servers import Gunicorn, free_port

MiB = 1024 * 1024


def start_upstream(port: int | None = None) -> Gunicorn:
    port = port or free_port()
    env = {"UPSTREAM_SELF": f"http://127.0.0.1:{port}"}
    return Gunicorn("tests.upstream_app:application", env, port=port, threads=8).start()


def start_gate(directory: Path, upstream: str | None, workers: int = 1, **extra: str) -> Gunicorn:
    port = free_port()
    config = write_gate_ini(directory, port, upstream, **extra)
    env = {"QQGATE_CONFIG": str(config)}
    return Gunicorn("qqgate.wsgi:application", env, port=port, workers=workers, threads=8).start()


@pytest.fixture(scope="module")
def upstream():
    server = start_upstream()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def gate(upstream, tmp_path_factory):
    server = start_gate(tmp_path_factory.mktemp("gate"), upstream.url, upstream_timeout="1")
    yield server
    server.stop()


@pytest.fixture
def user() -> requests.Session:
    browser = requests.Session()
    browser.headers["Cookie"] = f"qqgate={session_token()}"
    return browser


def test_anonymous_requests_never_reach_the_upstream(gate) -> None:
    response = requests.get(
        f"{gate.url}/echo", headers={"Accept": "text/html"}, allow_redirects=False, timeout=10
    )
    assert response.status_code == 302 and "/_qqgate/login" in response.headers["Location"]
    assert requests.post(f"{gate.url}/echo", data=b"x", timeout=10).status_code == 401


def test_get_forwards_raw_path_query_and_identity(gate, user) -> None:
    seen = user.get(f"{gate.url}/echo/a%2Fb/%E4%B8%AD?q=%20x&y=1", timeout=10).json()
    assert seen["method"] == "GET"
    assert seen["raw_uri"] == "/echo/a%2Fb/%E4%B8%AD?q=%20x&y=1"
    assert seen["headers"]["x-qq-openid"] == OPENID
    assert seen["headers"]["x-qq-nickname"] == "%E5%B0%8F%E6%98%8E%F0%9F%90%A7"
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"
    assert seen["headers"]["x-forwarded-proto"] == "http"
    assert seen["headers"]["x-forwarded-host"] == f"127.0.0.1:{gate.port}"
    assert seen["headers"]["host"] == f"127.0.0.1:{gate.port}", "client Host is kept by default"


def test_post_of_one_mib(gate, user) -> None:
    body = os.urandom(MiB)
    seen = user.post(f"{gate.url}/echo", data=body, timeout=20).json()
    assert seen["method"] == "POST" and seen["body_length"] == MiB
    assert seen["body_sha256"] == hashlib.sha256(body).hexdigest()


def test_chunked_upload_streams_through(gate, user) -> None:
    pieces = [os.urandom(64 * 1024) for _ in range(20)]
    seen = user.post(f"{gate.url}/echo", data=iter(pieces), timeout=20).json()
    assert seen["body_length"] == 20 * 64 * 1024
    assert seen["body_sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_every_set_cookie_stays_separate(gate, user) -> None:
    response = user.get(f"{gate.url}/setcookies", timeout=10, stream=True)
    cookies = response.raw.headers.getlist("Set-Cookie")
    assert cookies == [
        "app_a=1; Path=/",
        "app_b=2; Path=/; HttpOnly",
        "app_c=3, with comma; Path=/",
    ]
    response.close()


def test_redirects_are_passed_on_and_upstream_location_rewritten(gate, user, upstream) -> None:
    response = user.get(f"{gate.url}/redirect", allow_redirects=False, timeout=10)
    assert response.status_code == 302
    assert response.headers["Location"] == f"http://127.0.0.1:{gate.port}/target?x=1"
    response = user.get(f"{gate.url}/relative-redirect", allow_redirects=False, timeout=10)
    assert response.status_code == 303 and response.headers["Location"] == "/target"


SPOOFS = {
    "X-QQ-OpenID": "SPOOFED",
    "x-qq-nickname": "SPOOFED",
    "X-Qq-Unionid": "SPOOFED",
    "Remote-User": "SPOOFED",
}


@pytest.mark.parametrize(
    "signed_in", [pytest.param(False, id="anonymous-public"), pytest.param(True, id="signed-in")]
)
def test_spoofed_identity_never_reaches_upstream(gate, signed_in) -> None:
    headers = dict(SPOOFS)
    if signed_in:
        headers["Cookie"] = f"qqgate={session_token()}"
    seen = requests.get(f"{gate.url}/public/echo", headers=headers, timeout=10).json()
    assert "SPOOFED" not in str(seen["headers"])
    assert seen["headers"].get("x-qq-openid") == (OPENID if signed_in else None)


def test_gate_cookies_never_reach_upstream(gate) -> None:
    token = session_token()
    cookie = f"app=1; qqgate={token}; qqgate_state=abc; other=2"
    seen = requests.get(f"{gate.url}/echo", headers={"Cookie": cookie}, timeout=10).json()
    assert seen["headers"]["cookie"] == "app=1; other=2"
    assert token not in str(seen)


def test_upstream_cookies_are_never_replayed_for_another_user(gate) -> None:
    alice = requests.Session()
    alice.headers["Cookie"] = f"qqgate={session_token('A' * 32)}"
    assert alice.get(f"{gate.url}/setcookies", timeout=10).status_code == 200
    bob = requests.Session()
    bob.headers["Cookie"] = f"qqgate={session_token('B' * 32)}"
    seen = bob.get(f"{gate.url}/echo", timeout=10).json()
    assert "cookie" not in seen["headers"], "the proxy must keep no cookie jar"


def test_hop_by_hop_request_headers_are_dropped(gate, user) -> None:
    headers = {
        "Connection": "keep-alive, X-Private",
        "X-Private": "1",
        "Keep-Alive": "300",
        "TE": "trailers",
        "Proxy-Authorization": "Basic eA==",
        "Expect": "100-continue",
    }
    seen = user.post(f"{gate.url}/echo", data=b"body", headers=headers, timeout=10).json()
    assert seen["body_length"] == 4
    for name in ("x-private", "keep-alive", "te", "proxy-authorization", "expect"):
        assert name not in seen["headers"], name


def test_upstream_timeout_gives_504_quickly(gate, user) -> None:
    started = time.monotonic()
    response = user.get(f"{gate.url}/slow?seconds=3", timeout=10)
    assert response.status_code == 504 and "took too long to answer" in response.text
    assert time.monotonic() - started < 2.5
    assert user.get(f"{gate.url}/echo", timeout=10).status_code == 200


def test_upgrade_the_upstream_does_not_take_is_its_answer(gate, user) -> None:
    # The upstream (a plain WSGI app) answers the handshake with a 200: passed on as it is, on a
    # connection that is not reused. tests/test_websocket.py has the switched case.
    response = user.get(
        f"{gate.url}/echo", headers={"Connection": "Upgrade", "Upgrade": "websocket"}, timeout=10
    )
    assert response.status_code == 200
    seen = response.json()["headers"]
    assert seen["upgrade"] == "websocket" and seen["x-qq-openid"] == OPENID


def test_upgrade_to_another_protocol_gets_501(gate, user) -> None:
    response = user.get(
        f"{gate.url}/echo", headers={"Connection": "Upgrade", "Upgrade": "h2c"}, timeout=10
    )
    assert response.status_code == 501 and "WebSocket" in response.text


def test_upstream_down_gives_502_and_recovers(tmp_path, user) -> None:
    upstream = start_upstream()
    gate = start_gate(tmp_path, upstream.url)
    try:
        assert user.get(f"{gate.url}/echo", timeout=10).status_code == 200
        upstream.stop()
        started = time.monotonic()
        response = user.get(f"{gate.url}/echo", timeout=10)
        assert response.status_code == 502 and "The site could not be reached" in response.text
        assert "Traceback" not in response.text
        assert time.monotonic() - started < 2
        chinese = user.get(
            f"{gate.url}/echo", headers={"Accept-Language": "zh-CN,zh;q=0.9"}, timeout=10
        )
        assert chinese.status_code == 502 and "暂时无法连接本站的服务" in chinese.text
        upstream = start_upstream(upstream.port)
        assert user.get(f"{gate.url}/echo", timeout=10).status_code == 200
    finally:
        output = gate.stop()
        upstream.stop()
    assert "upstream failed status=502 reason=refused" in output
    assert "Traceback" not in output


def test_preserve_host_false_sends_upstream_host(tmp_path, upstream, user) -> None:
    gate = start_gate(tmp_path, upstream.url, preserve_host="false")
    try:
        seen = user.get(f"{gate.url}/echo", timeout=10).json()
        assert seen["headers"]["host"] == f"127.0.0.1:{upstream.port}"
        assert seen["headers"]["x-forwarded-host"] == f"127.0.0.1:{gate.port}"
    finally:
        gate.stop()


def _worker_pids(master_pid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == master_pid:
                pids.append(int(entry.name))
    return pids


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


def test_256_mib_download_streams_in_flat_memory(tmp_path, upstream, user) -> None:
    gate = start_gate(tmp_path, upstream.url)
    try:
        size = 256 * MiB
        received = 0
        with user.get(f"{gate.url}/download?size={size}", stream=True, timeout=60) as response:
            assert response.status_code == 200 and response.headers["Content-Length"] == str(size)
            for chunk in response.iter_content(MiB):
                received += len(chunk)
        assert received == size
        [worker] = _worker_pids(gate.process.pid)
        peak = _peak_rss_mib(worker)
        print(f"\nproxy worker peak RSS (VmHWM) after a 256 MiB download: {peak:.1f} MiB")
        assert peak < 100, f"worker peak RSS {peak:.1f} MiB: the body was buffered"
    finally:
        gate.stop()


def test_routes_only_without_upstream(tmp_path) -> None:
    gate = start_gate(tmp_path, None)
    try:
        assert requests.get(f"{gate.url}/_qqgate/ping", timeout=10).text == "ok\n"
        assert (
            requests.get(
                f"{gate.url}/anything", headers={"Accept": "text/html"}, timeout=10
            ).status_code
            == 404
        )
        signed_in = {"Cookie": f"qqgate={session_token()}"}
        auth = requests.get(f"{gate.url}/_qqgate/auth", headers=signed_in, timeout=10)
        assert auth.status_code == 202 and auth.headers["X-QQ-OpenID"] == OPENID
        assert requests.get(f"{gate.url}/_qqgate/auth", timeout=10).status_code == 401
    finally:
        gate.stop()


@pytest.mark.parametrize(
    ("environ", "target"),
    [
        pytest.param(
            {"RAW_URI": "/a%2Fb?x=%20", "PATH_INFO": "/a/b"}, "/a%2Fb?x=%20", id="raw-kept"
        ),
        pytest.param(
            {"RAW_URI": "/admin/healthz", "SCRIPT_NAME": "/admin", "PATH_INFO": "/healthz"},
            "/healthz",
            id="script-name-header-cannot-hide-a-prefix",
        ),
        pytest.param(
            {"RAW_URI": "http://evil/x", "PATH_INFO": "/x", "QUERY_STRING": "q=1"},
            "/x?q=1",
            id="absolute-form",
        ),
        pytest.param(
            {"PATH_INFO": "/中".encode().decode("latin-1")}, "/%E4%B8%AD", id="no-raw-uri"
        ),
    ],
)
def test_proxy_forwards_the_path_the_gate_decided_on(environ, target) -> None:
    from qqgate.upstream.proxy import _raw_target

    assert _raw_target(environ) == target


# --- the proxy against scripted answers (in-process) ------------------------------------------


class ScriptedUpstream:
    """A loopback server that answers each request with the next scripted bytes, and closes the
    connection after an answer when told to: for answers no real app server would send."""

    def __init__(self, answers: list[tuple[bytes, bool]]) -> None:
        self.answers = list(answers)
        self.requests: list[bytes] = []
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while self.answers:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            with sock:
                self._answer_on(sock)

    def _answer_on(self, sock: socket.socket) -> None:
        data = b""
        while self.answers:
            while b"\r\n\r\n" not in data:
                more = sock.recv(65536)
                if not more:
                    return
                data += more
            head, _, data = data.partition(b"\r\n\r\n")
            self.requests.append(head)
            raw, close = self.answers.pop(0)
            sock.sendall(raw)
            if close:
                return

    def close(self) -> None:
        self._listener.close()


def proxied(upstream: ScriptedUpstream, *requests_: Request) -> list:
    from qqgate.config import settings_from_mapping
    from qqgate.pages import Pages
    from qqgate.upstream.proxy import UpstreamProxy

    settings = settings_from_mapping(
        {
            "app_id": "101000001",
            "app_key": "k",
            "secret_key": SECRET,
            "redirect_uri": "https://app.example/_qqgate/callback",
        }
    )
    proxy = UpstreamProxy(upstream.url, timeout=5, pages=Pages(settings))
    try:
        return [request.get_response(proxy) for request in requests_]
    finally:
        proxy.close()
        upstream.close()


OK_BODY = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


def test_chunked_answer_reaches_the_client_decoded() -> None:
    upstream = ScriptedUpstream(
        [
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                b"\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                False,
            )
        ]
    )
    (response,) = proxied(upstream, Request.blank("/x"))
    assert response.status_int == 200 and response.body == b"abcde"
    assert "Transfer-Encoding" not in response.headers


def test_headers_the_upstream_names_in_connection_are_not_passed_on() -> None:
    upstream = ScriptedUpstream(
        [
            (
                b"HTTP/1.1 200 OK\r\nConnection: X-Hop, Keep-Alive\r\nX-Hop: private\r\n"
                b"Keep-Alive: timeout=5\r\nX-End: kept\r\nContent-Length: 2\r\n\r\nok",
                False,
            )
        ]
    )
    (response,) = proxied(upstream, Request.blank("/x"))
    assert response.headers["X-End"] == "kept"
    for hop in ("Connection", "X-Hop", "Keep-Alive"):
        assert hop not in response.headers


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n"
            b"\r\n3\r\nabc\r\n0\r\n\r\n",
            id="smuggling-pair",
        ),
        pytest.param(b"HTTP/1.1 200 OK\r\nX-A: 1\rSet-Cookie: evil=1\r\n\r\n", id="bare-cr"),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", id="two-lengths"
        ),
        pytest.param(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", id="not-http"),
    ],
)
def test_unframeable_answer_is_a_502_and_the_next_request_is_served(raw) -> None:
    upstream = ScriptedUpstream([(raw, True), (OK_BODY, False)])
    bad, good = proxied(upstream, Request.blank("/x"), Request.blank("/y"))
    assert bad.status_int == 502 and b"evil" not in bad.body
    assert "evil" not in bad.headers.get("Set-Cookie", "")
    assert (good.status_int, good.body) == (200, b"ok")


@pytest.mark.parametrize("checked", [True, False], ids=["seen-idle", "seen-on-use"])
def test_connection_is_reused_and_a_stale_one_replaced_for_get(monkeypatch, checked) -> None:
    # Two answers on one connection, then the upstream closes it while it idles in the pool. The
    # pool sees that before reuse; should the close come too late for that (seen-on-use), the
    # GET is retried once on a new connection. Either way the client gets its answer.
    if not checked:
        monkeypatch.setattr(http1.Connection, "idle_and_open", lambda self: True)
    upstream = ScriptedUpstream([(OK_BODY, False), (OK_BODY, True), (OK_BODY, False)])
    responses = proxied(upstream, *(Request.blank(f"/{n}") for n in range(3)))
    assert [r.status_int for r in responses] == [200, 200, 200]
    assert upstream.connections == 2


def test_post_on_a_stale_connection_is_not_resent(monkeypatch) -> None:
    monkeypatch.setattr(http1.Connection, "idle_and_open", lambda self: True)
    upstream = ScriptedUpstream([(OK_BODY, True), (OK_BODY, False)])
    post = Request.blank("/pay", POST={"amount": "1"})
    first, second = proxied(upstream, Request.blank("/"), post)
    assert (first.status_int, second.status_int) == (200, 502)
    assert len(upstream.requests) == 1, "the POST was never sent twice"


@pytest.mark.parametrize(
    "environ",
    [
        pytest.param({"HTTP_X_A": "1\r\nX-Injected: 1"}, id="crlf-in-header"),
        pytest.param({"CONTENT_LENGTH": "abc"}, id="bad-content-length"),
        pytest.param({"HTTP_X_NAME": "小明"}, id="not-latin-1"),
    ],
)
def test_request_that_cannot_be_written_is_a_400(environ) -> None:
    upstream = ScriptedUpstream([(OK_BODY, False)])
    request = Request.blank("/x", environ={"REQUEST_METHOD": "POST", **environ})
    (response,) = proxied(upstream, request)
    assert response.status_int == 400
    assert upstream.requests == [], "nothing reached the upstream"
