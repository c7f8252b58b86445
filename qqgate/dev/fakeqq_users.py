"""The development provider's test users: who can approve a sign-in, and the openid, unionid and
profile QQ would give each of them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

AVATAR_SIZES = (
    ("figureurl", 30),
    ("figureurl_1", 50),
    ("figureurl_2", 100),
    ("figureurl_qq_1", 40),
    ("figureurl_qq_2", 100),
    ("figureurl_qq", 640),
)
VIP_FIELDS = ("is_yellow_vip", "vip", "yellow_vip_level", "level", "is_yellow_year_vip")


@dataclass(frozen=True, slots=True)
class TestUser:
    """A QQ account offered on the consent page; ``key`` is its id in forms and HTML ids."""

    __test__ = False  # not a pytest test class, despite the name

    key: str
    nickname: str
    gender: str = "男"


DEFAULT_USERS: tuple[TestUser, ...] = (
    TestUser("xiaoming", "小明🐧"),
    TestUser("alice", "Alice", "女"),
    TestUser("nasty", '<b>"O\'Neil" & co</b>'),
)


def numbered_users(count: int) -> tuple[TestUser, ...]:
    """Extra test users ``user001``... for load tests, each with a Chinese+emoji nickname."""
    return tuple(TestUser(f"user{i:03d}", f"测试用户{i:03d}🐧") for i in range(1, count + 1))


def openid_for(app_id: str, user_key: str) -> str:
    """QQ's openid is per app: the same user gets a different one in every app."""
    return hashlib.sha256(f"openid\0{app_id}\0{user_key}".encode()).hexdigest()[:32].upper()


def unionid_for(user_key: str) -> str:
    """The unionid is per developer account, so it does not depend on the app."""
    return "UID_" + hashlib.sha256(f"unionid\0{user_key}".encode()).hexdigest()[:28].upper()


def profile_of(user: TestUser, openid: str, host_url: str) -> dict[str, Any]:
    # Field set and string-typed numbers as get_user_info really sends them.
    profile: dict[str, Any] = {"ret": 0, "msg": "", "is_lost": 0, "nickname": user.nickname}
    profile |= {"gender": user.gender, "gender_type": 2 if user.gender == "女" else 1}
    profile |= {"province": "", "city": "", "year": "0", "constellation": ""}
    profile |= {name: f"{host_url}/avatar/{openid}/{size}" for name, size in AVATAR_SIZES}
    profile["figureurl_type"] = "1"
    profile |= dict.fromkeys(VIP_FIELDS, "0")
    return profile
