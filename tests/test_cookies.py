from __future__ import annotations

import pytest

from qqgate.cookies import cookie_values, set_cookie


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("qqgate=abc", ["abc"], id="only"),
        pytest.param("a=1; qqgate=abc; b=2", ["abc"], id="among-others"),
        pytest.param('qqgate="abc"', ["abc"], id="quoted"),
        pytest.param("qqgate=one; qqgate=two", ["one", "two"], id="duplicates-in-order"),
        pytest.param("bad cookie ===; qqgate=abc", ["abc"], id="malformed-neighbour"),
        pytest.param("\x00\xff; qqgate=abc", ["abc"], id="binary-neighbour"),
        pytest.param("qqgate_state=x; xqqgate=y", [], id="similar-names"),
        pytest.param("", [], id="empty"),
        pytest.param("qqgate", [], id="no-equals"),
    ],
)
def test_cookie_values(header: str, expected: list[str]) -> None:
    assert cookie_values(header, "qqgate") == expected


def test_junk_in_front_does_not_hide_the_last_value() -> None:
    header = "; ".join([*(f"qqgate=junk{i}" for i in range(50)), "qqgate=valid"])
    values = cookie_values(header, "qqgate")
    assert len(values) == 51 and values[-1] == "valid"


def test_repeated_values_are_returned_once() -> None:
    assert cookie_values("qqgate=a; qqgate=b; qqgate=a", "qqgate") == ["a", "b"]


def test_set_cookie_has_secure_attributes() -> None:
    name, value = set_cookie("qqgate", "tok", max_age=60, domain="example.com")
    assert name == "Set-Cookie"
    assert (
        value
        == "qqgate=tok; Max-Age=60; Path=/; Domain=example.com; Secure; HttpOnly; SameSite=Lax"
    )


def test_delete_cookie() -> None:
    _, value = set_cookie("qqgate", "", max_age=0, path="/_qqgate", secure=False, samesite="strict")
    assert "Max-Age=0" in value and "Expires=Thu, 01 Jan 1970" in value
    assert "Secure" not in value and "SameSite=Strict" in value and "Path=/_qqgate" in value
