"""The message table and the language choice."""

from __future__ import annotations

import re
import string

import pytest

from qqgate import i18n

CJK = re.compile(r"[\u4e00-\u9fff]")


def _fields(text: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


@pytest.mark.parametrize("key", sorted(i18n.MESSAGES))
def test_every_message_exists_in_both_languages_with_the_same_placeholders(key) -> None:
    zh, en = i18n.MESSAGES[key]
    assert zh.strip() and en.strip()
    assert _fields(zh) == _fields(en)
    assert not CJK.search(en), "English text with Chinese in it"
    assert "<" not in zh + en, "messages are plain text, escaped by the pages"


def test_text_fills_placeholders() -> None:
    assert i18n.text("zh", "sign_in.heading", site="<x>") == "登录 <x>"
    assert i18n.text("en", "sign_in.heading", site="shop") == "Sign in to shop"


@pytest.mark.parametrize(
    ("header", "language"),
    [
        pytest.param("", "en", id="empty"),
        pytest.param("zh-CN", "zh", id="zh-CN"),
        pytest.param("ZH-tw", "zh", id="zh-TW-any-case"),
        pytest.param("zh-Hant-HK;q=0.7, fr", "zh", id="zh-Hant-after-unsupported"),
        pytest.param("en;q=0.5, zh;q=0.6", "zh", id="by-quality"),
        pytest.param("en, zh", "en", id="tie-keeps-order"),
        pytest.param("zh;q=0", "en", id="refused"),
        pytest.param("zh;q=abc", "en", id="bad-quality"),
        pytest.param("zh;q=2", "en", id="out-of-range-quality"),
        pytest.param("x-klingon, ,;;,zh", "zh", id="junk-then-zh"),
        pytest.param("zhx", "en", id="not-a-zh-tag"),
        pytest.param("en," * 100 + "zh", "en", id="only-32-items-looked-at"),
    ],
)
def test_negotiate(header, language) -> None:
    assert i18n.negotiate(header) == language


def test_choose_honours_the_setting() -> None:
    environ = {"HTTP_ACCEPT_LANGUAGE": "zh-CN"}
    assert i18n.choose(environ, "auto") == "zh"
    assert i18n.choose(environ, "en") == "en"
    assert i18n.choose({}, "zh") == "zh"
    assert i18n.choose({}, "auto") == "en"
