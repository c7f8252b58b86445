"""The access log of ``qqgate serve``: a full sign-in leaves no code and no state in any log line."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from qqgate.accesslog import redact_query, redact_uri

from .operated import new_gate
from .test_e2e import HTML, approve


@pytest.mark.parametrize(
    ("environ", "logged"),
    [
        pytest.param({"QUERY_STRING": "code=ABC&state=XYZ"}, "code=[redacted]&state=[redacted]"),
        pytest.param(
            {"QUERY_STRING": "a=1&msg=x", "qqgate.redact_query": True}, "[redacted]", id="callback"
        ),
        pytest.param({"QUERY_STRING": "x=1&Access_Token=t&y=2"}, "x=1&Access_Token=[redacted]&y=2"),
        pytest.param({"QUERY_STRING": "barcode=1&codex=2"}, "barcode=1&codex=2", id="lookalikes"),
        pytest.param({}, "", id="no-query"),
    ],
)
def test_redact_query(environ, logged) -> None:
    assert redact_query(environ) == logged


def test_redact_uri_keeps_the_path() -> None:
    assert redact_uri("/_qqgate/callback?code=1", "[redacted]") == "/_qqgate/callback?[redacted]"
    assert redact_uri("/x?code=1", "") == "/x"


def test_a_full_sign_in_leaves_no_code_or_state_in_the_logs(tmp_path, provider) -> None:
    _, gate = new_gate(tmp_path, provider)
    gate.start()
    try:
        browser = requests.Session()
        consent = browser.get(f"{gate.url}/_qqgate/login?next=/after", headers=HTML, timeout=30)
        state = parse_qs(urlsplit(consent.url).query)["state"][0]
        page = approve(browser, consent, "xiaoming")
        callback = next(r for r in page.history if "/_qqgate/callback" in r.url)
        code = parse_qs(urlsplit(callback.url).query)["code"][0]
        assert callback.status_code == 302 and "qqgate=" in callback.headers["Set-Cookie"]
        # A sign-in started by hand with credential-like parameters on another path.
        requests.get(f"{gate.url}/_qqgate/ping?code={code}&state={state}", timeout=30)
    finally:
        output = gate.stop()
    assert "sign-in ok" in output
    assert '"GET /_qqgate/callback?[redacted] HTTP/1.1" 302' in output, output
    assert "/_qqgate/ping?code=[redacted]&state=[redacted]" in output, output
    for secret in (code, state):
        assert secret not in output, output
