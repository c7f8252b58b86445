from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qqgate.redirects import request_target, safe_next

SITE = "https://app.example.com/here/page"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("/", "/", id="root"),
        pytest.param("/admin?tab=1&x=2#top", "/admin?tab=1&x=2#top", id="path-query-fragment"),
        pytest.param("/a/%2F%2Fb", "/a/%2F%2Fb", id="escapes-kept"),
        pytest.param(
            "/中文/页面", "/%E4%B8%AD%E6%96%87/%E9%A1%B5%E9%9D%A2", id="non-ascii-encoded"
        ),
        pytest.param('/"><script>', "/%22%3E%3Cscript%3E", id="markup-encoded"),
        pytest.param("/..//evil.example", "/..//evil.example", id="dot-segments-stay-on-site"),
    ],
)
def test_same_site_paths_survive(value: str, expected: str) -> None:
    assert safe_next(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(None, id="none"),
        pytest.param("", id="empty"),
        pytest.param("//evil.example", id="protocol-relative"),
        pytest.param("///evil.example", id="triple-slash"),
        pytest.param("/\\evil.example", id="slash-backslash"),
        pytest.param("\\\\evil.example", id="double-backslash"),
        pytest.param("/\t/evil.example", id="tab"),
        pytest.param("/\n/evil.example", id="newline"),
        pytest.param("/\r/evil.example", id="carriage-return"),
        pytest.param(" //evil.example", id="leading-space"),
        pytest.param("\x00//evil.example", id="leading-nul"),
        pytest.param("https://evil.example", id="absolute"),
        pytest.param("https:evil.example", id="scheme-relative"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("evil.example", id="no-slash"),
        pytest.param("/" + "a" * 3000, id="oversized"),
        pytest.param("/\x7f/evil", id="del"),
        pytest.param("/ /evil", id="space"),
    ],
)
def test_everything_else_becomes_root(value) -> None:
    assert safe_next(value) == "/"


def test_custom_default() -> None:
    assert safe_next("//evil", default="/home") == "/home"


@given(st.text(max_size=60))
def test_nothing_accepted_leaves_the_site(value: str) -> None:
    result = safe_next(value)
    resolved = urlsplit(urljoin(SITE, result))
    assert resolved.scheme == "https" and resolved.netloc == "app.example.com"
    assert result.isascii() and result.startswith("/") and not result.startswith("//")


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        pytest.param({"PATH_INFO": "/a/b", "QUERY_STRING": "x=1"}, "/a/b?x=1", id="path-and-query"),
        pytest.param({"SCRIPT_NAME": "/app", "PATH_INFO": "/p"}, "/app/p", id="script-name"),
        pytest.param({"PATH_INFO": "/中".encode().decode("latin-1")}, "/%E4%B8%AD", id="utf8-path"),
        pytest.param({"PATH_INFO": "/a b"}, "/a%20b", id="space"),
    ],
)
def test_request_target(environ, expected) -> None:
    assert request_target(environ) == expected
