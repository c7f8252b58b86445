"""Every answer the gate gives passes ``wsgiref.validate``, the WSGI spec's own checker, wrapped
around the gate on both sides (what the server hands it, what it hands the app), for every route
and outcome, in middleware mode and in proxy mode. Every ``Location`` it writes is relative or
comes from configuration, never from the client's ``Host``."""

from __future__ import annotations

import warnings
from urllib.parse import parse_qs, urlsplit
from wsgiref.validate import WSGIWarning, validator

import pytest
from webob import Response

from qqgate import QQGate
from qqgate.pages import Pages
from qqgate.upstream.proxy import UpstreamProxy

from .conftest import FakeClock, make_settings
from .rig import Downstream, Rig, StubQQ, blank, set_cookie_value
from .test_proxy import ScriptedUpstream

# A WSGI object left unclosed is reported when it is collected: that fails the test too.
pytestmark = pytest.mark.filterwarnings("error::pytest.PytestUnraisableExceptionWarning")

SIGNED_IN, OUTSIDER, ANONYMOUS = "signed-in", "not-allowed", "anonymous"
HTML = {"Accept": "text/html", "Host": "evil.example"}
API = {"Accept": "application/json", "Host": "evil.example"}
UPSTREAM_ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok",
    False,
)


def gate_in(mode: str, allowed: str = "") -> tuple[Rig, object]:
    """A gate validated on both sides: in middleware mode around an app, in proxy mode around
    the proxy to a scripted upstream."""
    clock, qq, app = FakeClock(), StubQQ(), Downstream()
    settings = make_settings(allowed_openids=allowed) if allowed else make_settings()
    inner: object = app
    if mode == "proxy":
        upstream = ScriptedUpstream([UPSTREAM_ANSWER] * 50)
        inner = UpstreamProxy(upstream.url, timeout=5, pages=Pages(settings))
    gate = QQGate(validator(inner), settings, qq_client=qq, clock=clock)
    return Rig(gate, app, clock, qq), validator(gate)


def cookie_for(rig: Rig, who: str) -> str | None:
    if who == ANONYMOUS:
        return None
    openid = "F" * 32 if who == OUTSIDER else "0123456789ABCDEF0123456789ABCDEF"
    return f"qqgate={rig.session_for(openid=openid)}"


# (path, query, method, headers, who, expected status)
CASES = [
    ("/private", "", "GET", HTML, ANONYMOUS, 302),
    ("/private", "", "GET", API, ANONYMOUS, 401),
    ("/private", "", "POST", HTML, ANONYMOUS, 401),
    ("/private", "", "HEAD", HTML, ANONYMOUS, 302),
    ("/static/app.css", "", "GET", HTML, ANONYMOUS, 200),
    ("/private", "", "GET", HTML, SIGNED_IN, 200),
    ("/private", "", "HEAD", HTML, SIGNED_IN, 200),
    ("/private", "", "GET", HTML, OUTSIDER, 403),
    ("/_qqgate/ping", "", "GET", API, ANONYMOUS, 200),
    ("/_qqgate/userinfo", "", "GET", API, SIGNED_IN, 200),
    ("/_qqgate/userinfo", "", "GET", API, ANONYMOUS, 401),
    ("/_qqgate/auth", "", "GET", API, SIGNED_IN, 202),
    ("/_qqgate/auth", "", "GET", HTML, ANONYMOUS, 401),
    ("/_qqgate/auth", "", "GET", API, OUTSIDER, 403),
    ("/_qqgate/login", "next=%2Fafter", "GET", HTML, ANONYMOUS, 302),
    ("/_qqgate/sign_in", "next=%2Fafter", "GET", HTML, ANONYMOUS, 200),
    ("/_qqgate/sign_in", "next=%2Fafter", "GET", HTML, SIGNED_IN, 302),
    ("/_qqgate/sign_in", "", "POST", HTML, ANONYMOUS, 405),
    ("/_qqgate/logout", "", "GET", HTML, SIGNED_IN, 200),
    ("/_qqgate/logout", "next=%2Fbye", "POST", HTML, SIGNED_IN, 302),
    ("/_qqgate/logout", "", "PUT", HTML, SIGNED_IN, 405),
    ("/_qqgate/callback", "", "GET", HTML, ANONYMOUS, 400),
    ("/_qqgate/callback", "code=abc&state=nope", "GET", HTML, ANONYMOUS, 400),
    ("/_qqgate/nothing-here", "", "GET", HTML, ANONYMOUS, 404),
]


def run(app, request) -> Response:
    """What a server does: call, iterate the body, close it; then the answer as a WebOb
    response to read. The checker's warnings fail the test as its errors do."""
    answer: dict[str, object] = {}

    def start_response(status, headers, exc_info=None):
        answer.update(status=status, headers=headers)
        return lambda data: None

    with warnings.catch_warnings():
        warnings.simplefilter("error", WSGIWarning)
        body = app(request.environ, start_response)
        try:
            data = b"".join(body)
        finally:
            body.close()
    return Response(body=data, status=answer["status"], headerlist=answer["headers"])


def assert_location_is_ours(response) -> None:
    location = response.headers.get("Location")
    if location is None:
        return
    parts = urlsplit(location)
    assert parts.netloc in ("", "graph.qq.com"), f"Location from the client's Host: {location}"


@pytest.mark.parametrize("mode", ["middleware", "proxy"])
@pytest.mark.parametrize(
    ("path", "query", "method", "headers", "who", "status"),
    [pytest.param(*case, id=f"{case[2]} {case[0]}?{case[1]} {case[4]}") for case in CASES],
)
def test_every_answer_passes_the_wsgi_checker(mode, path, query, method, headers, who, status):
    allowed = "0123456789ABCDEF0123456789ABCDEF" if who == OUTSIDER else ""
    rig, app = gate_in(mode, allowed)
    request = blank(path, query, cookie=cookie_for(rig, who), headers=headers, method=method)
    response = run(app, request)
    assert response.status_int == status, response.body[:300]
    assert_location_is_ours(response)


@pytest.mark.parametrize("mode", ["middleware", "proxy"])
def test_a_whole_sign_in_passes_the_wsgi_checker(mode) -> None:
    rig, app = gate_in(mode)
    login = run(app, blank("/_qqgate/login", "next=%2Fafter", headers=HTML))
    state = parse_qs(urlsplit(login.location).query)["state"][0]
    pending = set_cookie_value(login, "qqgate_state")
    code = rig.qq.issue_code()
    callback = run(
        app,
        blank(
            "/_qqgate/callback",
            f"code={code}&state={state}",
            cookie=f"qqgate_state={pending}",
            headers=HTML,
        ),
    )
    assert callback.status_int == 302 and callback.location == "/after"
    session = set_cookie_value(callback, "qqgate")
    after = run(app, blank("/after", cookie=f"qqgate={session}", headers=HTML))
    assert after.status_int == 200
