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

A session slides (``qqgate.sessions`` re-issues its cookie once it is ``refresh`` old): its payload
is ``[openid, nickname, avatar, unionid, signed_in_at, expires, issued_at, session_id]``, and it
ends at the earliest of its signed ``expires``, ``issued_at + max_age`` (the idle limit) and
``signed_in_at + max_lifetime`` (the absolute one), so a shorter limit configured later also cuts
tokens issued before. ``session_id`` is random, minted at sign-in and kept by every re-issue: it
names the session (every copy of its cookie, before and after a refresh) for revocation. A token of
the six-element form earlier versions signed counts its sign-in as issued-at, and the hash of its
signature as its id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
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
# The environ entries of an identity, given its request headers (so the nickname is encoded once).
Render = Callable[["Identity", Sequence[tuple[str, str]]], Mapping[str, object]]
RenderHeaders = Callable[["Identity"], Sequence[tuple[str, str]]]
SESSION_ID_BYTES = 12  # 96 random bits: 16 characters
MAX_SESSION_ID = 64  # characters: a longer one is no id we minted


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


def _no_render(identity: Identity, headers: Sequence[tuple[str, str]]) -> Mapping[str, object]:
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
        max_lifetime: int | None = None,
        refresh: int | None = None,
        cache_bytes: int = CACHE_BYTES,
        render: Render = _no_render,
        render_headers: RenderHeaders = _no_headers,
    ) -> None:
        self._serializer = _serializer(secret_keys, SESSION_SALT)
        self._tokens = TokenVerifier(self._serializer)
        self.max_age = max_age  # the idle limit: from the token's issued_at
        self.max_lifetime = max_age if max_lifetime is None else max_lifetime  # from the sign-in
        self.refresh = refresh  # re-issue a token this old (None: never)
        self._clock = clock
        self._render = render
        self._render_headers = render_headers
        self.cache = TokenCache(cache_bytes, clock)
        self._peek = self.cache.peek

    def dumps(
        self, identity: Identity, *, issued_at: int | None = None, session_id: str | None = None
    ) -> str:
        """A token for ``identity``, issued at ``issued_at`` (default: its sign-in), of the session
        ``session_id`` (default: a new one)."""
        issued = identity.signed_in_at if issued_at is None else issued_at
        expires = self._expiry(identity.signed_in_at, issued)
        payload = [
            identity.openid,
            identity.nickname,
            identity.avatar_url,
            identity.unionid,
            identity.signed_in_at,
            expires,
            issued,
            session_id or secrets.token_urlsafe(SESSION_ID_BYTES),
        ]
        return self._serializer.dumps(payload)

    def reissue(self, session: VerifiedToken) -> tuple[str, int]:
        """A fresh token of ``session`` (issued now, the same session id) and its expiry."""
        now = int(self._clock())
        identity = session.identity
        token = self.dumps(identity, issued_at=now, session_id=session.session_id)
        return token, self._expiry(identity.signed_in_at, now)

    def _expiry(self, signed_in_at: int, issued_at: int) -> int:
        return min(issued_at + self.max_age, signed_in_at + self.max_lifetime)

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
            fields = _session_fields(payload, token)
        except (BadData, ValueError, TypeError):
            return None
        if fields is None:
            return None
        openid, nickname, avatar, unionid, signed_in_at, expires, issued_at, session_id = fields
        expires = min(expires, self._expiry(signed_in_at, issued_at))
        if expires <= self._clock():
            return None
        refresh_at = expires if self.refresh is None else min(expires, issued_at + self.refresh)
        identity = Identity(openid, nickname, avatar, unionid, signed_in_at)
        headers = tuple(self._render_headers(identity))
        return VerifiedToken(
            identity, expires, self._render(identity, headers), headers, refresh_at, session_id
        )


Fields = tuple[str, str, str, str | None, int, int, int, str]


def _session_fields(payload: object, token: str) -> Fields | None:
    """The eight fields of a session payload, of the right types (a six-element token of an
    earlier version gets its sign-in as issued-at and an id from its signature); else None."""
    if not isinstance(payload, list):
        return None
    if len(payload) == 6:
        legacy_id = hashlib.sha256(token.encode()).hexdigest()[:22]
        payload = [*payload, payload[4], legacy_id]
    if len(payload) != 8:
        return None
    openid, nickname, avatar, unionid, signed_in_at, expires, issued_at, session_id = payload
    if not (
        _all_str(openid, nickname, avatar, session_id)
        and (unionid is None or isinstance(unionid, str))
        and _all_int(signed_in_at, expires, issued_at)
        and signed_in_at <= issued_at
        and 0 < len(session_id) <= MAX_SESSION_ID
    ):
        return None
    return openid, nickname, avatar, unionid, signed_in_at, expires, issued_at, session_id


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
