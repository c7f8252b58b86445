"""Open redirects: every known bypass string, fed to every ``next`` the gate accepts.

The corpora are oauth2-proxy's and mod_auth_openidc's public lists plus our own extras (see
``tests/data/openredirects-*.txt``). Each string goes in twice: raw in the query string (so the
gate's own percent-decoding applies) and URL-encoded once (so ``next`` is exactly the string). It is
given to the login (and followed through a completed sign-in with the stub QQ client to the
callback's redirect), to the logout, to the callback's own query (which must be ignored), to the
sign-in page (its button, and its redirect for a visitor already signed in), to nginx's
``X-Original-URI`` and Caddy's and Traefik's ``X-Forwarded-Uri`` on the auth and refused routes, and as the path of a protected page (which becomes the
``next`` of the login the challenge points to). Every Location (and link) a browser gets must stay
on https://app.example.com whether it is resolved with ``urljoin`` or the WHATWG way.
"""

from __future__ import annotations

import html
import re
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest

from qqgate.redirects import safe_next

from ..rig import Rig, blank, make_rig, set_cookie_value
from .support import corpus_params, offsite

CORPUS = corpus_params()
SESSION = make_rig().session_for()  # valid on every rig: same secret, same clock


@pytest.fixture(scope="module")
def rig() -> Rig:
    return make_rig()


def deliveries(payload: str) -> list[tuple[str, str]]:
    """(name, query value): the payload as raw query bytes, and URL-encoded once."""
    raw = payload.encode("utf-8").decode("latin-1")  # QUERY_STRING holds bytes as latin-1
    return [("raw", raw), ("encoded", quote(payload, safe=""))]


def check_location(response, what: str, problems: list[str]) -> None:
    if response.status_int >= 500:
        problems.append(f"{what}: {response.status} {response.text[:200]!r}")
        return
    location = response.headers.get("Location")
    if location is None:
        return  # a page, not a redirect (e.g. an oversized query): nothing to follow
    reason = offsite(location)
    if reason:
        problems.append(f"{what}: {reason}")


def check_login_link(url: str, what: str, problems: list[str]) -> None:
    """A link to the gate's login or sign-in page: on-site, and so is the ``next`` it carries."""
    reason = offsite(url)
    next_value = parse_qs(urlsplit(url).query).get("next", ["/"])[0]
    reason = reason or offsite(next_value)
    if reason or not urlsplit(url).path.startswith("/_qqgate/"):
        problems.append(f"{what}: link {url!r}: {reason}")


def sign_in_page(rig: Rig, value: str, problems: list[str], delivery: str) -> None:
    signed_in = rig.call(blank("/_qqgate/sign_in", f"next={value}", cookie=f"qqgate={SESSION}"))
    check_location(signed_in, f"sign_in-signed-in/{delivery}", problems)
    page = rig.call(blank("/_qqgate/sign_in", f"next={value}"))
    if page.status_int >= 500:
        problems.append(f"sign_in/{delivery}: {page.status} {page.text[:200]!r}")
    for href in re.findall(r'href="([^"]*)"', page.text):
        check_login_link(html.unescape(href), f"sign_in/{delivery}", problems)


def auth_route(rig: Rig, payload: str, problems: list[str]) -> None:
    header = payload.encode("utf-8").decode("latin-1")  # header values are bytes as latin-1
    response = rig.call(blank("/_qqgate/auth", headers={"X-Original-URI": header}))
    if response.status_int != 401:
        problems.append(f"auth: expected 401, got {response.status}")
        return
    check_login_link(response.headers["X-QQGate-Login"], "auth", problems)
    # Caddy and Traefik: the gate answers the browser itself, with the forwarded URI as next.
    for route in ("auth", "refused"):
        forwarded = {"X-Forwarded-Method": "GET", "X-Forwarded-Uri": header}
        response = rig.call(blank(f"/_qqgate/{route}", headers=forwarded))
        if response.status_int != 302:
            problems.append(f"{route}/forwarded: expected 302, got {response.status}")
            continue
        check_location(response, f"{route}/forwarded", problems)
        check_login_link(response.headers["Location"], f"{route}/forwarded", problems)


def login_then_callback(rig: Rig, value: str, problems: list[str], delivery: str) -> None:
    login = rig.call(blank("/_qqgate/login", f"next={value}"))
    if login.status_int != 302:
        problems.append(f"login/{delivery}: {login.status} {login.text[:200]!r}")
        return
    authorize = urlsplit(login.headers["Location"])
    if (authorize.scheme, authorize.hostname) != ("https", "graph.qq.com"):
        problems.append(f"login/{delivery}: next changed the QQ redirect to {authorize.geturl()!r}")
    state = parse_qs(authorize.query)["state"][0]
    cookie = "qqgate_state=" + set_cookie_value(login, "qqgate_state")
    code = rig.qq.issue_code()
    # The callback's own query carries the payload as well: it must be ignored.
    query = f"code={code}&state={state}&next={value}"
    callback = rig.call(blank("/_qqgate/callback", query, cookie=cookie))
    check_location(callback, f"callback/{delivery}", problems)


@pytest.mark.parametrize("payload", CORPUS)
def test_next_never_leads_off_site(rig: Rig, payload: str) -> None:
    problems: list[str] = []
    for delivery, value in deliveries(payload):
        login_then_callback(rig, value, problems, delivery)
        logout = rig.call(blank("/_qqgate/logout", f"next={value}"))
        check_location(logout, f"logout/{delivery}", problems)
        sign_in_page(rig, value, problems, delivery)
    auth_route(rig, payload, problems)
    path = payload if payload.startswith("/") else "/" + payload
    challenge = rig.call(blank(path.encode("utf-8").decode("latin-1")))
    check_location(challenge, "challenge", problems)
    if challenge.status_int == 302:
        check_login_link(challenge.headers["Location"], "challenge", problems)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("payload", CORPUS)
def test_safe_next_only_returns_same_site_paths(payload: str) -> None:
    """The validator itself, on the string as given and percent-decoded once (as oauth2-proxy
    tests its list)."""
    for value in (payload, unquote(payload)):
        result = safe_next(value)
        assert result.startswith("/") and not result.startswith("//"), (value, result)
        assert result.isascii() and result.isprintable() and "\\" not in result, (value, result)
        assert offsite(result) is None, offsite(result)
        assert safe_next(result) == result, "safe_next is not idempotent"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param("/after?x=1&y=2#top", "/after?x=1&y=2#top", id="plain-path-kept"),
        pytest.param("/中文", "/%E4%B8%AD%E6%96%87", id="non-ascii-encoded"),
        pytest.param("/a/%2F%2Fb", "/a/%2F%2Fb", id="escapes-kept-as-escapes"),
    ],
)
def test_same_site_next_survives_a_sign_in(rig: Rig, value: str, expected: str) -> None:
    """The corpus test would pass with a gate that always sends "/": prove that it does not."""
    state, cookie = rig.login(value)
    response = rig.call(
        blank(
            "/_qqgate/callback",
            f"code={rig.qq.issue_code()}&state={state}",
            cookie=f"qqgate_state={cookie}",
        )
    )
    assert response.status_int == 302
    assert response.headers["Location"] == expected, "relative: never built from the client's Host"
