"""The sessions this gate refuses although their cookies verify: revoked ones, kept in memory.

Two kinds of entry, as the session store (``qqgate.sessionstore``) names them:

- ``s:{openid}:{session_id}``, value ``{until}``: one session (every copy of its cookie, before and
  after a refresh: the id is kept across re-issues) signed out;
- ``u:{openid}``, value ``{not_before} {until}``: every session of that user signed in at or before
  ``not_before`` (a sign-out from every browser, ``qqgate revoke``).

``until`` is when the entry stops mattering (no cookie it names can be valid any more: the sign-in
plus ``session_max_lifetime``); :meth:`prune` drops such entries.

The signed-in hot path asks ``openid in by_openid`` (one dict lookup; a miss for every user who has
never been revoked) and only for a user with an entry calls :meth:`refuses`. ``by_openid`` is
changed in place, one key at a time and never cleared, so a reader in another thread never sees a
revocation missing that was there before (a dict lookup is atomic under the GIL).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import NamedTuple

from .tokencache import VerifiedToken

USER = "u:"
SESSION = "s:"
MAX_FIELD = 200  # characters of an entry's name: an openid and a session id are far shorter


class Revoked(NamedTuple):
    """One user's revocations: sessions signed in at or before ``not_before``, and these ids."""

    not_before: int
    session_ids: frozenset[str]


def session_field(openid: str, session_id: str) -> str:
    return f"{SESSION}{openid}:{session_id}"


def user_field(openid: str) -> str:
    return f"{USER}{openid}"


def parse(field: str, value: str) -> tuple[str, str | None, int, int] | None:
    """``(openid, session_id or None, not_before, until)`` of one entry; None if malformed."""
    if len(field) > MAX_FIELD:
        return None
    try:
        numbers = [int(word) for word in value.split()]
    except ValueError:
        return None
    if field.startswith(SESSION) and len(numbers) == 1:
        openid, colon, session_id = field[len(SESSION) :].partition(":")
        return (openid, session_id, 0, numbers[0]) if openid and colon and session_id else None
    if field.startswith(USER) and len(numbers) == 2 and field[len(USER) :]:
        return field[len(USER) :], None, numbers[0], numbers[1]
    return None


Entry = tuple[str | None, int, int]  # session id (None: the user's entry), not_before, until


class Revocations:
    """The revocations one gate process knows: entries by user, and ``by_openid`` from them."""

    def __init__(self) -> None:
        self.by_openid: dict[str, Revoked] = {}  # read on the hot path: see the module docstring
        self._entries: dict[str, dict[str, Entry]] = {}  # openid -> field -> entry
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return sum(len(fields) for fields in self._entries.values())

    def refuses(self, session: VerifiedToken) -> bool:
        """Whether ``session`` is revoked."""
        identity = session.identity
        revoked = self.by_openid.get(identity.openid)
        return revoked is not None and (
            identity.signed_in_at <= revoked.not_before or session.session_id in revoked.session_ids
        )

    def add(self, field: str, value: str) -> bool:
        """Take one entry (from a message or a local sign-out); False if it is malformed."""
        parsed = parse(field, value)
        if parsed is None:
            return False
        with self._lock:
            self._put(field, parsed)
            self._rebuild(parsed[0])
        return True

    def replace(self, entries: Mapping[str, str], now: float) -> None:
        """Take every entry of a resync from the store (keeping the local ones it lacks, which are
        still on their way to it) and drop the expired ones; ``by_openid`` changes key by key."""
        with self._lock:
            for field, value in entries.items():
                parsed = parse(field, value)
                if parsed is not None:
                    self._put(field, parsed)
            changed = set(self._entries) | self._prune(now)
            for openid in changed:
                self._rebuild(openid)

    def prune(self, now: float) -> None:
        """Forget the entries that no valid cookie can match any more."""
        with self._lock:
            for openid in self._prune(now):
                self._rebuild(openid)

    def expired(self, now: float) -> list[str]:
        """The names of the entries that no valid cookie can match any more."""
        with self._lock:
            entries = [item for fields in self._entries.values() for item in fields.items()]
        return [field for field, entry in entries if entry[2] <= now]

    def _put(self, field: str, parsed: tuple[str, str | None, int, int]) -> None:
        openid, session_id, not_before, until = parsed
        fields = self._entries.setdefault(openid, {})
        old = fields.get(field)
        if old is not None:  # revoked twice: the later times win
            not_before, until = max(old[1], not_before), max(old[2], until)
        fields[field] = (session_id, not_before, until)

    def _prune(self, now: float) -> set[str]:
        """Drop expired entries; the openids that had some."""
        touched = set()
        for openid, fields in self._entries.items():
            for field in [f for f, entry in fields.items() if entry[2] <= now]:
                del fields[field]
                touched.add(openid)
        return touched

    def _rebuild(self, openid: str) -> None:
        fields = self._entries.get(openid)
        if not fields:
            self._entries.pop(openid, None)
            self.by_openid.pop(openid, None)
            return
        entries = fields.values()
        not_before = max((e[1] for e in entries if e[0] is None), default=-1)
        ids = frozenset(e[0] for e in entries if e[0] is not None)
        self.by_openid[openid] = Revoked(not_before, ids)
