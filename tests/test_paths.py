from __future__ import annotations

import pytest

from qqgate.paths import PublicPaths

PUBLIC = PublicPaths(["/static/", "/healthz", "/docs/api/"])


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/static/app.css", id="under-prefix"),
        pytest.param("/static/", id="prefix-itself"),
        pytest.param("/static", id="prefix-without-slash"),
        pytest.param("/healthz", id="exact"),
        pytest.param("/healthz/deep", id="below-exact"),
        pytest.param("/docs/api/index.html", id="nested-prefix"),
    ],
)
def test_public(path: str) -> None:
    assert path in PUBLIC


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("/admin", id="other"),
        pytest.param("/", id="root"),
        pytest.param("/static/../admin", id="dot-dot"),
        pytest.param("/static/..", id="dot-dot-end"),
        pytest.param("/static/./x", id="dot"),
        pytest.param("/static//x", id="double-slash"),
        pytest.param("//static/x", id="leading-double-slash"),
        pytest.param("/static/%2e%2e/admin", id="double-encoded-dots"),
        pytest.param("/static/%2fadmin", id="double-encoded-slash"),
        pytest.param("/static\\..\\admin", id="backslash"),
        pytest.param("/static/x;/../admin", id="semicolon"),
        pytest.param("/static/x\x00", id="nul"),
        pytest.param("/static/x#/../../admin", id="hash"),
        pytest.param("/static/x?/../admin", id="question-mark"),
        pytest.param("/STATIC/x", id="case"),
        pytest.param("/staticfoo", id="no-segment-boundary"),
        pytest.param("/healthzz", id="exact-no-boundary"),
        pytest.param("/docs/apix", id="nested-no-boundary"),
        pytest.param("", id="empty"),
    ],
)
def test_not_public(path: str) -> None:
    assert path not in PUBLIC


def test_empty_list_matches_nothing() -> None:
    assert "/static/x" not in PublicPaths([])
    assert not PublicPaths([])
