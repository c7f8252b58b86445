"""The signed cookies: the session (who is signed in) and the pending-login state.

Both are itsdangerous tokens (HMAC-SHA256, URL-safe), each with its own salt so that one can never
be passed off as the other. They are signed, not encrypted: the user can read their own openid and
nickname in the cookie, which is fine, and nothing secret (never the access token) is put in.

``secret_keys`` is a rotation list: the first key signs, every key verifies.
Expiry is part of the signed payload and checked against an injectable clock, so tests control time
without sleeping.

Verifying a session token is an HMAC, base64 and JSON, on every request of a signed-in user: with
itsdangerous's ``loads()`` about 20 µs, with :class:`~qqgate.tokens.TokenVerifier` (the same check,
canonical spellings only) a few. So each :class:`SessionCodec` also remembers the tokens it has
verified in a :class:`~qqgate.tokencache.TokenCache` bounded in bytes: a returning cookie costs one
dict lookup and one clock reading. The cache belongs to one codec, built from one key list and one
``max_age``, so a rotation or another secret (a new codec) never sees an old entry; only tokens that
verified are stored, under their exact string, so a tampered token can never hit; and each entry
carries the token's own expiry.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadData, URLSafeSerializer

from .tokencache import MIB, TokenCache, VerifiedToken
from .tokens import MAX_TOKEN_LENGTH, TokenVerifier

__all__ = [  # TokenCache, VerifiedToken and MAX_TOKEN_LENGTH are at home in tokencache and tokens
    "MAX_PENDING_LOGINS",
    "MAX_TOKEN_LENGTH",
    "SESSION_SALT",
    "STATE_MAX_AGE",
    "STATE_SALT",
    "Identity",
    "PendingLogin",
    "SessionCodec",
    "StateCodec",
    "TokenCache",
    "VerifiedToken",
    "take_pending",
]

SESSION_SALT = "qqgate.session.v1"
STATE_SALT = "qqgate.state.v1"
STATE_MAX_AGE = 600  # QQ's authorization code lives 10 minutes; a pending login needs no longer
MAX_PENDING_LOGINS = 3  # a few tabs may start a sign-in at once
CACHE_BYTES = 192 * MIB  # the default token_cache_mib: qqgate.tokencache says what that holds
# The redirect-loop breaker (qqgate.sessions.Sessions.looping): this many returns from QQ within
# this many seconds, and still no session, mean the browser is not keeping the session cookie.
ROUND_TRIP_LIMIT = 3
ROUND_TRIP_WINDOW = 120

Clock = Callable[[], float]
Render = Callable[["Identity"], Mapping[str, object]]
RenderHeaders = Callable[["Identity"], Sequence[tuple[str, str]]]


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


def _no_render(identity: Identity) -> Mapping[str, object]:
    return {}


def _no_headers(identity: Identity) -> Sequence[tuple[str, str]]:
    return ()


def _serializer(secret_keys: Sequence[str], salt: str) -> URLSafeSerializer:
    # itsdangerous signs with the *last* key of its list; our config names the signing key first.
    return URLSafeSerializer(
        list(reversed(secret_keys)),
        salt=salt,
        signer_kwargs={"digest_method": hashlib.sha256},
    )


class SessionCodec:
    """Turns an :class:`Identity` into a cookie value and back, remembering verified tokens.

    ``render`` is called once per verified token; its result is kept with the token in the cache
    (``VerifiedToken.environ``), so per-identity work is not repeated on every request.
    """

    def __init__(
        self,
        secret_keys: Sequence[str],
        max_age: int,
        clock: Clock = time.time,
        *,
        cache_bytes: int = CACHE_BYTES,
        render: Render = _no_render,
        render_headers: RenderHeaders = _no_headers,
    ) -> None:
        self._serializer = _serializer(secret_keys, SESSION_SALT)
        self._tokens = TokenVerifier(self._serializer)
        self.max_age = max_age
        self._clock = clock
        self._render = render
        self._render_headers = render_headers
        self.cache = TokenCache(cache_bytes, clock)
        self._peek = self.cache.peek

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
        verified = self.verify(token)
        return None if verified is None else verified.identity

    def verify(self, token: str) -> VerifiedToken | None:
        """Like :meth:`loads`, with the token's expiry and rendering; from the cache if there."""
        verified = self._peek(token)
        if verified is not None and verified.expires > self._clock():
            self.cache.hits += 1
            return verified  # a hit: no signature check, no parsing, nothing rendered
        self.cache.misses += 1
        if verified is not None:
            # Expired, and for good: the expiry is signed into the token and max_age is ours.
            self.cache.discard(token, verified)
            return None
        verified = self._verify(token)
        if verified is not None:
            self.cache.put(token, verified)
        return verified

    def _verify(self, token: str) -> VerifiedToken | None:
        try:
            payload = self._tokens.loads(token)
            openid, nickname, avatar, unionid, signed_in_at, expires = payload
        except (BadData, ValueError, TypeError):
            return None
        if not (
            _all_str(openid, nickname, avatar)
            and (unionid is None or isinstance(unionid, str))
            and _all_int(signed_in_at, expires)
        ):
            return None
        # A shorter session_max_age configured later also cuts sessions issued before.
        expires = min(expires, signed_in_at + self.max_age)
        if expires <= self._clock():
            return None
        identity = Identity(openid, nickname, avatar, unionid, signed_in_at)
        headers = tuple(self._render_headers(identity))
        return VerifiedToken(identity, expires, self._render(identity), headers)


class StateCodec:
    """The pending-login cookie: random states with their ``next`` and expiry, for one browser."""

    def __init__(self, secret_keys: Sequence[str], clock: Clock = time.time) -> None:
        self._serializer = _serializer(secret_keys, STATE_SALT)
        self._tokens = TokenVerifier(self._serializer)
        self._clock = clock

    def dumps(self, pending: Sequence[PendingLogin], returns: Sequence[int] = ()) -> str:
        """``pending`` logins and the times of recent ``returns`` from QQ (the loop breaker's
        count: one-element rows, which a gate without the breaker skips)."""
        rows = [[p.state, p.next_url, p.expires] for p in pending]
        return self._serializer.dumps(rows + [[when] for when in returns])

    def loads(self, token: str) -> list[PendingLogin]:
        """The unexpired pending logins in ``token``; empty for anything invalid."""
        return self.load(token)[0]

    def load(self, token: str) -> tuple[list[PendingLogin], list[int]]:
        """The unexpired pending logins in ``token`` and its returns from QQ within
        ``ROUND_TRIP_WINDOW``; empty for anything invalid."""
        try:
            rows = self._tokens.loads(token)
        except (BadData, ValueError, TypeError):
            return [], []
        now = self._clock()
        pending, returns = [], []
        for row in rows if isinstance(rows, list) else ():
            if not isinstance(row, list):
                continue
            if len(row) == 3 and _all_str(*row[:2]) and _all_int(row[2]) and row[2] > now:
                pending.append(PendingLogin(*row))
            elif len(row) == 1 and _all_int(row[0]) and now - ROUND_TRIP_WINDOW < row[0] <= now:
                returns.append(row[0])
        return pending[-MAX_PENDING_LOGINS:], returns[-ROUND_TRIP_LIMIT:]

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
    return all(_is_int(v) for v in values)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
