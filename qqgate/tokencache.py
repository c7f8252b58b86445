"""The session tokens a worker has verified, kept up to a budget of memory rather than a count.

A returning session cookie is then a dict lookup instead of a signature check. What one entry costs
is estimated by :func:`entry_cost` from the lengths of its strings (the token, the openid, the
avatar URL, the nickname and its two percent-encoded renderings) plus :data:`ENTRY_BYTES` for the
objects around them; tests/test_tokencache.py checks the estimate against what ``tracemalloc`` sees
a cache allocate (it is 2-10 % above). A 32-character openid, a seven-character Chinese and emoji
nickname and a QQ avatar URL (a 256-character token with its issued-at time and session id) take
1.6 KiB. So the default ``token_cache_mib`` of 192 holds about 120,000 signed-in users per worker
(each worker keeps its own); a worker only takes that memory as users come back, nothing is
allocated in advance.

Lookups take no lock: a dict lookup is atomic under the GIL, and an entry is an immutable object
whose expiry the caller checks on every hit, so no reader can get an expired identity. Writes
(misses only) take a lock so that the budget holds with many threads. The oldest entry goes first
(no reordering on a hit: a hit stays one lookup; a user whose entry went pays one verification).
``hits`` and ``misses`` count lookups, for metrics; under threads an increment may rarely be lost.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from .session import Identity

Clock = Callable[[], float]
MIB = 1 << 20
# What an entry holds besides its strings' characters (measured with tracemalloc, CPython 3.11,
# tests/test_tokencache.py): the OrderedDict's slot, entry, list node and node index (65-92 bytes
# amortised over its tables' growth), the VerifiedToken, the Identity, two ints, the environ dict,
# the headers' tuples, the refresh time and the object headers of the token, openid, session id,
# avatar URL and rendered strings.
ENTRY_BYTES = 1080
# A nickname character: up to 4 bytes in the identity, and percent-encoded UTF-8 (up to 12 ASCII
# characters, "%F0%9F%90%A7") in the environ and again in the headers. The upper end for Chinese
# and emoji, so the budget is not overrun; a Latin nickname costs less than counted.
NICKNAME_CHAR_BYTES = 28
ASCII_NICKNAME_CHAR_BYTES = 7  # 1 in the identity, up to 3 ("%20") in each rendering


class VerifiedToken(NamedTuple):
    """A session token that verified: its identity, its own expiry, and what ``render`` made of
    the identity (for the middleware: the environ entries to set), computed once per token.
    ``environ`` is shared by every request that presents the token: copy it, never change it.
    (A named tuple: immutable, and built in half the time of a frozen dataclass.)
    """

    identity: Identity
    expires: int
    environ: Mapping[str, object]
    # and as request headers (for nginx auth_request's answer): rendered once per token too
    headers: tuple[tuple[str, str], ...] = ()
    # when the cookie is due to be re-issued (sliding sessions; at most ``expires``)
    refresh_at: float = float("inf")
    # the session it belongs to, kept across re-issues: what a revocation names
    session_id: str = ""


def entry_cost(token: str, entry: VerifiedToken) -> int:
    """Bytes that keeping ``entry`` under ``token`` holds, estimated from its strings' lengths
    (``sys.getsizeof`` on each object would cost more than the verification it saves)."""
    identity = entry.identity
    text = len(token) + len(identity.openid) + len(identity.avatar_url) + len(entry.session_id)
    text += len(identity.unionid) if identity.unionid is not None else 0
    nickname = identity.nickname
    per_char = ASCII_NICKNAME_CHAR_BYTES if nickname.isascii() else NICKNAME_CHAR_BYTES
    return ENTRY_BYTES + text + per_char * len(nickname)


class TokenCache:
    """Verified tokens, keyed by the exact token string, up to ``max_bytes`` of their entries'
    :func:`entry_cost`; the oldest goes first. ``max_bytes = 0`` keeps nothing."""

    def __init__(self, max_bytes: int, clock: Clock = time.time) -> None:
        self.max_bytes = max_bytes
        self.bytes = 0  # the entry_cost of what is held now
        self.hits = 0
        self.misses = 0
        self._clock = clock
        self._entries: OrderedDict[str, VerifiedToken] = OrderedDict()
        self._lock = threading.Lock()
        # The bare lookup, without the expiry check: callers on the hot path check it themselves.
        self.peek = self._entries.get

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, token: str) -> bool:
        return token in self._entries

    @property
    def hit_ratio(self) -> float:
        """Hits over lookups so far (0.0 before any)."""
        lookups = self.hits + self.misses
        return self.hits / lookups if lookups else 0.0

    def get(self, token: str) -> VerifiedToken | None:
        """The unexpired entry for exactly ``token``, or None (not counted as a hit or miss)."""
        entry = self.peek(token)
        if entry is not None and entry.expires <= self._clock():
            self.discard(token, entry)
            return None
        return entry

    def discard(self, token: str, entry: VerifiedToken) -> None:
        """Forget ``token`` if ``entry`` is still what it maps to."""
        with self._lock:
            if self._entries.get(token) is entry:
                del self._entries[token]
                self.bytes -= entry_cost(token, entry)

    def put(self, token: str, entry: VerifiedToken) -> None:
        """Keep ``entry`` under ``token``, the oldest entries making room (an entry bigger than
        the whole budget is not kept)."""
        cost = entry_cost(token, entry)
        if cost > self.max_bytes:
            return
        entries = self._entries
        with self._lock:
            old = entries.pop(token, None)
            if old is not None:
                self.bytes -= entry_cost(token, old)
            while entries and self.bytes + cost > self.max_bytes:
                oldest, evicted = entries.popitem(last=False)  # O(1)
                # The same objects as when it was put: the same cost (no second record kept).
                self.bytes -= entry_cost(oldest, evicted)
            entries[token] = entry
            self.bytes += cost

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self.bytes = 0
