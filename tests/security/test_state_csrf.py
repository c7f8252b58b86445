"""State and login CSRF: the callback must refuse any state that is not the one this browser's
pending-login cookie holds, and must refuse it *before* the code is sent to QQ.

Each row is run against two QQ back ends: the stub client (which records every code it is asked to
redeem) and the real ``QQClient`` talking to the development provider on a loopback port (whose
``/_fake/calls`` counter for ``token`` must stay at zero).
"""

from __future__ import annotations

import hashlib
import random
import secrets
import string
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from itsdangerous import URLSafeSerializer

from qqgate.session import STATE_SALT, Identity, PendingLogin, SessionCodec, StateCodec

from ..conftest import OTHER_SECRET, SECRET, FakeClock
from ..live import Provider
from ..rig import (
    Rig,
    blank,
    make_rig,
    set_cookie_value,
    set_cookies,
    sets_session,
)


@dataclass
class Attempt:
    """What a test needs from either back end: a started login and a way to answer QQ's redirect."""

    state: str
    cookie: str  # the pending-login cookie value this browser holds
    code: str
    login: Callable[..., tuple[str, str, str]]  # another login: (state, cookie, code)
    callback: Callable[[str, str | None], object]  # (query, state cookie) -> response
    codes_sent: Callable[[], int]
    clock: FakeClock


def attempt_on(rig: Rig) -> Attempt:
    """A started login on ``rig``, with codes counted where they arrive: the stub's record of
    redeemed codes, or the provider's ``token`` counter."""

    def login(cookie: str | None = None) -> tuple[str, str, str]:
        authorize, state, pending = rig.start_login(cookie=cookie and f"qqgate_state={cookie}")
        return state, pending, rig.code_for(authorize)

    def callback(query: str, cookie: str | None):
        header = None if cookie is None else f"qqgate_state={cookie}"
        return rig.call(blank("/_qqgate/callback", query, cookie=header))

    def codes_sent() -> int:
        if rig.provider is None:
            return len(rig.qq.redeemed)
        return rig.provider.calls().get("token", 0)

    state, cookie, code = login()
    if rig.provider is not None:
        rig.provider.reset()
    return Attempt(state, cookie, code, login, callback, codes_sent, rig.clock)


def stub_attempt() -> Attempt:
    return attempt_on(make_rig())


def live_attempt(provider: Provider) -> Attempt:
    return attempt_on(make_rig(provider=provider, clock=FakeClock(time.time())))


@pytest.fixture(params=["stub", "fakeqq"])
def attempt(request) -> Attempt:
    if request.param == "stub":
        return stub_attempt()
    return live_attempt(request.getfixturevalue("clean_provider"))


def _flip(text: str, index: int) -> str:
    return text[:index] + ("B" if text[index] != "B" else "C") + text[index + 1 :]


def _signed_state(rows: list[list[object]], key: str = SECRET) -> str:
    """A pending-login cookie signed with ``key``, as only the gate (or a key thief) can make."""
    serializer = URLSafeSerializer(
        key, salt=STATE_SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )
    return serializer.dumps(rows)


# Each row: (query template, cookie to send) built from the attempt; "{state}" and "{code}" are
# filled in. A cookie of None means the browser sends no pending-login cookie.
REFUSED = [
    pytest.param(lambda a: ("code={code}", a.cookie), id="missing-state"),
    pytest.param(lambda a: ("code={code}&state=", a.cookie), id="empty-state"),
    pytest.param(
        lambda a: ("code={code}&state=" + secrets.token_urlsafe(32), a.cookie), id="wrong-state"
    ),
    pytest.param(lambda a: ("code={code}&state=" + a.state[:-1], a.cookie), id="state-prefix"),
    pytest.param(lambda a: ("code={code}&state=" + a.state + "A", a.cookie), id="state-extended"),
    pytest.param(
        lambda a: ("code={code}&state=" + a.state.swapcase(), a.cookie), id="state-case-changed"
    ),
    pytest.param(
        lambda a: ("code={code}&state=" + a.state + "%20", a.cookie), id="state-trailing-space"
    ),
    pytest.param(lambda a: ("code={code}&state=%20" + a.state, a.cookie), id="state-leading-space"),
    pytest.param(
        lambda a: ("code={code}&state=" + a.state + "%00", a.cookie), id="state-trailing-nul"
    ),
    pytest.param(lambda a: ("code={code}&state={state}", None), id="no-state-cookie"),
    pytest.param(lambda a: ("code={code}&state={state}", ""), id="empty-state-cookie"),
    pytest.param(
        lambda a: ("code={code}&state={state}", a.login()[1]), id="cookie-from-another-browser"
    ),
    pytest.param(
        lambda a: ("code={code}&state={state}", _flip(a.cookie, 5)), id="cookie-payload-flipped"
    ),
    pytest.param(
        lambda a: ("code={code}&state={state}", _flip(a.cookie, len(a.cookie) - 3)),
        id="cookie-signature-flipped",
    ),
    pytest.param(lambda a: ("code={code}&state={state}", a.cookie[:-4]), id="cookie-truncated"),
    pytest.param(
        lambda a: (
            "code={code}&state={state}",
            _signed_state([[a.state, "/", 4_000_000_000]], OTHER_SECRET),
        ),
        id="cookie-signed-with-another-key",
    ),
    pytest.param(
        lambda a: ("code={code}&state={state}", _session_as_state(a)),
        id="session-cookie-used-as-state-cookie",
    ),
    pytest.param(
        lambda a: ("code={code}&state={state}&state={state}", a.cookie), id="duplicate-state-same"
    ),
    pytest.param(
        lambda a: ("code={code}&state={state}&state=other", a.cookie), id="duplicate-state-other"
    ),
    pytest.param(
        lambda a: ("state=other&code={code}&state={state}", a.cookie),
        id="duplicate-state-first-wrong",
    ),
    pytest.param(
        lambda a: ("code={code}&code={code}&state={state}", a.cookie), id="duplicate-code-same"
    ),
    pytest.param(
        lambda a: ("code={code}&code=OTHER&state={state}", a.cookie), id="duplicate-code-other"
    ),
    pytest.param(lambda a: ("code={code}&state=" + "S" * 129, a.cookie), id="state-too-long"),
    pytest.param(lambda a: ("code={code}&state=" + "S" * 100_000, a.cookie), id="state-huge"),
    pytest.param(
        lambda a: (
            "code={code}&state=" + "L" * 129,
            _signed_state([["L" * 129, "/", 4_000_000_000]]),
        ),
        id="state-too-long-even-if-signed",
    ),
    pytest.param(
        lambda a: ("code={code}&state={state}", _signed_state([[a.state, "/", 1]])),
        id="cookie-entry-expired-long-ago",
    ),
    pytest.param(
        lambda a: ("code={code}&state={state}", _signed_state([[a.state, "/", "4000000000"]])),
        id="cookie-expiry-not-an-int",
    ),
    pytest.param(
        lambda a: ("code={code}&state={state}", _signed_state({"state": a.state})),
        id="cookie-payload-not-a-list",
    ),
]


def _session_as_state(a: Attempt) -> str:
    codec = SessionCodec([SECRET], 3600, a.clock)
    return codec.dumps(Identity(a.state, a.state, "", None, int(a.clock())))


def assert_refused_before_qq(attempt: Attempt, response) -> None:
    assert response.status_int == 400, (response.status, response.text[:200])
    assert not sets_session(response)
    assert attempt.codes_sent() == 0, "the code was sent to QQ before the state was verified"


@pytest.mark.parametrize("build", REFUSED)
def test_bad_state_is_refused_before_the_code_reaches_qq(attempt: Attempt, build) -> None:
    template, cookie = build(attempt)
    query = template.format(state=quote(attempt.state), code=attempt.code)
    assert_refused_before_qq(attempt, attempt.callback(query, cookie))


@pytest.mark.parametrize(
    "seconds",
    [
        pytest.param(600, id="at-ten-minutes"),
        pytest.param(601, id="after-ten-minutes"),
        pytest.param(86400, id="a-day-later"),
    ],
)
def test_expired_state_is_refused_before_the_code_reaches_qq(
    attempt: Attempt, seconds: int
) -> None:
    attempt.clock.advance(seconds)
    response = attempt.callback(f"code={attempt.code}&state={attempt.state}", attempt.cookie)
    assert_refused_before_qq(attempt, response)


def test_state_is_good_for_one_sign_in_per_browser(attempt: Attempt) -> None:
    query = f"code={attempt.code}&state={attempt.state}"
    first = attempt.callback(query, attempt.cookie)
    assert first.status_int == 302 and sets_session(first), first.text[:200]
    sent = attempt.codes_sent()
    assert sent == 1
    # The browser now holds the updated pending-login cookie (this state removed from it).
    jar = set_cookie_value(first, "qqgate_state")
    for cookie in (jar, None):  # same browser again; the URL replayed from another browser
        replay = attempt.callback(query, cookie)
        assert replay.status_int == 400 and not sets_session(replay)
    assert attempt.codes_sent() == sent, "a replayed state reached QQ"


def test_a_captured_state_cookie_cannot_mint_a_second_session(clean_provider: Provider) -> None:
    """The pending-login cookie lives in the browser, so a copy taken before the callback still
    verifies; QQ's single-use code is what stops the replay. No second session may come of it."""
    attempt = live_attempt(clean_provider)
    query = f"code={attempt.code}&state={attempt.state}"
    assert sets_session(attempt.callback(query, attempt.cookie))
    replay = attempt.callback(query, attempt.cookie)
    assert replay.status_int == 400 and not sets_session(replay)


def test_state_from_another_tab_of_the_same_browser_is_honoured(attempt: Attempt) -> None:
    """Control: several pending logins coexist, each usable with its own state."""
    _, merged, _ = attempt.login(attempt.cookie)
    response = attempt.callback(f"code={attempt.code}&state={attempt.state}", merged)
    assert response.status_int == 302 and sets_session(response)


def test_pending_logins_are_bounded(clock: FakeClock) -> None:
    """A browser that starts many logins keeps only a few pending states: the cookie cannot grow."""
    codec = StateCodec([SECRET], clock)
    pending = [PendingLogin(secrets.token_urlsafe(32), "/", int(clock()) + 600) for _ in range(50)]
    rig = make_rig()
    response = rig.call(blank("/_qqgate/login", cookie=f"qqgate_state={codec.dumps(pending)}"))
    kept = rig.gate.sessions.states.loads(set_cookie_value(response, "qqgate_state"))
    assert 1 < len(kept) <= 4
    assert len(response.headers["Set-Cookie"]) < 4096


def _random_path(rng: random.Random, alphabet: str, length: int) -> str:
    return "/" + "".join(rng.choice(alphabet) for _ in range(length))


ASCII = string.ascii_letters + string.digits
CJK = "".join(chr(c) for c in range(0x4E00, 0x9FA5))


@pytest.mark.parametrize(
    "nexts",
    [
        pytest.param([("ascii", 2047)], id="one-login-2k-ascii-next"),
        pytest.param([("cjk", 900)], id="one-login-900-chinese-chars-next"),
        pytest.param([("ascii", 2047)] * 3, id="three-tabs-2k-ascii-next-each"),
        pytest.param([("ascii", 1000)] * 5, id="five-tabs-1k-ascii-next-each"),
    ],
)
def test_pending_login_cookie_always_fits_in_a_browser(nexts) -> None:
    """Browsers keep a cookie only up to 4096 bytes (RFC 6265 6.1: name, value and attributes).
    Whatever ``next`` a link carries (bounded by the query-string limit) and however many tabs
    start a sign-in, the pending-login cookie must fit, and the newest sign-in must complete."""
    rng = random.Random(6265)
    rig = make_rig()
    cookie = None
    for kind, length in nexts:
        target = _random_path(rng, ASCII if kind == "ascii" else CJK, length)
        query = "next=" + quote(target, safe="")
        assert len(query) <= 8192, "the link itself must be one the gate reads"
        response = rig.call(blank("/_qqgate/login", query, cookie=cookie))
        size = len(set_cookies(response)["qqgate_state"].encode())
        assert size <= 4096, f"the pending-login Set-Cookie is {size} bytes"
        cookie = f"qqgate_state={set_cookie_value(response, 'qqgate_state')}"
    state = parse_qs(urlsplit(response.location).query)["state"][0]
    done = rig.call(
        blank("/_qqgate/callback", f"code={rig.qq.issue_code()}&state={state}", cookie=cookie)
    )
    assert done.status_int == 302 and sets_session(done)
