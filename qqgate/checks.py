"""Advice on a configuration that is valid but probably not what the operator meant.

``qqgate check`` prints these as warnings (the exit code stays 0): a cookie the browser will refuse,
a cookie sent over plain http, a weak or copied secret_key. Each warning names the key to change.
"""

from __future__ import annotations

import configparser
import math
import os
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from urllib.parse import urlsplit

from .config import SECTION, Settings

GOOD_SECRET_LENGTH = 43  # 32 random bytes, base64: what a 256-bit key looks like
MIN_SECRET_BITS = 128  # below this, the characters are too repetitive to be a random key
EXAMPLE_NAME = "gate.ini.example"


def warnings(settings: Settings, example_values: Iterable[str] = ()) -> list[tuple[str, str]]:
    """``(key, advice)`` for everything in ``settings`` worth a second look."""
    return [
        *_cookie_domain_warnings(settings),
        *_cookie_secure_warnings(settings),
        *_secret_warnings(settings.secret_keys, set(example_values)),
    ]


def callback_url(settings: Settings) -> str:
    """The URL to register at QQ Connect: exactly the configured redirect_uri."""
    return settings.redirect_uri


def _cookie_domain_warnings(settings: Settings) -> list[tuple[str, str]]:
    domain = settings.cookie_domain
    host = (urlsplit(settings.redirect_uri).hostname or "").lower()
    if not domain or host == domain or host.endswith("." + domain):
        return []
    return [
        (
            "cookie_domain",
            f"{domain} does not cover {host}, the host of redirect_uri: browsers refuse cookies "
            "for another domain, so no sign-in would stick",
        )
    ]


def _cookie_secure_warnings(settings: Settings) -> list[tuple[str, str]]:
    if settings.cookie_secure or urlsplit(settings.redirect_uri).scheme != "https":
        return []
    return [
        (
            "cookie_secure",
            "false although redirect_uri is https: the session cookie would also travel over "
            "plain http; set cookie_secure = true",
        )
    ]


def _secret_warnings(keys: Iterable[str], examples: set[str]) -> list[tuple[str, str]]:
    problems = []
    for number, key in enumerate(keys, 1):
        if key in examples:
            problem = f"key #{number} is a value from {EXAMPLE_NAME}: anyone can read it"
        elif len(key) < GOOD_SECRET_LENGTH:
            problem = f"key #{number} has only {len(key)} characters"
        elif entropy_bits(key) < MIN_SECRET_BITS:
            problem = f"key #{number} repeats too few different characters to be random"
        else:
            continue
        problems.append(("secret_key", f"{problem}; make a new one with `qqgate secret`"))
    return problems


def entropy_bits(text: str) -> float:
    """A rough upper bound on the randomness in ``text``: its length times the Shannon entropy
    of its characters. ``"s" * 40`` has 0 bits; ``secrets.token_urlsafe(48)`` about 340."""
    counts = Counter(text)
    return -sum(n * math.log2(n / len(text)) for n in counts.values())


def example_values(config_path: str | os.PathLike[str] | None = None) -> set[str]:
    """Every value (and every word of one) in the gate.ini.example beside ``config_path`` or in
    the source tree, so that a key copied from the example is recognised."""
    candidates = [Path(__file__).resolve().parent.parent / EXAMPLE_NAME]
    if config_path is not None:
        candidates.insert(0, Path(config_path).resolve().parent / EXAMPLE_NAME)
    values: set[str] = set()
    for path in candidates:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with path.open(encoding="utf-8") as fh:
                parser.read_file(fh)
        except (OSError, UnicodeDecodeError, configparser.Error):
            continue
        if parser.has_section(SECTION):
            for value in dict(parser.items(SECTION)).values():
                values.update([value.strip(), *value.split()])
    values.discard("")
    return values
