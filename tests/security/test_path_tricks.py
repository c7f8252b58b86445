"""Path tricks against ``public_paths = /static/ /healthz``: nothing that is not plainly under a
public prefix may reach the app without a sign-in.

In-process, PATH_INFO is written the way a server hands it over: percent-decoded once (``%2f`` is
already ``/``, ``%252e`` is ``%2e``), as latin-1 text, and with ``//`` kept (built by hand, since
test clients fold a leading ``//`` into a host). Over a raw socket the request target goes to the
sample app behind the gate under gunicorn exactly as written.
"""

from __future__ import annotations

import pytest

from qqgate.paths import PublicPaths

from ..live import LiveGate
from ..rig import DOWNSTREAM_MARKER, blank, make_rig
from .conftest import echo_of, upstream_echo_of
from .support import get_head, raw_http

# (PATH_INFO as the app would receive it, QUERY_STRING)
IN_PROCESS = [
    pytest.param("/static/../admin", "", id="dot-dot"),
    pytest.param("/static/..", "", id="dot-dot-at-end"),
    pytest.param("/static/css/../../admin", "", id="dot-dot-twice"),
    pytest.param("/static/./../admin", "", id="dot-then-dot-dot"),
    pytest.param("/static/.", "", id="dot-at-end"),
    pytest.param("/healthz/../admin", "", id="exact-path-dot-dot"),
    pytest.param("/healthz/..", "", id="exact-path-dot-dot-at-end"),
    pytest.param("/static/../admin", "", id="static%2f..%2fadmin-decoded-by-server"),
    pytest.param("/static%2F..%2Fadmin", "", id="static%2f..%2fadmin-kept-by-server"),
    pytest.param("/static/%2e%2e/admin", "", id="double-encoded-dots"),
    pytest.param("/static/%2e%2e%2fadmin", "", id="double-encoded-dots-and-slash"),
    pytest.param("/static/%252e%252e/admin", "", id="triple-encoded-dots"),
    pytest.param("/%73tatic/x", "", id="encoded-letter-kept"),
    pytest.param("/static//../admin", "", id="double-slash-dot-dot"),
    pytest.param("//static/x", "", id="leading-double-slash"),
    pytest.param("//healthz", "", id="leading-double-slash-exact"),
    pytest.param("/static//x", "", id="inner-double-slash"),
    pytest.param("/healthz//", "", id="trailing-double-slash"),
    pytest.param("/static;/../admin", "", id="semicolon-before-dot-dot"),
    pytest.param("/static/..;/admin", "", id="tomcat-dot-dot-semicolon"),
    pytest.param("/healthz;x=1", "", id="matrix-parameter"),
    pytest.param("/static\\..\\admin", "", id="backslashes"),
    pytest.param("/static/..\\admin", "", id="dot-dot-backslash"),
    pytest.param("/healthz\\", "", id="trailing-backslash"),
    pytest.param("/static/x\x00/../../admin", "", id="nul-then-dot-dot"),
    pytest.param("/healthz\x00", "", id="trailing-nul"),
    pytest.param("/static/%00", "", id="nul-kept-encoded"),
    pytest.param("/static/x#/../../admin", "", id="hash"),
    pytest.param("/healthz#", "", id="trailing-hash"),
    pytest.param("/static/x%23/../../admin", "", id="hash-kept-encoded"),
    pytest.param("/static/x?/../../admin", "", id="question-mark-in-path"),
    pytest.param("/static/\t/../admin", "", id="tab"),
    pytest.param("/static/\n", "", id="newline"),
    pytest.param("/STATIC/x", "", id="upper-case"),
    pytest.param("/Static/x", "", id="title-case"),
    pytest.param("/HEALTHZ", "", id="upper-case-exact"),
    pytest.param("/staticx", "", id="no-segment-boundary"),
    pytest.param("/static.css", "", id="no-segment-boundary-dot"),
    pytest.param("/healthzz", "", id="exact-no-boundary"),
    pytest.param("/healthz.json", "", id="exact-no-boundary-dot"),
    pytest.param("/admin", "/static/x", id="query-is-a-public-path"),
    pytest.param("/admin", "x=/healthz", id="query-holds-a-public-path"),
    pytest.param("/admin", "/../static/", id="query-dot-dot-public"),
    pytest.param("/", "healthz", id="root-with-query"),
    pytest.param("", "/healthz", id="empty-path-with-query"),
    pytest.param("admin/../static/x", "", id="no-leading-slash"),
]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"Accept": "text/html"}, id="browser"),
        pytest.param({"Accept": "application/json"}, id="api"),
        pytest.param(
            {"Accept": "text/html", "X-Forwarded-Uri": "/static/x", "X-Original-URL": "/healthz"},
            id="forwarded-uri-headers",
        ),
        pytest.param(
            {"Accept": "text/html", "User-Agent": "kube-probe/1.29"}, id="health-check-agent"
        ),
    ],
)
@pytest.mark.parametrize(("path", "query"), IN_PROCESS)
def test_in_process_tricks_never_reach_app(path: str, query: str, headers) -> None:
    rig = make_rig()
    response = rig.call(blank(path, query, headers=headers))
    assert response.status_int in (302, 401), (response.status, response.text[:200])
    assert rig.app.calls == [], f"the app was called with {rig.app.calls}"
    assert DOWNSTREAM_MARKER not in response.text


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/static/app.css", id="under-prefix"),
        pytest.param("/static/", id="prefix"),
        pytest.param("/healthz", id="exact"),
        pytest.param("/static/...", id="three-dots-is-a-name"),
    ],
)
def test_plain_public_paths_do_reach_app(path: str) -> None:
    """Control: the tricks above are refused because they are tricks, not because nothing passes."""
    rig = make_rig()
    assert rig.call(blank(path)).status_int == 200
    assert [call["PATH_INFO"] for call in rig.app.calls] == [path]


# --- through gunicorn, on a raw socket --------------------------------------------------------------

# Every target aims at /headers.json (protected by the strict gate) or at a non-normal path.
RAW_TARGETS = [
    pytest.param(b"/static/../headers.json", b"", id="dot-dot"),
    pytest.param(b"/static/%2e%2e/headers.json", b"", id="encoded-dots"),
    pytest.param(b"/static/%2E%2E/headers.json", b"", id="encoded-dots-upper"),
    pytest.param(b"/static%2f..%2fheaders.json", b"", id="encoded-slashes"),
    pytest.param(b"/static/..%2fheaders.json", b"", id="dot-dot-encoded-slash"),
    pytest.param(b"/static/%2e%2e%2fheaders.json", b"", id="all-encoded"),
    pytest.param(b"/static/%252e%252e/headers.json", b"", id="double-encoded"),
    pytest.param(b"/static/%252e%252e%252fheaders.json", b"", id="double-encoded-slash"),
    pytest.param(b"/static//../headers.json", b"", id="double-slash"),
    pytest.param(b"//static/../headers.json", b"", id="leading-double-slash"),
    pytest.param(b"//headers.json", b"", id="leading-double-slash-target"),
    pytest.param(b"/static;/../headers.json", b"", id="semicolon"),
    pytest.param(b"/static/..;/headers.json", b"", id="dot-dot-semicolon"),
    pytest.param(b"/static\\..\\headers.json", b"", id="backslashes"),
    pytest.param(b"/static/%5c..%5cheaders.json", b"", id="encoded-backslashes"),
    pytest.param(b"/static/%00/../../headers.json", b"", id="encoded-nul"),
    pytest.param(b"/healthz%00", b"", id="exact-encoded-nul"),
    pytest.param(b"/healthz/../headers.json", b"", id="exact-dot-dot"),
    pytest.param(b"/healthz%2f..%2fheaders.json", b"", id="exact-encoded-slashes"),
    pytest.param(b"/healthz%23/../headers.json", b"", id="encoded-hash"),
    pytest.param(b"/headers.json#/static/x", b"", id="fragment-names-public"),
    pytest.param(b"/headers.json?/static/x", b"", id="query-names-public"),
    pytest.param(b"/headers.json?x=/healthz", b"", id="query-param-names-public"),
    pytest.param(b"/HEALTHZ", b"", id="upper-case"),
    pytest.param(b"/Static/../headers.json", b"", id="title-case-dot-dot"),
    pytest.param(b"/staticx/../headers.json", b"", id="no-boundary"),
    pytest.param(b"/static/x/../../headers.json", b"", id="dot-dot-twice"),
    pytest.param(b"/static/\t/../headers.json", b"", id="raw-tab"),
    pytest.param(b"/_qqgate/../headers.json", b"", id="gate-prefix-dot-dot"),
    pytest.param(b"/_qqgate/%2e%2e/headers.json", b"", id="gate-prefix-encoded-dots"),
    pytest.param(b"http://127.0.0.1/static/../headers.json", b"", id="absolute-form"),
    pytest.param(b"http://evil.example/headers.json", b"", id="absolute-form-other-host"),
    pytest.param(b"/x/headers.json", b"SCRIPT_NAME: /x\r\n", id="script-name-header"),
    pytest.param(b"/headers.json", b"X-Forwarded-Uri: /static/x\r\n", id="x-forwarded-uri"),
    pytest.param(b"/headers.json", b"X-Original-URL: /healthz\r\n", id="x-original-url"),
    pytest.param(b"/headers.json", b"X-Rewrite-URL: /healthz\r\n", id="x-rewrite-url"),
    pytest.param(b"/headers.json", b"User-Agent: kube-probe/1.29\r\n", id="health-check-agent"),
]


@pytest.mark.parametrize(("target", "extra"), RAW_TARGETS)
def test_raw_socket_tricks_never_reach_app(
    strict_gate: LiveGate, target: bytes, extra: bytes
) -> None:
    response = raw_http(strict_gate.port, get_head(target, extra))
    assert 0 < response.status < 500, (response.status, response.text[:300])
    # 302/401 from the gate, 404 for an unknown gate route, 400 from gunicorn's parser.
    assert response.status in (302, 400, 401, 404), (response.status, response.text[:300])
    assert 'id="greeting"' not in response.text, "the sample app answered"
    assert echo_of(response.body) is None, "the sample app's echo answered"


def test_raw_socket_control(strict_gate: LiveGate) -> None:
    """Control: a public path does reach the sample app over the same socket helper."""
    response = raw_http(strict_gate.port, get_head(b"/healthz"))
    assert response.status == 200 and 'id="greeting"' in response.text


# --- proxy mode: the gate forwards the raw request target; the upstream must only ever serve an
# anonymous visitor a path that is public by the upstream's own reading of it -----------------------

PUBLIC = PublicPaths(["/static/", "/healthz"])
PROXY_ONLY = [
    pytest.param(b"/admin/healthz", b"SCRIPT_NAME: /admin\r\n", id="script-name-hides-prefix"),
    pytest.param(b"/admin/static/x", b"SCRIPT_NAME: /admin\r\n", id="script-name-hides-prefix-2"),
    pytest.param(b"/healthz", b"PATH_INFO: /admin\r\n", id="path-info-header"),
    pytest.param(b"/healthz#/../admin", b"", id="fragment-dot-dot"),
    pytest.param(b"/static/x#/../../admin", b"", id="fragment-dot-dot-static"),
    pytest.param(b"/healthz?x=1#/../../admin", b"", id="query-then-fragment"),
]


@pytest.mark.parametrize(("target", "extra"), RAW_TARGETS + PROXY_ONLY)
def test_proxy_mode_upstream_serves_anonymous_visitors_only_public_paths(
    proxy_gate: LiveGate, target: bytes, extra: bytes
) -> None:
    response = raw_http(proxy_gate.port, get_head(target, extra))
    assert 0 < response.status < 500, (response.status, response.text[:300])
    seen = upstream_echo_of(response.body)
    if seen is None:
        assert response.status in (302, 400, 401, 404), (response.status, response.text[:300])
        return
    assert seen["path"] in PUBLIC, (
        f"the upstream served {seen['path']!r} (raw {seen['raw_uri']!r}) without a sign-in"
    )
