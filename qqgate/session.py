"""The signed cookies: the session (who is signed in) and the pending-login state.

Both are itsdangerous tokens (HMAC-SHA256, URL-safe), each with its own salt so that one can never
be passed off as the other. They are signed, not encrypted: the user can read their own openid and
nickname in the cookie, which is fine, and nothing secret (never the access token) is put in.

``secret_keys`` is a rotation list: the first key signs, every key verifies.
Expiry is part of the signed payload and checked against an injectable clock, so tests control time
without sleeping.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeSerializer
from itsdangerous.encoding import base64_decode, base64_encode

SESSION_SALT = "qqgate.session.v1"
STATE_SALT = "qqgate.state.v1"
STATE_MAX_AGE = 600  # QQ's authorization code lives 10 minutes; a pending login needs no longer
MAX_PENDING_LOGINS = 3  # a few tabs may start a sign-in at once
MAX_TOKEN_LENGTH = 4096

Clock = Callable[[], float]
# An itsdangerous URL-safe token: optional "." (compressed), base64 payload, ".", base64 signature.
_TOKEN_SHAPE = re.compile(r"\.?[A-Za-z0-9_-]+\.([A-Za-z0-9_-]+)")


@dataclass(frozen=True, slots=True)
class Identity:
    """Who is signed in; available to the app as ``environ["qqgate.identity"]``."""

    openid: str
    nickname: str
    avatar_url: str
    unionid: str | None
    signed_in_at: int

    def as_json(self) -> dict[str, Any]:
        return {
            "openid": self.openid,
            "nickname": self.nickname,
            "avatar_url": self.avatar_url,
            "unionid": self.unionid,
        }


@dataclass(frozen=True, slots=True)
class PendingLogin:
    state: str
    next_url: str
    expires: int


def canonical(token: str) -> bool:
    """Whether ``token`` has exactly one spelling. base64 decoding skips foreign characters and the
    unused low bits of the last character: without this check ``token + "\\xff"`` would verify.
    """
    match = _TOKEN_SHAPE.fullmatch(token) if len(token) <= MAX_TOKEN_LENGTH else None
    if match is None:
        return False
    signature = match.group(1).encode()
    try:
        return base64_encode(base64_decode(signature)) == signature
    except BadData:
        return False


def _serializer(secret_keys: Sequence[str], salt: str) -> URLSafeSerializer:
    # itsdangerous signs with the *last* key of its list; our config names the signing key first.
    return URLSafeSerializer(
        list(reversed(secret_keys)),
        salt=salt,
        signer_kwargs={"digest_method": hashlib.sha256},
    )


class SessionCodec:
    """Turns an :class:`Identity` into a cookie value and back."""

    def __init__(self, secret_keys: Sequence[str], max_age: int, clock: Clock = time.time) -> None:
        self._serializer = _serializer(secret_keys, SESSION_SALT)
        self.max_age = max_age
        self._clock = clock

    def dumps(self, identity: Identity) -> str:
        expires = identity.signed_in_at + self.max_age
        payload = [
            identity.openid,
            identity.nickname,
            identity.avatar_url,
            identity.unionid,
            identity.signed_in_at,
            expires,
        ]
        return self._serializer.dumps(payload)

    def loads(self, token: str) -> Identity | None:
        """The identity in ``token``, or None if it is tampered, foreign, malformed or expired."""
        if not canonical(token):
            return None
        try:
            openid, nickname, avatar, unionid, signed_in_at, expires = self._serializer.loads(token)
        except (BadData, ValueError, TypeError):
            return None
        if not _all_str(openid, nickname, avatar) or not (
            unionid is None or isinstance(unionid, str)
        ):
            return None
        if not _all_int(signed_in_at, expires):
            return None
        # A shorter session_max_age configured later also cuts sessions issued before.
        if min(expires, signed_in_at + self.max_age) <= self._clock():
            return None
        return Identity(openid, nickname, avatar, unionid, signed_in_at)


class StateCodec:
    """The pending-login cookie: random states with their ``next`` and expiry, for one browser."""

    def __init__(self, secret_keys: Sequence[str], clock: Clock = time.time) -> None:
        self._serializer = _serializer(secret_keys, STATE_SALT)
        self._clock = clock

    def dumps(self, pending: Sequence[PendingLogin]) -> str:
        return self._serializer.dumps([[p.state, p.next_url, p.expires] for p in pending])

    def loads(self, token: str) -> list[PendingLogin]:
        """The unexpired pending logins in ``token``; empty for anything invalid."""
        if not canonical(token):
            return []
        try:
            rows = self._serializer.loads(token)
        except (BadData, ValueError, TypeError):
            return []
        now = self._clock()
        pending = []
        for row in rows if isinstance(rows, list) else ():
            well_formed = isinstance(row, list) and len(row) == 3
            if well_formed and _all_str(*row[:2]) and _all_int(row[2]) and row[2] > now:
                pending.append(PendingLogin(*row))
        return pending[-MAX_PENDING_LOGINS:]

    def new(self, state: str, next_url: str) -> PendingLogin:
        return PendingLogin(state, next_url, int(self._clock()) + STATE_MAX_AGE)


def take_pending(pending: Sequence[PendingLogin], state: str) -> PendingLogin | None:
    """The pending login whose state equals ``state`` (compared in constant time), if any."""
    found = None
    for entry in pending:
        if hmac.compare_digest(entry.state.encode(), state.encode()):
            found = entry
    return found


def _all_str(*values: object) -> bool:
    return all(isinstance(v, str) for v in values)


def _all_int(*values: object) -> bool:
    return all(isinstance(v, int) and not isinstance(v, bool) for v in values)
