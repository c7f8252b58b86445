"""QQ's error codes as the visitor and the operator need them, each produced by the development
provider over loopback and met by the gate's real QQ client: the page says what happened and what
to do, the log line names the code and, where the operator must act, the fix."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from .live import Provider, serve_provider
from .rig import blank, make_rig, sets_session

# (endpoint the fault is put on, code, status, what the page says (English), log reason, log fix)
CASES = [
    ("user_info", 100030, 400, "you withdrew this site", "qq_restart", None),
    ("token", 100020, 400, "Please start again", "qq_restart", None),
    ("token", 100011, 502, "not yet passed QQ Connect review", "qq_not_approved", "not approved"),
    ("me", 110406, 502, "not yet passed QQ Connect review", "qq_not_approved", "not approved"),
    ("token", 110407, 502, "not yet passed QQ Connect review", "qq_not_approved", "not approved"),
    ("user_info", 100031, 502, "not yet passed", "qq_not_approved", "not approved"),
    ("token", 21006, 502, "redirect_uri in gate.ini match", "qq_config", "redirect_uri"),
    ("token", 100008, 502, "redirect_uri in gate.ini match", "qq_config", "app_id"),
    ("token", 100010, 502, "the callback address exactly", "qq_config", "redirect_uri"),
    ("me", 100049, 502, "set unionid = false", "qq_unionid", "unionid = false"),
    ("token", 100062, 502, "QQ refused this sign-in.", "qq_error", None),
]


@pytest.fixture
def english(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.INFO, logger="qqgate")
    return caplog


def sign_in(rig):
    authorize, state, cookie = rig.start_login()
    code = rig.code_for(authorize)
    request = blank(
        "/_qqgate/callback",
        f"code={code}&state={state}",
        cookie=f"qqgate_state={cookie}",
        headers={"Accept-Language": "en"},
    )
    return rig.call(request)


@pytest.mark.parametrize(
    ("endpoint", "code", "status", "says", "reason", "fix"),
    [pytest.param(*case, id=f"{case[1]}-{case[0]}") for case in CASES],
)
def test_each_qq_error_gets_its_page_and_log_line(
    clean_provider: Provider, english, endpoint, code, status, says, reason, fix
) -> None:
    rig = make_rig(provider=clean_provider)
    clean_provider.fake.set_fault(endpoint, f"error:{code}")
    response = sign_in(rig)
    assert response.status_int == status, response.text[:300]
    assert says in response.text
    assert str(code) in response.text, "the page names QQ's code"
    assert "/_qqgate/login?next=%2Fafter" in response.text, "a way to try again"
    assert not sets_session(response)
    (line,) = [r.getMessage() for r in english.records if r.getMessage().startswith("sign-in")]
    assert f"reason={reason}" in line and f"qq_code={code}" in line, line
    assert (fix in line) if fix else ("fix=" not in line), line


@pytest.fixture(scope="module")
def provider_without_unionid() -> Iterator[Provider]:
    """An app QQ never granted unionid, as most are."""
    yield from serve_provider(unionid=False)


def test_unionid_without_the_permission_names_the_fix(provider_without_unionid, english) -> None:
    """``unionid = true`` on such an app: QQ's /me answers 100048 ("companyid not set") for
    every visitor. The operator reads what to do in the log, the visitor on the page."""
    rig = make_rig(provider=provider_without_unionid, unionid="true")
    response = sign_in(rig)
    assert response.status_int == 502 and "100048" in response.text
    assert "set unionid = false in gate.ini" in response.text
    (line,) = [r.getMessage() for r in english.records if r.getMessage().startswith("sign-in")]
    assert "reason=qq_unionid" in line and "qq_code=100048" in line
    assert "apply for it at QQ Connect or set unionid = false" in line
    # The same app signs in once the gate stops asking for the unionid.
    fixed = make_rig(provider=provider_without_unionid)
    assert sign_in(fixed).status_int == 302


def test_the_user_who_withdrew_permission_can_start_again(clean_provider, english) -> None:
    """100030: the user revoked the app's permission. Starting again asks for consent again; it
    is not the operator's problem, so no fix is logged and the status is the visitor's 400."""
    rig = make_rig(provider=clean_provider)
    clean_provider.fake.set_fault("user_info", "error:100030")
    response = sign_in(rig)
    assert response.status_int == 400 and "Start again" in response.text
    clean_provider.fake.set_fault("user_info", None)
    assert sign_in(rig).status_int == 302
