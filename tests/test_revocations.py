"""The revocations a gate keeps in memory (``qqgate.revocations``): what each entry refuses, and
that a resync or pruning never drops one that still matters. Time is a FakeClock."""

from __future__ import annotations

import pytest

from qqgate.revocations import Revocations, parse, session_field, user_field
from qqgate.session import Identity
from qqgate.tokencache import VerifiedToken

OPENID = "0123456789ABCDEF0123456789ABCDEF"
OTHER = "FEDCBA9876543210FEDCBA9876543210"


def session(openid: str = OPENID, signed_in_at: int = 1000, session_id: str = "sid-1"):
    identity = Identity(openid, "n", "", None, signed_in_at)
    return VerifiedToken(identity, 10**10, {}, (), 10**10, session_id)


def test_a_revoked_session_is_refused_and_no_other() -> None:
    revocations = Revocations()
    assert revocations.add(session_field(OPENID, "sid-1"), "5000")
    assert revocations.refuses(session())
    assert not revocations.refuses(session(session_id="sid-2"))
    assert not revocations.refuses(session(openid=OTHER))


def test_a_user_revocation_refuses_sessions_signed_in_until_then() -> None:
    revocations = Revocations()
    revocations.add(user_field(OPENID), "2000 9000")
    assert revocations.refuses(session(signed_in_at=1000))
    assert revocations.refuses(session(signed_in_at=2000))
    assert not revocations.refuses(session(signed_in_at=2001))  # signed in again afterwards


def test_the_later_user_revocation_wins_whatever_the_order() -> None:
    revocations = Revocations()
    revocations.add(user_field(OPENID), "3000 9000")
    revocations.add(user_field(OPENID), "2000 8000")  # a late message of an earlier revocation
    assert revocations.refuses(session(signed_in_at=2500))


def test_a_resync_keeps_local_entries_and_drops_expired_ones() -> None:
    revocations = Revocations()
    revocations.add(session_field(OPENID, "local"), "5000")  # not in the store yet
    revocations.replace({session_field(OPENID, "sid-1"): "5000", user_field(OTHER): "1 10"}, 100)
    assert revocations.refuses(session(session_id="local"))
    assert revocations.refuses(session())
    assert OTHER not in revocations.by_openid  # its entry ended at 10
    assert revocations.expired(6000) == [
        session_field(OPENID, "local"),
        session_field(OPENID, "sid-1"),
    ]
    revocations.prune(6000)
    assert not revocations.by_openid and len(revocations) == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("s:OPENID", "5000", id="session-without-id"),
        pytest.param("s::sid", "5000", id="session-without-openid"),
        pytest.param("u:OPENID", "5000", id="user-without-until"),
        pytest.param("u:OPENID", "x 5000", id="not-a-number"),
        pytest.param("x:OPENID", "1 2", id="unknown-kind"),
        pytest.param("u:" + "A" * 300, "1 2", id="oversized"),
        pytest.param("u:", "1 2", id="no-openid"),
    ],
)
def test_malformed_entries_are_ignored(field: str, value: str) -> None:
    revocations = Revocations()
    assert parse(field, value) is None
    assert not revocations.add(field, value)
    assert not revocations.by_openid
