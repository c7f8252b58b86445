from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from qqgate.session import (
    MAX_PENDING_LOGINS,
    STATE_MAX_AGE,
    Identity,
    PendingLogin,
    SessionCodec,
    StateCodec,
    take_pending,
)

from .conftest import OTHER_SECRET, SECRET, FakeClock

NICK = '小明🐧 "quote" <b>\r\nX-Evil: 1'


def identity(clock: FakeClock, nickname: str = NICK) -> Identity:
    return Identity("A" * 32, nickname, "https://q.qlogo.cn/x/100", None, int(clock()))


def test_round_trip(clock) -> None:
    codec = SessionCodec([SECRET], 3600, clock)
    ident = identity(clock)
    assert codec.loads(codec.dumps(ident)) == ident


def test_expires_after_max_age(clock) -> None:
    codec = SessionCodec([SECRET], 3600, clock)
    token = codec.dumps(identity(clock))
    clock.advance(3599)
    assert codec.loads(token) is not None
    clock.advance(1)
    assert codec.loads(token) is None


def test_shorter_max_age_later_cuts_old_sessions(clock) -> None:
    token = SessionCodec([SECRET], 86400, clock).dumps(identity(clock))
    clock.advance(7200)
    assert SessionCodec([SECRET], 3600, clock).loads(token) is None


def test_rotation_old_key_still_verifies_new_key_signs(clock) -> None:
    old = SessionCodec([OTHER_SECRET], 3600, clock)
    token = old.dumps(identity(clock))
    rotated = SessionCodec([SECRET, OTHER_SECRET], 3600, clock)
    assert rotated.loads(token) is not None
    new_token = rotated.dumps(identity(clock))
    assert SessionCodec([SECRET], 3600, clock).loads(new_token) is not None
    assert old.loads(new_token) is None


def test_unknown_key_is_not_signed_in(clock) -> None:
    token = SessionCodec([OTHER_SECRET], 3600, clock).dumps(identity(clock))
    assert SessionCodec([SECRET], 3600, clock).loads(token) is None


def test_state_token_is_not_a_session(clock) -> None:
    state_token = StateCodec([SECRET], clock).dumps([PendingLogin("s", "/", 2_000_000_000)])
    assert SessionCodec([SECRET], 3600, clock).loads(state_token) is None


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda t: t[:-1], id="truncated"),
        pytest.param(lambda t: t[1:], id="first-char-dropped"),
        pytest.param(lambda t: t + "A", id="appended"),
        pytest.param(lambda t: t.replace(".", "!", 1), id="separator"),
        pytest.param(lambda t: "x" * 5000, id="oversized"),
        pytest.param(lambda t: "", id="empty"),
        pytest.param(lambda t: "not-base64-at-all", id="garbage"),
        pytest.param(lambda t: t.encode().decode("latin-1") + "\xff", id="non-ascii"),
    ],
)
def test_mutations_are_rejected(clock, mutate) -> None:
    codec = SessionCodec([SECRET], 3600, clock)
    assert codec.loads(mutate(codec.dumps(identity(clock)))) is None


def test_signed_but_wrong_shape_is_rejected(clock) -> None:
    codec = SessionCodec([SECRET], 3600, clock)
    forged = codec._serializer.dumps({"openid": "X"})
    assert codec.loads(forged) is None
    forged = codec._serializer.dumps(["X", 1, "", None, 0, 9_999_999_999])
    assert codec.loads(forged) is None


@given(st.text(max_size=40))
def test_any_nickname_round_trips(nickname: str) -> None:
    clock = FakeClock()
    codec = SessionCodec([SECRET], 3600, clock)
    assert codec.loads(codec.dumps(identity(clock, nickname))).nickname == nickname


@given(st.integers(min_value=0), st.integers(min_value=1, max_value=255))
def test_every_bit_flip_is_rejected(position: int, flip: int) -> None:
    clock = FakeClock()
    codec = SessionCodec([SECRET], 3600, clock)
    token = codec.dumps(identity(clock)).encode()
    index = position % len(token)
    mutated = bytearray(token)
    mutated[index] ^= flip
    assert codec.loads(mutated.decode("latin-1")) is None


def test_pending_logins_round_trip_and_expire(clock) -> None:
    states = StateCodec([SECRET], clock)
    entry = states.new("abc", "/next")
    token = states.dumps([entry])
    assert states.loads(token) == [entry]
    clock.advance(STATE_MAX_AGE)
    assert states.loads(token) == []


def test_pending_logins_are_capped(clock) -> None:
    states = StateCodec([SECRET], clock)
    entries = [states.new(f"s{i}", "/") for i in range(MAX_PENDING_LOGINS + 2)]
    assert states.loads(states.dumps(entries)) == entries[-MAX_PENDING_LOGINS:]


def test_take_pending_matches_exactly(clock) -> None:
    states = StateCodec([SECRET], clock)
    entries = [states.new("one", "/1"), states.new("two", "/2")]
    assert take_pending(entries, "two") is entries[1]
    assert take_pending(entries, "tw") is None
    assert take_pending(entries, "") is None


def test_unused_base64_bits_do_not_give_a_second_spelling(clock) -> None:
    codec = SessionCodec([SECRET], 3600, clock)
    token = codec.dumps(identity(clock))
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    accepted = [c for c in alphabet if codec.loads(token[:-1] + c) is not None]
    assert accepted == [token[-1]]
