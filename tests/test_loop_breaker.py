"""The redirect-loop breaker (issue 13): a browser that keeps coming back from QQ without keeping
its session gets a 400 page naming the likely causes instead of another trip to QQ.

The count lives in the signed pending-login cookie, the one such a browser keeps: a browser that
keeps no cookie at all cannot loop, since its first return from QQ fails the state check (400).
"""

from __future__ import annotations

from http.cookiejar import DefaultCookiePolicy
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

from qqgate.session import ROUND_TRIP_LIMIT, ROUND_TRIP_WINDOW, Identity
from qqgate.sessions import Sessions

from .conftest import make_settings
from .live import start_gate
from .test_e2e import HTML, approve


class _DropsTheSession(DefaultCookiePolicy):
    """A browser that refuses the session cookie (as with a wrong cookie_domain) but keeps others."""

    def set_ok(self, cookie, request) -> bool:  # type: ignore[no-untyped-def]
        return cookie.name != "qqgate" and super().set_ok(cookie, request)


def _cookie(header: tuple[str, str]) -> str:
    return header[1].split(";", 1)[0]


def _returns_from_qq(sessions: Sessions, times: int, cookie: str = "") -> str:
    """The pending-login cookie after ``times`` complete trips to QQ and back."""
    for number in range(times):
        header = sessions.add_pending({"HTTP_COOKIE": cookie}, f"state-{number}", "/")
        _, header = sessions.take_pending({"HTTP_COOKIE": _cookie(header)}, f"state-{number}")
        cookie = _cookie(header)
    return cookie


def test_the_count_needs_the_limit_within_the_window_and_no_session(clock) -> None:
    sessions = Sessions(make_settings(), clock)
    below = _returns_from_qq(sessions, ROUND_TRIP_LIMIT - 1)
    assert not sessions.looping({"HTTP_COOKIE": below})
    looping = _returns_from_qq(sessions, 1, below)
    assert sessions.looping({"HTTP_COOKIE": looping})
    session = _cookie(sessions.issue(Identity("A" * 32, "n", "", None, int(clock()))))
    assert not sessions.looping({"HTTP_COOKIE": f"{looping}; {session}"})  # it kept the session
    clock.advance(ROUND_TRIP_WINDOW + 1)
    assert not sessions.looping({"HTTP_COOKIE": looping})


def test_sign_out_resets_the_count(clock) -> None:
    sessions = Sessions(make_settings(), clock)
    looping = _returns_from_qq(sessions, ROUND_TRIP_LIMIT)
    reset = sessions.forget_returns({"HTTP_COOKIE": looping})
    assert reset is not None and not sessions.looping({"HTTP_COOKIE": _cookie(reset)})
    assert sessions.forget_returns({"HTTP_COOKIE": _cookie(reset)}) is None


def _follow(browser: requests.Session, response: requests.Response) -> requests.Response:
    """Follow redirects one by one, so that every cookie goes through the browser's policy
    (requests' own redirect handling keeps a refused cookie for the next hop)."""
    for _ in range(20):
        if not response.is_redirect:
            return response
        target = urljoin(response.url, response.headers["Location"])
        response = browser.get(target, headers=HTML, allow_redirects=False, timeout=30)
    raise AssertionError("more than 20 redirects")


def _approve(browser: requests.Session, consent: requests.Response) -> requests.Response:
    fields = {k: v[0] for k, v in parse_qs(urlsplit(consent.url).query).items()}
    form = {name: fields[name] for name in ("client_id", "redirect_uri", "state", "scope")}
    action = f"{consent.url.split('/oauth2.0/')[0]}/oauth2.0/authorize"
    answer = browser.post(
        action, data={**form, "user": "xiaoming"}, allow_redirects=False, timeout=30
    )
    return _follow(browser, answer)


def test_a_browser_that_drops_the_session_cookie_stops_looping(provider) -> None:
    with start_gate(provider) as gate:
        browser = requests.Session()
        browser.cookies.set_policy(_DropsTheSession())
        start = browser.get(f"{gate.url}/private", headers=HTML, allow_redirects=False, timeout=30)
        page = _follow(browser, start)
        trips = 0
        while urlsplit(page.url).path == "/oauth2.0/authorize" and trips < 10:
            page = _approve(browser, page)
            trips += 1
        assert trips == ROUND_TRIP_LIMIT
        assert page.status_code == 400 and page.url.startswith(f"{gate.url}/_qqgate/login")
        assert "did not keep the sign-in" in page.text and "cookie_domain" in page.text
        assert "qqgate" not in browser.cookies  # it never had a session
        assert "reason=sign_in_loop" in gate.server.output()


def test_a_browser_that_keeps_cookies_signs_in_and_out_freely(provider) -> None:
    with start_gate(provider) as gate:
        browser = requests.Session()
        for _ in range(ROUND_TRIP_LIMIT + 1):
            consent = browser.get(f"{gate.url}/private", headers=HTML, timeout=30)
            page = approve(browser, consent, "xiaoming")
            assert page.status_code == 200 and page.url == f"{gate.url}/private"
            browser.post(
                f"{gate.url}/_qqgate/logout?next=/", timeout=30
            )  # as the confirm page does
