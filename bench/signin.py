"""The gate's own CPU for one whole sign-in (login + callback), QQ answering instantly.

The development provider (``qqgate.dev.fakeqq``) runs in-process behind a requests transport
adapter, so the real ``QQClient`` makes its three calls (token, me, get_user_info) through
requests without a socket. The adapter's own time (the provider's work and building each
response) is taken out: what is left is the gate's CPU beyond the QQ round trips: the login
route, the state cookie, the callback's checks, the QQ client building three requests and
parsing three answers, and minting the session. The browser's step at QQ (approving the
login) is not timed.

    python -m bench.signin [--sign-ins 1000]

Two rows: with the real QQ client (the figure for the < 2 ms target), and with a stub client that
returns the profile at once (the gate's routes alone).
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from urllib.parse import parse_qs, urlencode, urlsplit

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from requests.utils import get_encoding_from_headers
from webob import Request

from bench import apps
from qqgate import QQGate
from qqgate.dev.fakeqq import FakeQQ
from qqgate.qq import QQClient, QQProfile

QQ_BASE = "http://127.0.0.1:9"  # never connected to: the adapter answers
REDIRECT_URI = "https://app.example.com/_qqgate/callback"
TARGET_MS = 2.0


class InProcessQQ(BaseAdapter):
    """A requests transport that hands each request to a WSGI app and times itself."""

    def __init__(self, app: FakeQQ) -> None:
        super().__init__()
        self.app = app
        self.cpu_ns = 0

    def send(self, request: requests.PreparedRequest, **kwargs: object) -> requests.Response:
        start = time.thread_time_ns()
        blank = Request.blank(request.url, method=request.method, headers=dict(request.headers))
        answer = blank.get_response(self.app)
        response = requests.Response()
        response.status_code = answer.status_code
        response.headers = CaseInsensitiveDict(answer.headerlist)
        response.raw = io.BytesIO(answer.body)
        response.encoding = get_encoding_from_headers(response.headers)
        response.url = request.url or ""
        response.request = request
        self.cpu_ns += time.thread_time_ns() - start
        return response

    def close(self) -> None:
        pass


class StubQQ:
    """Answers a sign-in with a fixed profile at once: the gate's routes without the QQ client."""

    def __init__(self, client: QQClient) -> None:
        self.client = client
        self.cpu_ns = 0

    def authorize_url(self, state: str, *, scope: str, mobile: bool = False) -> str:
        return self.client.authorize_url(state, scope=scope, mobile=mobile)

    def sign_in(self, code: str) -> QQProfile:
        return QQProfile(apps.OPENID, apps.NICKNAME, apps.AVATAR, None)


def browser_environ(path: str, query: str, cookie: str | None = None) -> dict:
    environ = Request.blank(f"{path}?{query}").environ
    environ["HTTP_ACCEPT"] = "text/html,application/xhtml+xml"
    environ["HTTP_USER_AGENT"] = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/126.0"
    if cookie:
        environ["HTTP_COOKIE"] = cookie
    return environ


def call(gate: QQGate, environ: dict) -> tuple[int, dict[str, list[str]]]:
    """Run one request; the status and headers (name -> values)."""
    seen: dict = {}

    def start_response(status: str, headers: list, exc_info: object = None) -> None:
        seen["status"] = int(status.split()[0])
        for name, value in headers:
            seen.setdefault(name.lower(), []).append(value)

    for _chunk in gate(environ, start_response):
        pass
    return seen.pop("status"), seen


def cookie_of(headers: dict[str, list[str]], name: str) -> str:
    for header in headers.get("set-cookie", []):
        if header.startswith(name + "="):
            return header.split(";", 1)[0]
    raise AssertionError(f"no {name} cookie set")


def approve(fakeqq: FakeQQ, authorize_url: str) -> str:
    """The browser's step at QQ: approve as a test user; the code QQ sends back."""
    params = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    form = {k: params.get(k, "") for k in ("client_id", "redirect_uri", "state", "scope")}
    form["user"] = "xiaoming"
    answer = Request.blank("/oauth2.0/authorize", POST=urlencode(form)).get_response(fakeqq)
    return parse_qs(urlsplit(answer.location).query)["code"][0]


def one_sign_in(gate: QQGate, fakeqq: FakeQQ, qq: InProcessQQ | StubQQ) -> float:
    """Milliseconds of the gate's CPU for one sign-in."""
    qq_before = qq.cpu_ns
    login = browser_environ("/_qqgate/login", "next=%2Fdashboard")
    start = time.thread_time_ns()
    status, headers = call(gate, login)
    login_ns = time.thread_time_ns() - start
    assert status == 302, status
    location = headers["location"][0]
    state = parse_qs(urlsplit(location).query)["state"][0]
    code = approve(fakeqq, location) if isinstance(qq, InProcessQQ) else "CODE"
    query = urlencode({"code": code, "state": state})
    callback = browser_environ(
        "/_qqgate/callback", query, cookie_of(headers, gate.settings.state_cookie_name)
    )
    start = time.thread_time_ns()
    status, headers = call(gate, callback)
    callback_ns = time.thread_time_ns() - start
    assert status == 302 and headers["location"][0].endswith("/dashboard"), status
    session = cookie_of(headers, gate.settings.cookie_name)
    assert gate.identify({"HTTP_COOKIE": session}) is not None
    return (login_ns + callback_ns - (qq.cpu_ns - qq_before)) / 1e6


def build(stub: bool) -> tuple[QQGate, FakeQQ, InProcessQQ | StubQQ]:
    settings = apps.settings(qq_base_url=QQ_BASE, redirect_uri=REDIRECT_URI)
    fakeqq = FakeQQ(
        {settings.app_id: settings.app_key}, callbacks={settings.app_id: [REDIRECT_URI]}
    )
    adapter = InProcessQQ(fakeqq)
    session = requests.Session()
    session.mount(QQ_BASE + "/", adapter)
    client = QQClient(
        app_id=settings.app_id,
        app_key=settings.app_key,
        redirect_uri=settings.redirect_uri,
        base_url=settings.qq_base_url,
        session=session,
    )
    qq: InProcessQQ | StubQQ = StubQQ(client) if stub else adapter
    gate = QQGate(apps.bare, settings, qq_client=qq if stub else client)  # type: ignore[arg-type]
    return gate, fakeqq, qq


def measure(sign_ins: int, stub: bool) -> list[float]:
    gate, fakeqq, qq = build(stub)
    for _ in range(20):  # warm up
        one_sign_in(gate, fakeqq, qq)
    return [one_sign_in(gate, fakeqq, qq) for _ in range(sign_ins)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sign-ins", type=int, default=1000)
    args = parser.parse_args(argv)
    rows = [("gate + QQClient, QQ instant", False), ("gate routes, stub client", True)]
    print(f"python {sys.version.split()[0]}, {args.sign_ins} sign-ins each, CPU ms per sign-in\n")
    print(f"{'case':<30} {'median':>8} {'p90':>8} {'max':>8}")
    medians = {}
    for label, stub in rows:
        ms = measure(args.sign_ins, stub)
        medians[stub] = statistics.median(ms)
        p90 = statistics.quantiles(ms, n=10)[-1]
        print(f"{label:<30} {medians[stub]:8.3f} {p90:8.3f} {max(ms):8.3f}")
    ok = medians[False] < TARGET_MS
    verdict = "met" if ok else "MISSED"
    print(f"\ntarget < {TARGET_MS} ms beyond the QQ round trips: {medians[False]:.3f} ms", verdict)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
