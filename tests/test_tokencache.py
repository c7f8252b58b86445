"""The token cache's memory budget: what an entry is estimated to cost against what tracemalloc sees,
the budget held, the oldest entry going first, the hit and miss counters, and the setting."""

from __future__ import annotations

import gc
import tracemalloc

import pytest

from qqgate import QQGate
from qqgate.config import ConfigError
from qqgate.session import Identity
from qqgate.sessions import Sessions
from qqgate.tokencache import MIB, TokenCache, VerifiedToken, entry_cost

from .conftest import FakeClock, make_settings

AVATAR = "https://thirdqq.qlogo.cn/g?b=oidb&k=abcdefghijklmnop&s=100&t=1700000000"


def traced_bytes_per_entry(nickname: str, n: int = 3000) -> tuple[float, float]:
    """(bytes per entry tracemalloc sees a gate's cache take, bytes per entry estimated)."""
    clock = FakeClock()
    sessions = Sessions(make_settings(), clock)
    codec = sessions.codec
    when = int(clock())
    tokens = [codec.dumps(Identity(f"{i:032X}", nickname, AVATAR, None, when)) for i in range(n)]
    gc.collect()
    tracemalloc.start()
    try:
        for token in tokens:
            codec.verify(token[:-1] + token[-1])  # a new string, as sliced out of a header
        traced, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(codec.cache) == n
    return traced / n, codec.cache.bytes / n


@pytest.mark.parametrize(
    "nickname",
    [
        pytest.param("小明🐧的咖啡☕", id="chinese-emoji"),
        pytest.param("小明", id="short-chinese"),
        pytest.param("Xiao Ming", id="latin"),
        pytest.param("小" * 20, id="long-chinese"),
    ],
)
def test_the_estimate_is_what_tracemalloc_sees_or_a_little_more(nickname: str) -> None:
    traced, estimated = traced_bytes_per_entry(nickname)
    assert traced <= estimated <= 1.25 * traced, (traced, estimated)


def test_a_typical_entry_costs_about_one_and_a_half_kib() -> None:
    traced, estimated = traced_bytes_per_entry("小明🐧的咖啡☕")
    assert 1000 < traced < 1800 and estimated < 1750  # the figure in qqgate/tokencache.py


def entry(clock: FakeClock, openid: str = "A" * 32) -> VerifiedToken:
    return VerifiedToken(Identity(openid, "n", AVATAR, None, int(clock())), int(clock()) + 60, {})


def test_the_oldest_entries_make_room_and_the_count_follows_the_bytes(clock) -> None:
    one = entry_cost("t00", entry(clock))
    cache = TokenCache(3 * one, clock)
    for i in range(5):
        cache.put(f"t{i:02d}", entry(clock))
        assert cache.bytes == one * len(cache) <= 3 * one
    assert list(cache._entries) == ["t02", "t03", "t04"]
    cache.put("t03", entry(clock))  # again: replaced, not counted twice
    assert cache.bytes == 3 * one and len(cache) == 3
    cache.discard("t03", cache.peek("t03"))
    assert cache.bytes == 2 * one
    cache.clear()
    assert cache.bytes == 0 and len(cache) == 0


def test_an_entry_over_the_whole_budget_is_not_kept(clock) -> None:
    cache = TokenCache(100, clock)
    cache.put("t", entry(clock))
    assert len(cache) == 0 and cache.bytes == 0


def test_hits_and_misses_are_counted(clock) -> None:
    gate = QQGate(lambda e, s: [], make_settings(), clock=clock)
    sessions = gate.sessions
    token = sessions.codec.dumps(Identity("A" * 32, "n", AVATAR, None, int(clock())))
    assert sessions.cache.hit_ratio == 0.0
    for cookie in (f"qqgate={token}", f"a=1; qqgate={token}", f"qqgate={token}", "qqgate=bad"):
        sessions.load({"HTTP_COOKIE": cookie})
    sessions.load({"HTTP_COOKIE": f'qqgate="{token}"'})  # unusual spelling: the full path, a hit
    assert (sessions.cache.hits, sessions.cache.misses) == (3, 2)
    assert sessions.cache.hit_ratio == 3 / 5


def test_the_budget_is_the_token_cache_mib_setting() -> None:
    assert Sessions(make_settings()).cache.max_bytes == 192 * MIB
    assert Sessions(make_settings(token_cache_mib="1")).cache.max_bytes == MIB
    assert Sessions(make_settings(token_cache_mib="0")).cache.max_bytes == 0


@pytest.mark.parametrize("value", ["-1", "lots", "1.5", "65537"])
def test_a_bad_token_cache_mib_names_the_key(value: str) -> None:
    with pytest.raises(ConfigError) as raised:
        make_settings(token_cache_mib=value)
    assert raised.value.keys == ["token_cache_mib"]
