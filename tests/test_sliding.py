"""Sliding sessions (issue 14, item 4): a signed-in request whose cookie is ``session_refresh`` old
gets a fresh cookie of the same session; ``session_max_age`` is the idle limit and
``session_max_lifetime`` the absolute one, from the sign-in. Time is the rig's FakeClock."""

from __future__ import annotations

import pytest

from qqgate.session import SessionCodec

from .conftest import SECRET
from .rig import Rig, blank, make_rig, set_cookie_value, set_cookies

HOUR = 3600
DAY = 86400


@pytest.fixture
def rig() -> Rig:
    return make_rig(session_max_age="7d", session_max_lifetime="30d", session_refresh="1d")


def _get(rig: Rig, token: str, path: str = "/private"):
    return rig.call(blank(path, cookie=f"qqgate={token}"))


def _session_of(rig: Rig, token: str) -> str:
    verified = rig.gate.sessions.codec.verify(token)
    assert verified is not None
    return verified.session_id


def test_a_young_cookie_is_not_reissued(rig: Rig) -> None:
    token = rig.session_for()
    rig.clock.advance(DAY - 1)
    response = _get(rig, token)
    assert response.status_int == 200
    assert "qqgate" not in set_cookies(response)


def test_an_old_enough_cookie_is_reissued_with_the_apps_answer(rig: Rig) -> None:
    token = rig.session_for()
    signed_in = int(rig.clock())
    assert _get(rig, token).status_int == 200  # cached while young: the hot path
    rig.clock.advance(DAY)
    response = _get(rig, token)
    assert response.status_int == 200 and len(rig.app.calls) == 2
    header = set_cookies(response)["qqgate"]
    assert "HttpOnly" in header and "Max-Age=604800" in header  # a full idle period again
    fresh = set_cookie_value(response, "qqgate")
    assert fresh != token
    assert _session_of(rig, fresh) == _session_of(rig, token)  # the same session
    identity = rig.gate.sessions.codec.loads(fresh)
    assert identity is not None and identity.signed_in_at == signed_in


def test_an_active_user_stays_signed_in_past_the_idle_limit(rig: Rig) -> None:
    token = rig.session_for()
    for _ in range(12):  # a visit every 2 days for 24 days: beyond 7 days idle
        rig.clock.advance(2 * DAY)
        response = _get(rig, token)
        assert response.status_int == 200
        token = set_cookie_value(response, "qqgate")
    assert len(rig.app.calls) == 12


def test_an_idle_session_ends_at_the_idle_limit(rig: Rig) -> None:
    token = rig.session_for()
    rig.clock.advance(7 * DAY - 1)
    assert _get(rig, token).status_int == 200
    rig.clock.advance(1)
    response = _get(rig, token)
    assert response.status_int == 302 and "/_qqgate/login" in response.location


def test_the_lifetime_ends_even_an_active_session(rig: Rig) -> None:
    token = rig.session_for()
    for _ in range(15):  # every 2 days until day 30
        rig.clock.advance(2 * DAY)
        response = _get(rig, token)
        if response.status_int != 200:
            break
        token = set_cookie_value(response, "qqgate")
    assert int(rig.clock()) - (1_800_000_000) == 30 * DAY
    assert response.status_int == 302  # 30 days after the sign-in: QQ is asked again


def test_the_last_cookie_before_the_lifetime_lasts_only_until_it(rig: Rig) -> None:
    token = rig.session_for()
    rig.clock.advance(6 * DAY)
    for _ in range(4):  # day 6, 12, 18, 24: refreshed each time
        token = set_cookie_value(_get(rig, token), "qqgate")
        rig.clock.advance(6 * DAY)
    rig.clock.advance(-DAY)  # day 29: one day of the lifetime left
    header = set_cookies(_get(rig, token))["qqgate"]
    assert f"Max-Age={DAY}" in header


def test_no_refresh_on_a_public_path_for_an_anonymous_visitor(rig: Rig) -> None:
    response = rig.call(blank("/static/x.css"))
    assert response.status_int == 200 and "qqgate" not in set_cookies(response)


def test_a_refresh_never_replaces_a_cookie_the_app_sets(rig: Rig) -> None:
    def app(environ, start_response):
        start_response("200 OK", [("Set-Cookie", "qqgate=app-value; Path=/")])
        return [b"ok"]

    rig.gate.app = app
    token = rig.session_for()
    rig.clock.advance(2 * DAY)
    headers = _get(rig, token).headers.getall("Set-Cookie")
    assert headers == ["qqgate=app-value; Path=/"]


def test_auth_request_answers_carry_the_refreshed_cookie(rig: Rig) -> None:
    token = rig.session_for()
    rig.clock.advance(DAY + HOUR)
    response = _get(rig, token, "/_qqgate/auth")
    assert response.status_int == 202
    assert _session_of(rig, set_cookie_value(response, "qqgate")) == _session_of(rig, token)
    # Never kept by nginx's auth cache: the fresh cookie is this browser's alone.
    assert response.headers["X-Accel-Expires"] == "0"


def test_a_token_of_the_earlier_six_field_form_still_signs_in(rig: Rig) -> None:
    codec = rig.gate.sessions.codec
    now = int(rig.clock())
    old = ["0123456789ABCDEF0123456789ABCDEF", "小明", "", None, now, now + 7 * DAY]
    token = codec._serializer.dumps(old)
    assert _get(rig, token).status_int == 200
    rig.clock.advance(2 * DAY)  # its sign-in counts as issued-at: due, and re-issued
    fresh = set_cookie_value(_get(rig, token), "qqgate")
    assert codec.verify(fresh) is not None


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(["A" * 32, "n", "", None, 100, 10**10, 99, "sid"], id="issued-before-sign-in"),
        pytest.param(["A" * 32, "n", "", None, 100, 10**10, 100, ""], id="empty-session-id"),
        pytest.param(["A" * 32, "n", "", None, 100, 10**10, 100, "s" * 65], id="long-session-id"),
        pytest.param(["A" * 32, "n", "", None, 100, 10**10, "100", "sid"], id="issued-as-text"),
        pytest.param(["A" * 32, "n", "", None, 100, 10**10, 100], id="seven-fields"),
    ],
)
def test_signed_payloads_of_the_wrong_shape_are_nobody(payload) -> None:
    codec = SessionCodec([SECRET], 7 * DAY, lambda: 200.0, max_lifetime=30 * DAY)
    assert codec.loads(codec._serializer.dumps(payload)) is None


def test_a_shorter_lifetime_configured_later_cuts_old_sessions(rig: Rig) -> None:
    token = rig.session_for()
    rig.clock.advance(3 * DAY)
    token = set_cookie_value(_get(rig, token), "qqgate")  # issued now, signed in 3 days ago
    same = make_rig(clock=rig.clock, session_max_age="3d", session_max_lifetime="4d")
    assert _get(same, token).status_int == 200
    later = make_rig(clock=rig.clock, session_max_age="3d", session_max_lifetime="3d")
    assert _get(later, token).status_int == 302
