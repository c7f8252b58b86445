"""The allow-list: ``allowed_openids``, ``allowed_unionids``, and ``allowed_openids_file`` read
again when it changes (checked at most once a second, never on every request)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from qqgate.config import ConfigError
from qqgate.qq import QQProfile

from .rig import AVATAR, NICKNAME, OPENID, Rig, blank, make_rig

OTHER = "FEDCBA9876543210FEDCBA9876543210"
UNIONID = "UID_0123456789ABCDEF0123456789ABCDEF"


def _write(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")
    status = path.stat()  # a new mtime even within the file system's time granularity
    os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns + 1_000_000_000))


def _status(rig: Rig, openid: str = OPENID) -> int:
    return rig.call(blank("/a", cookie=f"qqgate={rig.session_for(openid=openid)}")).status_int


@pytest.fixture
def listed(tmp_path: Path) -> tuple[Rig, Path]:
    path = tmp_path / "allowed.txt"
    _write(path, f"# the team\n{OPENID}  # xiaoming\n\n")
    return make_rig(cookie_name="qqgate", allowed_openids_file=str(path)), path


def test_editing_the_file_takes_effect_on_the_next_request(listed) -> None:
    rig, path = listed
    assert (_status(rig), _status(rig, OTHER)) == (200, 403)
    _write(path, f"{OTHER}\n")
    rig.clock.advance(1.1)
    assert (_status(rig), _status(rig, OTHER)) == (403, 200)


def test_the_file_is_looked_at_once_a_second_at_most(listed, monkeypatch) -> None:
    rig, _ = listed
    stats = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: stats.append(p) or real_stat(p, *a, **k))
    for _ in range(50):
        assert _status(rig) == 200
    assert stats == []
    rig.clock.advance(1.1)
    assert _status(rig) == 200 and len(stats) == 1


def test_a_file_gone_keeps_the_last_list_and_says_so(listed, caplog) -> None:
    rig, path = listed
    path.unlink()
    rig.clock.advance(1.1)
    assert (_status(rig), _status(rig, OTHER)) == (200, 403)
    assert "allow-list unreadable" in caplog.text


def test_openids_from_the_setting_and_the_file_both_pass(tmp_path: Path) -> None:
    path = tmp_path / "allowed.txt"
    _write(path, OTHER)
    rig = make_rig(cookie_name="qqgate", allowed_openids=OPENID, allowed_openids_file=str(path))
    assert (_status(rig), _status(rig, OTHER), _status(rig, "A" * 32)) == (200, 200, 403)


def test_a_unionid_on_the_list_lets_its_user_in_from_any_app() -> None:
    rig = make_rig(cookie_name="qqgate", allowed_unionids=UNIONID, unionid="true")
    inside = rig.call(blank("/a", cookie=f"qqgate={rig.session_for(unionid=UNIONID)}"))
    outside = rig.call(blank("/a", cookie=f"qqgate={rig.session_for(unionid='UID_X')}"))
    assert (inside.status_int, outside.status_int) == (200, 403)


def test_a_unionid_on_the_list_signs_in_through_the_callback() -> None:
    profile = QQProfile(OTHER, NICKNAME, AVATAR, UNIONID)
    rig = make_rig(profile=profile, cookie_name="qqgate", allowed_unionids=UNIONID, unionid="true")
    login = rig.start_login("/in")
    code = rig.qq.issue_code()
    cookie = f"qqgate_state={login.cookie}"
    done = rig.call(blank("/_qqgate/callback", f"code={code}&state={login.state}", cookie=cookie))
    assert done.status_int == 302 and done.location.endswith("/in")


@pytest.mark.parametrize(
    ("settings", "key"),
    [
        pytest.param(
            {"allowed_openids_file": "/nonexistent/x"}, "allowed_openids_file", id="no-file"
        ),
        pytest.param({"allowed_unionids": UNIONID}, "allowed_unionids", id="unionid-off"),
        pytest.param(
            {"allowed_unionids": "not<a>unionid", "unionid": "true"}, "allowed_unionids", id="bad"
        ),
    ],
)
def test_bad_allow_list_settings_name_their_key(settings, key) -> None:
    with pytest.raises(ConfigError) as raised:
        make_rig(**settings)
    assert key in raised.value.keys


def test_a_bad_line_in_the_file_is_refused_at_start(tmp_path: Path) -> None:
    path = tmp_path / "allowed.txt"
    _write(path, f"{OPENID}\nnot<an>openid\n")
    with pytest.raises(ConfigError) as raised:
        make_rig(allowed_openids_file=str(path))
    assert raised.value.keys == ["allowed_openids_file"]
