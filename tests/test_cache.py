"""The hot path: the session codec's cache of verified tokens, the one-cookie reader, and the gate
rendering each identity once. Every security property of ``loads`` must hold for a cache hit."""

from __future__ import annotations

import threading
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qqgate import QQGate
from qqgate.cookies import CookieReader, cookie_values, first_cookie_value
from qqgate.headers import percent_encode
from qqgate.session import Identity, SessionCodec, TokenCache, VerifiedToken
from qqgate.tokencache import MIB, entry_cost

from .conftest import OTHER_SECRET, SECRET, FakeClock, make_settings

OPENID = "0123456789ABCDEF0123456789ABCDEF"
NICK = "小明🐧 <b>\r\n"


def identity(clock: FakeClock, openid: str = OPENID) -> Identity:
    return Identity(openid, NICK, "https://q.qlogo.cn/x/100", None, int(clock()))


class CountingCodec:
    """A codec whose signature checks are counted."""

    def __init__(self, clock: FakeClock, keys=(SECRET,), max_age: int = 3600, **kw) -> None:
        self.codec = SessionCodec(list(keys), max_age, clock, **kw)
        self.checks = 0
        self.tokens = self.codec._tokens
        self.codec._tokens = self  # its loads() is counted

    def loads(self, token: str) -> object:
        self.checks += 1
        return self.tokens.loads(token)


# --- hits ----------------------------------------------------------------------------------------


def test_a_hit_skips_the_signature_check(clock) -> None:
    counted = CountingCodec(clock)
    token = counted.codec.dumps(identity(clock))
    first = counted.codec.verify(token)
    assert first is not None and counted.checks == 1
    for _ in range(5):
        assert counted.codec.verify(token) is first
        assert counted.codec.loads(token) == identity(clock)
    assert counted.checks == 1


def test_the_rendering_is_done_once_per_token(clock) -> None:
    rendered = []

    def render(ident: Identity, headers: object) -> dict[str, object]:
        rendered.append(ident)
        return {"who": ident.openid}

    codec = SessionCodec([SECRET], 3600, clock, render=render)
    token = codec.dumps(identity(clock))
    assert codec.verify(token).environ == {"who": OPENID}
    assert codec.verify(token).environ == {"who": OPENID}
    assert rendered == [identity(clock)]


# --- expiry --------------------------------------------------------------------------------------


def test_an_entry_stops_hitting_when_the_token_expires(clock) -> None:
    codec = SessionCodec([SECRET], 3600, clock)
    token = codec.dumps(identity(clock))
    assert codec.verify(token).expires == int(clock()) + 3600
    clock.advance(3599)
    assert codec.loads(token) is not None and token in codec.cache
    clock.advance(1)
    assert codec.loads(token) is None
    assert token not in codec.cache
    assert codec.loads(token) is None


def test_the_entry_expires_with_max_age_when_that_comes_first(clock) -> None:
    token = SessionCodec([SECRET], 86400, clock).dumps(identity(clock))
    codec = SessionCodec([SECRET], 3600, clock)
    assert codec.verify(token).expires == int(clock()) + 3600
    clock.advance(3600)
    assert codec.loads(token) is None


def test_an_expired_token_is_never_cached(clock) -> None:
    counted = CountingCodec(clock)
    token = counted.codec.dumps(identity(clock))
    clock.advance(3600)
    assert counted.codec.loads(token) is None
    assert counted.codec.loads(token) is None
    assert len(counted.codec.cache) == 0 and counted.checks == 2


def test_token_cache_get_checks_expiry(clock) -> None:
    cache = TokenCache(MIB, clock)
    entry = VerifiedToken(identity(clock), int(clock()) + 10, {})
    cache.put("t", entry)
    assert cache.get("t") is entry
    clock.advance(10)
    assert cache.get("t") is None and "t" not in cache


# --- rotation and other secrets ------------------------------------------------------------------


def test_a_codec_with_other_keys_never_hits_another_codecs_entry(clock) -> None:
    ours = SessionCodec([SECRET], 3600, clock)
    token = ours.dumps(identity(clock))
    assert ours.verify(token) is not None and token in ours.cache
    other = CountingCodec(clock, keys=(OTHER_SECRET,))
    assert other.codec.loads(token) is None
    assert other.checks == 1 and len(other.codec.cache) == 0
    assert other.codec.cache is not ours.cache


def test_rotation_verifies_old_tokens_afresh(clock) -> None:
    old = SessionCodec([OTHER_SECRET], 3600, clock)
    token = old.dumps(identity(clock))
    assert old.loads(token) is not None
    rotated = CountingCodec(clock, keys=(SECRET, OTHER_SECRET))
    assert rotated.codec.loads(token) is not None and rotated.checks == 1
    retired = CountingCodec(clock, keys=(SECRET,))
    assert retired.codec.loads(token) is None and retired.checks == 1


def test_a_gate_with_a_new_secret_does_not_trust_the_old_gates_cache() -> None:
    clock = FakeClock()
    old = QQGate(_echo, make_settings(secret_key=OTHER_SECRET), clock=clock)
    cookie = f"qqgate={old.sessions.codec.dumps(identity(clock))}"
    assert _call(old, cookie)[0] == "200 OK"
    new = QQGate(_echo, make_settings(secret_key=SECRET), clock=clock)
    assert _call(new, cookie)[0].startswith("401")


# --- tampering -----------------------------------------------------------------------------------

MUTATIONS = [
    pytest.param(lambda t: t[:-1], id="truncated"),
    pytest.param(lambda t: t + "A", id="appended"),
    pytest.param(lambda t: " " + t, id="leading-space"),
    pytest.param(lambda t: t[:-1] + ("B" if t[-1] == "A" else "A"), id="last-char"),
    pytest.param(lambda t: t[:5] + ("x" if t[5] != "x" else "y") + t[6:], id="payload-char"),
    pytest.param(lambda t: t.upper(), id="upper"),
]


@pytest.mark.parametrize("mutate", MUTATIONS)
def test_a_mutated_token_never_hits(clock, mutate) -> None:
    counted = CountingCodec(clock)
    token = counted.codec.dumps(identity(clock))
    assert counted.codec.loads(token) is not None
    mutated = mutate(token)
    for _ in range(2):
        assert counted.codec.loads(mutated) is None
    assert list(counted.codec.cache._entries) == [token]


@pytest.mark.parametrize("mutate", MUTATIONS)
def test_a_token_that_failed_is_not_cached_as_valid(clock, mutate) -> None:
    counted = CountingCodec(clock)
    mutated = mutate(counted.codec.dumps(identity(clock)))
    assert counted.codec.loads(mutated) is None
    assert mutated not in counted.codec.cache
    assert counted.codec.loads(mutated) is None


def test_a_signed_token_of_the_wrong_shape_is_not_cached(clock) -> None:
    codec = SessionCodec([SECRET], 3600, clock)
    forged = codec._serializer.dumps(["X", 1, "", None, 0, 9_999_999_999])
    assert codec.loads(forged) is None and len(codec.cache) == 0


# --- size ----------------------------------------------------------------------------------------


def test_the_cache_never_holds_more_than_its_budget(clock) -> None:
    sizing = SessionCodec([SECRET], 3600, clock)
    token = sizing.dumps(identity(clock, "F" * 32))
    budget = 3 * entry_cost(token, sizing.verify(token)) + 10  # three entries' worth
    codec = SessionCodec([SECRET], 3600, clock, cache_bytes=budget)
    tokens = [codec.dumps(identity(clock, f"{i:032X}")) for i in range(10)]
    for token in tokens:
        assert codec.loads(token) is not None
        assert len(codec.cache) <= 3 and codec.cache.bytes <= budget
    assert list(codec.cache._entries) == tokens[-3:]  # the oldest went first
    assert codec.loads(tokens[0]) is not None  # evicted is not invalid: verified again


def test_size_zero_disables_the_cache(clock) -> None:
    counted = CountingCodec(clock, cache_bytes=0)
    token = counted.codec.dumps(identity(clock))
    assert counted.codec.loads(token) is not None and counted.codec.loads(token) is not None
    assert counted.checks == 2 and len(counted.codec.cache) == 0


def test_the_size_cap_holds_with_many_threads(clock) -> None:
    entry = VerifiedToken(identity(clock), int(clock()) + 3600, {})
    budget = 50 * entry_cost("0-0000", entry)
    cache = TokenCache(budget, clock)
    sizes = []

    def fill(n: int) -> None:
        for i in range(2000):
            cache.put(f"{n}-{i:04d}", entry)
            sizes.append(cache.bytes)

    threads = [threading.Thread(target=fill, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert max(sizes) <= budget and len(cache) == 50 and cache.bytes == budget


# --- the one-cookie reader -----------------------------------------------------------------------


# (header, first value, what the hot path's ``usual`` reads: None sends it down the full path)
@pytest.mark.parametrize(
    ("header", "first", "usual"),
    [
        pytest.param("a=1; qqgate=tok; b=2", "tok", "tok", id="among-others"),
        pytest.param("qqgate=tok", "tok", "tok", id="only"),
        pytest.param('qqgate="tok" ', "tok", '"tok" ', id="quoted-usual-reads-raw"),
        pytest.param("a=1;qqgate=tok", "tok", None, id="no-space"),
        pytest.param("ref=qqgate; qqgate=tok", "tok", None, id="name-in-a-value-first"),
        pytest.param("a=qqgate=tok", None, None, id="name-and-equals-in-a-value"),
        pytest.param("qqgate_state=s; qqgate=tok", "tok", None, id="longer-name-first"),
        pytest.param("xqqgate=x; qqgate =tok", "tok", None, id="spaces-around-name"),
        pytest.param("q; qqgate=tok", "tok", "tok", id="after-a-bare-word"),
        pytest.param("qqgate=one; qqgate=two", "one", None, id="duplicates-take-the-full-path"),
        pytest.param("qqgate=one; b=qqgate", "one", None, id="name-again-in-a-later-value"),
        pytest.param("qqgate=tok; qqgate_state=s", "tok", "tok", id="state-cookie-after-it"),
        pytest.param("qqgate=one; qqgate =two", "one", None, id="a-spaced-duplicate"),
        pytest.param("qqgate=one; qqgate\t=two", "one", None, id="a-tabbed-duplicate"),
        pytest.param("qqgate_state=s", None, None, id="only-a-longer-name"),
        pytest.param("qqgate", None, None, id="no-equals"),
        pytest.param("", None, None, id="empty"),
    ],
)
def test_first_cookie_value(header: str, first: str | None, usual: str | None) -> None:
    assert first_cookie_value(header, "qqgate") == first
    assert CookieReader("qqgate").usual(header) == usual


COOKIE_HEADERS = st.lists(
    st.sampled_from(
        ["qqgate", "qqgate_state", "xqqgate", " qqgate ", "a", "q", "=", ";", "; ", '"']
    )
    | st.text(alphabet="qgate=; \"'\t", max_size=8),
    max_size=10,
).map("".join)


@given(COOKIE_HEADERS, st.sampled_from(["qqgate", "a;b", "q"]))
@settings(max_examples=500)
def test_first_cookie_value_agrees_with_the_full_scan(header: str, name: str) -> None:
    values = cookie_values(header, name)
    assert first_cookie_value(header, name) == (values[0] if values else None)


READER = CookieReader("qqgate")


@given(COOKIE_HEADERS)
@settings(max_examples=300)
def test_usual_agrees_with_the_full_scan_when_it_answers(header: str) -> None:
    raw = READER.usual(header)
    if raw is not None:  # then the first value is that text, stripped and unquoted
        text = raw.strip()
        unquoted = text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text
        assert cookie_values(header, "qqgate") == [unquoted]  # the one value of our name


@given(st.text(max_size=30))
def test_percent_encode_is_quote(text: str) -> None:
    assert percent_encode(text) == quote(text, safe="")


# --- the gate ------------------------------------------------------------------------------------


def _echo(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    environ["test.seen"] = dict(environ)
    # A careless app that writes into its environ must not change what the next request gets.
    environ["HTTP_X_QQ_OPENID"] = "CHANGED-BY-APP"
    return [b"ok"]


def _call(gate: QQGate, cookie: str | None, **extra: object) -> tuple[str, dict]:
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/admin", **extra}
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    status = []
    list(gate(environ, lambda s, h, e=None: status.append(s)))
    return status[0], environ.get("test.seen", {})


def test_the_gate_renders_each_identity_once_and_hands_out_copies() -> None:
    clock = FakeClock()
    gate = QQGate(_echo, make_settings(), clock=clock)
    token = gate.sessions.codec.dumps(identity(clock))
    _, first = _call(gate, f"a=1; qqgate={token}")
    _, second = _call(gate, f"qqgate={token}", HTTP_X_QQ_OPENID="SPOOFED", REMOTE_USER="SPOOFED")
    for seen in (first, second):
        assert seen["HTTP_X_QQ_OPENID"] == OPENID and seen["REMOTE_USER"] == OPENID
        assert seen["HTTP_X_QQ_NICKNAME"] == quote(NICK, safe="")
    assert first["qqgate.identity"] is second["qqgate.identity"]
    assert gate.sessions.codec.verify(token).environ["HTTP_X_QQ_OPENID"] == OPENID


def test_the_gate_rejects_a_cached_token_once_expired_and_checks_the_allowlist() -> None:
    clock = FakeClock()
    gate = QQGate(_echo, make_settings(allowed_openids="F" * 32), clock=clock)
    token = gate.sessions.codec.dumps(identity(clock))
    assert _call(gate, f"qqgate={token}")[0].startswith("403")
    assert _call(gate, f"qqgate={token}")[0].startswith("403")  # a hit is still checked
    gate = QQGate(_echo, make_settings(), clock=clock)
    assert _call(gate, f"qqgate={token}")[0] == "200 OK"
    clock.advance(7 * 86400)
    assert _call(gate, f"qqgate={token}")[0].startswith("401")


def test_the_gate_finds_a_valid_duplicate_after_a_bad_first_cookie() -> None:
    clock = FakeClock()
    gate = QQGate(_echo, make_settings(), clock=clock)
    token = gate.sessions.codec.dumps(identity(clock))
    status, seen = _call(gate, f"qqgate=garbage; qqgate={token}")
    assert status == "200 OK" and seen["HTTP_X_QQ_OPENID"] == OPENID
