"""The visitor's address behind proxies (issue 13): ``X-Forwarded-For`` is believed only from
``trusted_proxies``, walked from the right past trusted hops; a spoofed header from anywhere else
never reaches a log line."""

from __future__ import annotations

import logging
import re

import pytest
import requests
from webtest import TestApp

from qqgate.config import ConfigError
from qqgate.forwarded import TrustedProxies
from qqgate.middleware import QQGate
from qqgate.values import networks

from .conftest import make_settings
from .operated import new_gate

PROXIES = TrustedProxies(networks("127.0.0.1 10.0.0.0/8 ::1"))


@pytest.mark.parametrize(
    ("remote", "forwarded_for", "client"),
    [
        pytest.param("203.0.113.9", "", "203.0.113.9", id="direct"),
        pytest.param("203.0.113.9", "198.51.100.1", "203.0.113.9", id="spoof-from-untrusted"),
        pytest.param("127.0.0.1", "", "127.0.0.1", id="proxy-without-header"),
        pytest.param("127.0.0.1", "198.51.100.1", "198.51.100.1", id="one-proxy"),
        pytest.param("127.0.0.1", "6.6.6.6, 198.51.100.1", "198.51.100.1", id="spoof-before-it"),
        pytest.param("127.0.0.1", "198.51.100.1, 10.1.2.3", "198.51.100.1", id="two-proxies"),
        pytest.param("127.0.0.1", "10.0.0.1,10.0.0.2", "10.0.0.1", id="all-trusted"),
        pytest.param("127.0.0.1", "198.51.100.1, nonsense", "127.0.0.1", id="garbage"),
        pytest.param("::1", "2001:db8::7", "2001:db8::7", id="ipv6"),
        pytest.param("127.0.0.1", "[2001:db8::7]", "2001:db8::7", id="bracketed"),
        pytest.param("11.0.0.1", "198.51.100.1", "11.0.0.1", id="outside-the-cidr"),
    ],
)
def test_client_address(remote, forwarded_for, client) -> None:
    environ = {"REMOTE_ADDR": remote, "HTTP_X_FORWARDED_FOR": forwarded_for}
    assert PROXIES.client(environ) == client


def test_nobody_trusted_means_the_header_is_ignored() -> None:
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "198.51.100.1"}
    assert TrustedProxies(()).client(environ) == "127.0.0.1"


def test_a_bad_entry_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=re.escape("'10.0.0/33' is not an IP address")):
        make_settings(trusted_proxies="127.0.0.1 10.0.0/33")


def _denied_client(caplog, trusted: str, remote: str, forwarded_for: str) -> str:
    app = TestApp(QQGate(lambda e, s: [], make_settings(trusted_proxies=trusted)))
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="qqgate"):
        app.get(
            "/_qqgate/callback?code=c&state=s",
            headers={"X-Forwarded-For": forwarded_for},
            extra_environ={"REMOTE_ADDR": remote},
            status=400,
        )
    (line,) = [r.getMessage() for r in caplog.records if "sign-in failed" in r.getMessage()]
    return line.rsplit("client=", 1)[1]


def test_the_gates_log_lines_name_the_visitor(caplog) -> None:
    assert _denied_client(caplog, "127.0.0.1", "127.0.0.1", "198.51.100.1") == "198.51.100.1"
    assert _denied_client(caplog, "127.0.0.1", "203.0.113.9", "198.51.100.1") == "203.0.113.9"
    assert _denied_client(caplog, "", "127.0.0.1", "198.51.100.1") == "127.0.0.1"


@pytest.mark.parametrize(
    ("trusted", "logged"),
    [
        pytest.param("127.0.0.1", "198.51.100.1", id="trusted"),
        pytest.param("10.0.0.0/8", "127.0.0.1", id="spoofed-from-untrusted"),
    ],
)
def test_access_log_and_events_through_real_gunicorn(tmp_path, provider, trusted, logged) -> None:
    _, gate = new_gate(tmp_path, provider, trusted_proxies=trusted)
    gate.start()
    try:
        headers = {"X-Forwarded-For": "6.6.6.6, 198.51.100.1"}
        answer = requests.get(f"{gate.url}/_qqgate/callback?code=c&state=s", headers=headers)
        assert answer.status_code == 400
        elsewhere = requests.get(f"{gate.url}/not-the-gates", headers=headers, timeout=30)
        assert elsewhere.status_code == 404  # routes only: answered beside the gate
    finally:
        output = gate.stop()
    assert f"sign-in failed reason=state_mismatch client={logged}" in output, output
    assert f"\n{logged} - [" in output, output
    (beside,) = [line for line in output.splitlines() if "/not-the-gates" in line]
    assert beside.startswith(f"{logged} - ["), beside
    assert "6.6.6.6" not in output
