"""Callback input: whatever QQ or an attacker puts in the callback URL gets a clear 400 page that
never carries the input unescaped, no session, no header injection, and (when the code or state is
unusable) no call to QQ.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest

from ..rig import Rig, blank, make_rig, sets_session

XSS = "%3Cscript%3Ealert(1)%3C%2Fscript%3E"
XSS_TEXT = "<script>alert(1)</script>"

# (query after a started login; "{state}" is this browser's state). All must be refused.
BAD_CALLBACKS = [
    pytest.param("state={state}", id="missing-code"),
    pytest.param("code=&state={state}", id="empty-code"),
    pytest.param("error=access_denied&state={state}", id="error-access-denied"),
    pytest.param(
        "error=access_denied&error_description=" + XSS + "&state={state}",
        id="error-description-script",
    ),
    pytest.param("usercancel=1&state={state}", id="usercancel"),
    pytest.param("usercancel=1", id="usercancel-without-state"),
    pytest.param("code=100019&msg=" + XSS + "&state={state}", id="qq-error-as-code-and-msg"),
    pytest.param("msg=" + XSS + "&state={state}", id="msg-script"),
    pytest.param("error=" + XSS + "&state={state}", id="error-script"),
    pytest.param(
        "error=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&state={state}", id="error-img-onerror"
    ),
    pytest.param("error=%3Csvg%2Fonload%3Dalert(1)%3E", id="error-svg-onload"),
    pytest.param("code=" + XSS + "&state=" + XSS, id="code-and-state-script"),
    pytest.param(
        "code=%22%3E%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E&state=x", id="code-img-onerror"
    ),
    pytest.param("code=" + "C" * 600 + "&state={state}", id="oversized-code"),
    pytest.param("code=C&state={state}&junk=" + "J" * 9000, id="oversized-query"),
    pytest.param(
        "&".join(f"p{i}=v" for i in range(100)) + "&code=C&state={state}", id="too-many-parameters"
    ),
    pytest.param("code=%zz&state=%zz", id="invalid-percent-zz"),
    pytest.param("code=%FF%FE&state={state}", id="invalid-utf8-code"),
    pytest.param("code=%&state={state}%", id="lone-percent"),
    pytest.param("code=%E4%B8%AD&state={state}", id="non-ascii-code"),
    pytest.param("code=\xe4\xb8\xad&state={state}", id="raw-utf8-code"),
    pytest.param("code=\xff\xfe&state={state}", id="raw-latin-1-code"),
    pytest.param("code=A%00B&state={state}", id="nul-in-code"),
    pytest.param("code=A%0D%0ASet-Cookie:%20qqgate=evil&state={state}", id="crlf-in-code"),
    pytest.param("code=A%0D%0ALocation:%20https://evil.example&state={state}", id="crlf-location"),
    pytest.param("code=C&state={state}%0D%0ASet-Cookie:%20qqgate=evil", id="crlf-in-state"),
    pytest.param("code=C&code=D&state={state}", id="duplicate-code"),
    pytest.param("code=C&state={state}&state={state}", id="duplicate-state"),
    pytest.param("code[]=C&state[]={state}", id="array-syntax"),
    pytest.param("CODE=C&STATE={state}", id="upper-case-names"),
    pytest.param(";code=C;state={state}", id="semicolon-separators"),
    pytest.param("", id="empty-query"),
]

UNESCAPED_MARKUP = ("<script", "<img", "<svg", "onerror=", "onload=", "alert(1)", "javascript:")


def assert_clean_refusal(rig: Rig, response) -> None:
    assert response.status_int == 400, (response.status, response.text[:300])
    assert response.content_type == "text/html"
    body = response.text
    for marker in UNESCAPED_MARKUP:
        assert marker not in body, f"{marker!r} reflected in the page"
    assert "evil" not in body
    assert response.headers.get("Location") is None
    headers = "\n".join(f"{k}: {v}" for k, v in response.headerlist)
    assert "evil" not in headers and "\r" not in headers
    assert not sets_session(response)
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert "/_qqgate/login" in body, "the page should offer a fresh sign-in"


@pytest.mark.parametrize("query", BAD_CALLBACKS)
def test_bad_callback_input_gets_a_clean_400(query: str) -> None:
    rig = make_rig()
    state, cookie = rig.login()
    response = rig.call(
        blank("/_qqgate/callback", query.replace("{state}", state), cookie=f"qqgate_state={cookie}")
    )
    assert_clean_refusal(rig, response)
    # Only QQ's documented "code=<error number>&msg=..." form carries a printable code with this
    # browser's state; the gate may pass that code to QQ (which refuses it). Nothing else reaches QQ.
    allowed = [["100019"]] if query.startswith("code=100019&msg=") else []
    assert rig.qq.redeemed in ([], *allowed), rig.qq.redeemed


@pytest.mark.parametrize(
    "code",
    [
        pytest.param(XSS_TEXT, id="script"),
        pytest.param('"><img src=x onerror=alert(1)>', id="img"),
        pytest.param("javascript:alert(1)", id="javascript"),
    ],
)
def test_markup_in_a_code_qq_rejects_is_not_reflected(code: str) -> None:
    """A printable code with a valid state goes to QQ; QQ's refusal page must not echo it."""
    rig = make_rig()
    state, cookie = rig.login()
    query = f"code={quote(code, safe='')}&state={state}"
    response = rig.call(blank("/_qqgate/callback", query, cookie=f"qqgate_state={cookie}"))
    assert_clean_refusal(rig, response)
    assert rig.qq.redeemed == [code]


# --- the gate's other pages, with hostile values from the request or from QQ ---------------------

HOSTILE_HOSTS = [
    pytest.param('"><script>alert(1)</script>', id="host-script"),
    pytest.param("evil.example/<svg/onload=alert(1)>", id="host-svg"),
    pytest.param("a' onmouseover='alert(1)", id="host-attribute"),
    pytest.param("$content${title}{site}{0}%(x)s", id="host-template-syntax"),
    pytest.param("<img src=x onerror=alert(1)>" * 200, id="host-long"),
]

PAGES = [
    pytest.param("/_qqgate/sign_in", "next=%2Fafter", id="sign-in-page"),
    pytest.param("/_qqgate/callback", "error=access_denied", id="callback-error-page"),
    pytest.param("/_qqgate/logout", "", id="signed-out-page"),
    pytest.param("/_qqgate/no-such-route", "", id="not-found-page"),
]


@pytest.mark.parametrize(("path", "query"), PAGES)
@pytest.mark.parametrize("host", HOSTILE_HOSTS)
def test_pages_never_reflect_the_host_unescaped(path: str, query: str, host: str) -> None:
    """Pages name the site after the Host header when no site_name is set: escaped, always."""
    rig = make_rig()
    response = rig.call(blank(path, query, environ={"HTTP_HOST": host}))
    assert response.status_int < 500, response.text[:300]
    assert_no_injected_markup(response.text, host[:100])


INJECTED = ("<script", "<img", "<svg/", "onmouseover='")


def assert_no_injected_markup(body: str, raw: str) -> None:
    """``raw`` (a value the client chose) appears, if at all, only escaped."""
    if any(ch in raw for ch in "<>\"'"):
        assert raw not in body, "the value is in the page unescaped"
    for marker in INJECTED:
        assert marker not in body, f"{marker!r} in the page"


@pytest.mark.parametrize(
    "accept_language",
    [
        pytest.param("<script>alert(1)</script>", id="script"),
        pytest.param("zh;q=nan, en;q=1e999, x;q=-1", id="odd-q-values"),
        pytest.param("zh-" + "a" * 10_000, id="huge-tag"),
        pytest.param(",".join(["zh;q=0.1"] * 5000), id="many-tags"),
        pytest.param("\x00\xff\ufffd", id="odd-bytes"),
    ],
)
def test_pages_survive_any_accept_language(accept_language: str) -> None:
    rig = make_rig()
    response = rig.call(blank("/_qqgate/sign_in", headers={"Accept-Language": accept_language}))
    assert response.status_int == 200
    assert_no_injected_markup(response.text, accept_language)


@pytest.mark.parametrize(
    "nickname",
    [
        pytest.param("<script>alert(1)</script>", id="script"),
        pytest.param('"><img src=x onerror=alert(1)>', id="img"),
        pytest.param("$content ${title}", id="template-syntax"),
    ],
)
def test_forbidden_page_escapes_the_nickname(nickname: str) -> None:
    rig = make_rig(allowed_openids="F" * 32)
    response = rig.call(blank("/admin", cookie=f"qqgate={rig.session_for(nickname=nickname)}"))
    assert response.status_int == 403
    assert_no_injected_markup(response.text, nickname)
    assert rig.app.calls == []
