"""``Sessions``: no identity chosen by cookie tossing (several cookies of our name), for sessions
and pending logins, on the hot path and the full path."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest

from .rig import OPENID, Rig, blank, make_rig, set_cookie_value

OTHER = "FEDCBA9876543210FEDCBA9876543210"


@pytest.fixture
def rig() -> Rig:
    return make_rig(cookie_name="qqgate")


def _deletions(response, name: str) -> list[str]:
    return [
        h
        for h in response.headers.getall("Set-Cookie")
        if h.startswith(f"{name}=;") and "Max-Age=0" in h
    ]


def _seen_openid(response) -> str | None:
    return json.loads(response.body)["qqgate.identity"]["openid"]


@pytest.mark.parametrize(
    "order",
    [pytest.param("mine-first", id="mine-first"), pytest.param("theirs-first", id="theirs-first")],
)
def test_sessions_naming_different_users_sign_nobody_in(rig: Rig, order: str) -> None:
    mine, theirs = rig.session_for(), rig.session_for(openid=OTHER)
    pair = [mine, theirs] if order == "mine-first" else [theirs, mine]
    response = rig.call(blank("/private", cookie=f"qqgate={pair[0]}; qqgate={pair[1]}"))
    assert response.status_int == 302 and "/_qqgate/login" in response.location
    assert rig.app.calls == []
    deleted = _deletions(response, "qqgate")
    # host-only and the parent domain of redirect_uri's host (app.example.com): a sibling's copy
    assert any("Domain=" not in h for h in deleted)
    assert any("Domain=example.com" in h for h in deleted)


def test_disagreeing_sessions_on_a_public_path_pass_anonymous_and_are_cleared(rig: Rig) -> None:
    cookie = f"qqgate={rig.session_for()}; qqgate={rig.session_for(openid=OTHER)}"
    response = rig.call(blank("/static/x.css", cookie=cookie))
    assert response.status_int == 200
    assert rig.app.calls[0]["qqgate.identity"] is None
    assert _deletions(response, "qqgate")


def test_the_hot_path_never_answers_with_a_cached_token_beside_another(rig: Rig) -> None:
    mine, theirs = rig.session_for(), rig.session_for(openid=OTHER)
    assert rig.call(blank("/a", cookie=f"qqgate={theirs}")).status_int == 200  # now cached
    assert rig.call(blank("/a", cookie=f"qqgate={mine}")).status_int == 200
    response = rig.call(blank("/a", cookie=f"qqgate={theirs}; qqgate={mine}"))
    assert response.status_int == 302
    assert len(rig.app.calls) == 2


def test_copies_for_the_same_user_still_sign_in(rig: Rig) -> None:
    older = rig.session_for()
    rig.clock.advance(60)
    newer = rig.session_for()
    response = rig.call(blank("/a", cookie=f"qqgate={older}; other=1; qqgate={newer}"))
    assert response.status_int == 200 and _seen_openid(response) == OPENID
    assert not _deletions(response, "qqgate")


@pytest.mark.parametrize("junk", [4, 40], ids=["four-junk", "forty-junk"])
def test_junk_cookies_of_our_name_do_not_hide_a_valid_one(rig: Rig, junk: int) -> None:
    token = rig.session_for()
    fakes = [f"qqgate={token[:-3]}x{i}" for i in range(junk)]  # tampered copies first
    response = rig.call(blank("/a", cookie="; ".join([*fakes, f"qqgate={token}"])))
    assert response.status_int == 200 and _seen_openid(response) == OPENID


def test_a_forged_copy_beside_a_valid_session_changes_nothing(rig: Rig) -> None:
    token = rig.session_for()
    forged = make_rig(cookie_name="qqgate", secret_key="f" * 40).session_for(openid=OTHER)
    response = rig.call(blank("/a", cookie=f"qqgate={forged}; qqgate={token}"))
    assert response.status_int == 200 and _seen_openid(response) == OPENID


def test_userinfo_and_auth_see_nobody_and_clear(rig: Rig) -> None:
    cookie = f"qqgate={rig.session_for()}; qqgate={rig.session_for(openid=OTHER)}"
    userinfo = rig.call(blank("/_qqgate/userinfo", cookie=cookie))
    assert userinfo.status_int == 401 and _deletions(userinfo, "qqgate")
    auth = rig.call(blank("/_qqgate/auth", cookie=cookie))
    assert auth.status_int == 401


# --- pending logins ------------------------------------------------------------------------------


def test_disagreeing_state_cookies_give_no_pending_login(rig: Rig) -> None:
    victim = rig.start_login("/mine")
    attacker = make_rig(cookie_name="qqgate").start_login("/theirs")  # same secret: it verifies
    code = rig.qq.issue_code()
    for state in (victim.state, attacker.state):
        cookie = f"qqgate_state={attacker.cookie}; qqgate_state={victim.cookie}"
        response = rig.call(blank("/_qqgate/callback", f"code={code}&state={state}", cookie=cookie))
        assert response.status_int == 400, response.status
        assert _deletions(response, "qqgate_state")
    assert rig.qq.redeemed == []  # the code never reached QQ


def test_junk_state_cookies_do_not_hide_the_real_one(rig: Rig) -> None:
    login = rig.start_login("/mine")
    junk = "; ".join(f"qqgate_state={login.cookie[:-2]}z{i}" for i in range(10))
    code = rig.qq.issue_code()
    cookie = f"{junk}; qqgate_state={login.cookie}; qqgate_state={login.cookie}"
    response = rig.call(
        blank("/_qqgate/callback", f"code={code}&state={login.state}", cookie=cookie)
    )
    assert response.status_int == 302 and response.location.endswith("/mine")
    assert set_cookie_value(response, "qqgate")


def test_a_sign_in_beside_disagreeing_sessions_keeps_the_fresh_one(rig: Rig) -> None:
    login = rig.start_login("/mine")
    code = rig.qq.issue_code()
    tossed = f"qqgate={rig.session_for(openid=OTHER)}; qqgate={rig.session_for()}"
    cookie = f"{tossed}; qqgate_state={login.cookie}"
    response = rig.call(
        blank("/_qqgate/callback", f"code={code}&state={login.state}", cookie=cookie)
    )
    assert response.status_int == 302
    sessions = [h for h in response.headers.getall("Set-Cookie") if h.startswith("qqgate=")]
    fresh = [h for h in sessions if "Max-Age=0" not in h]
    assert len(fresh) == 1
    assert not any("Max-Age=0" in h and "Domain" not in h and "Path=/;" in h for h in sessions)


def test_a_login_started_beside_disagreeing_state_cookies_starts_clean(rig: Rig) -> None:
    one, two = rig.start_login("/a"), make_rig(cookie_name="qqgate").start_login("/b")
    cookie = f"qqgate_state={one.cookie}; qqgate_state={two.cookie}"
    response = rig.call(blank("/_qqgate/login", "next=/c", cookie=cookie))
    assert response.status_int == 302
    fresh = [h for h in response.headers.getall("Set-Cookie") if h.startswith("qqgate_state=")]
    kept = [h for h in fresh if "Max-Age=0" not in h]
    assert len(kept) == 1 and "Path=/_qqgate" in kept[0] and "Domain" not in kept[0]
    # no deletion for the place of the new cookie; the others (Path=/, parent domain) are cleared
    assert not any("Max-Age=0" in h and "Path=/_qqgate;" in h and "Domain" not in h for h in fresh)
    assert any("Max-Age=0" in h and "Domain=example.com" in h for h in fresh)
    value = kept[0].split(";", 1)[0].split("=", 1)[1]
    assert [p.next_url for p in rig.gate.sessions.states.loads(value)] == ["/c"]


# --- the __Host- prefix ----------------------------------------------------------------------------


def test_host_prefixed_cookies_keep_the_prefix_rules() -> None:
    """Secure, no Domain, Path=/ for both cookies: browsers drop a __Host- cookie otherwise
    (the state cookie at Path=/_qqgate made every sign-in end in state_mismatch)."""
    rig = make_rig(cookie_name="")  # the default: __Host-qqgate where it is legal
    assert rig.gate.settings.cookie_name == "__Host-qqgate"
    login = rig.call(blank("/_qqgate/login", "next=/done"))
    (state,) = login.headers.getall("Set-Cookie")
    assert state.startswith("__Host-qqgate_state=") and "; Path=/;" in state
    assert "Secure" in state and "Domain" not in state
    query = parse_qs(urlsplit(login.location).query)
    code = rig.qq.issue_code()
    cookie = state.split(";", 1)[0]
    done = rig.call(
        blank("/_qqgate/callback", f"code={code}&state={query['state'][0]}", cookie=cookie)
    )
    assert done.status_int == 302 and done.location.endswith("/done")
    cookies = done.headers.getall("Set-Cookie")
    session = next(h for h in cookies if h.startswith("__Host-qqgate="))
    assert "; Path=/;" in session and "Secure" in session and "Domain" not in session
    ended = next(h for h in cookies if h.startswith("__Host-qqgate_state="))
    # No pending login is left in it (it keeps the loop breaker's count of returns from QQ).
    value = ended.split(";", 1)[0].split("=", 1)[1]
    assert rig.gate.sessions.states.loads(value) == [] and "; Path=/;" in ended
    visit = rig.call(blank("/a", cookie=session.split(";", 1)[0]))
    assert visit.status_int == 200 and _seen_openid(visit) == OPENID
