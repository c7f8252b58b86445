"""Signing out: a link or form on another site cannot do it (it gets a page that asks, with a form
posting from the gate's own page); the gate's own pages, typed URLs and POSTs still can."""

from __future__ import annotations

import re
from html import unescape

import pytest

from .rig import SITE, Rig, blank, make_rig


@pytest.fixture
def rig() -> Rig:
    return make_rig(cookie_name="qqgate")


def _signs_out(response) -> bool:
    return any(
        h.startswith("qqgate=;") and "Max-Age=0" in h for h in response.headers.getall("Set-Cookie")
    )


# (method, request headers) -> does the answer sign out (else: the confirm page)
CASES = [
    pytest.param("GET", {"Sec-Fetch-Site": "same-origin"}, True, id="get-same-origin"),
    pytest.param("GET", {"Sec-Fetch-Site": "same-site"}, True, id="get-same-site"),
    pytest.param("GET", {"Sec-Fetch-Site": "none"}, True, id="get-typed-or-bookmarked"),
    pytest.param("GET", {"Referer": f"{SITE}/app"}, True, id="get-own-referer"),
    pytest.param("POST", {"Origin": SITE}, True, id="post-own-origin"),
    pytest.param("POST", {}, True, id="post-no-signal"),
    pytest.param("POST", {"Sec-Fetch-Site": "same-origin"}, True, id="post-same-origin"),
    pytest.param("GET", {"Sec-Fetch-Site": "cross-site"}, False, id="get-cross-site"),
    pytest.param("GET", {}, False, id="get-no-signal"),
    pytest.param("HEAD", {}, False, id="head-no-signal"),
    pytest.param("GET", {"Referer": "https://evil.example/x"}, False, id="get-foreign-referer"),
    pytest.param("GET", {"Origin": "null"}, False, id="get-null-origin"),
    pytest.param("POST", {"Sec-Fetch-Site": "cross-site"}, False, id="post-cross-site"),
    pytest.param("POST", {"Origin": "https://evil.example"}, False, id="post-foreign-origin"),
    pytest.param(
        "GET",
        {"Sec-Fetch-Site": "cross-site", "Referer": f"{SITE}/"},
        False,
        id="fetch-metadata-wins-over-referer",
    ),
]


@pytest.mark.parametrize(("method", "headers", "signs_out"), CASES)
def test_only_our_own_site_signs_the_visitor_out(rig: Rig, method, headers, signs_out) -> None:
    cookie = f"qqgate={rig.session_for()}"
    response = rig.call(blank("/_qqgate/logout", cookie=cookie, headers=headers, method=method))
    assert _signs_out(response) is signs_out
    if not signs_out:
        assert response.status_int == 200 and "no-store" in response.headers["Cache-Control"]


def test_the_confirm_page_posts_to_logout_with_the_validated_next(rig: Rig) -> None:
    cookie = f"qqgate={rig.session_for()}"
    headers = {"Sec-Fetch-Site": "cross-site", "Accept-Language": "en"}
    asked = rig.call(
        blank("/_qqgate/logout", "next=//evil.example", cookie=cookie, headers=headers)
    )
    assert "Sign out?" in asked.text
    form = re.search(r'<form class="actions" method="post" action="([^"]*)">', asked.text)
    assert form is not None
    action = unescape(form.group(1))
    assert action == "/_qqgate/logout?next=%2F"
    path, _, query = action.partition("?")
    same = {"Sec-Fetch-Site": "same-origin", "Origin": SITE}
    done = rig.call(blank(path, query, cookie=cookie, headers=same, method="POST"))
    assert done.status_int == 302 and done.location.endswith("/") and _signs_out(done)


def test_a_visitor_not_signed_in_gets_the_signed_out_page_from_anywhere(rig: Rig) -> None:
    response = rig.call(blank("/_qqgate/logout", headers={"Sec-Fetch-Site": "cross-site"}))
    assert response.status_int == 200 and "Signed out" in response.text
