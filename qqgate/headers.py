"""The identity headers: which ones a client may never send, and what the gate sets in their place.

Header values are latin-1 (PEP 3333) while nicknames are Chinese, emoji, even CR/LF, so the nickname
travels percent-encoded as UTF-8 (RFC 3986); downstream apps decode it with ``unquote``.
"""

from __future__ import annotations

from collections.abc import Sequence

from .config import Settings
from .session import Identity
from .wsgiutil import Environ, environ_key

IDENTITY_KEY = "qqgate.identity"
# urllib.parse.quote(text, safe="") as a byte table: RFC 3986 unreserved bytes as they are, every
# other byte as %XX. Same output, a third of the time (quote builds a byte quoter per call).
_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_PERCENT = tuple(chr(b) if b in _UNRESERVED else f"%{b:02X}" for b in range(256))


def percent_encode(text: str) -> str:
    """``text`` as percent-encoded UTF-8, like ``urllib.parse.quote(text, safe="")``."""
    return "".join([_PERCENT[b] for b in text.encode()])


class IdentityHeaders:
    """Strips client-sent identity from an environ and renders a signed-in identity as headers."""

    __slots__ = ("_keys", "_names", "_unionid", "_untrusted", "untrusted_keys")

    def __init__(self, settings: Settings) -> None:
        self._names = settings.identity_headers  # (openid, nickname, unionid) header names
        self._unionid = settings.unionid
        self._keys = {name: environ_key(name) for name in self._names}
        # Servers fold "X-QQ_OpenID" and "x-qq-openid" into one environ key: removing by key
        # covers every spelling. Remote-User is on the list for apps that read HTTP_REMOTE_USER.
        self.untrusted_keys = (
            *self._keys.values(),
            "HTTP_REMOTE_USER",
            "REMOTE_USER",
            IDENTITY_KEY,
        )
        self._untrusted = frozenset(self.untrusted_keys)

    def strip(self, environ: Environ) -> None:
        if environ.keys().isdisjoint(self._untrusted):  # the usual case: one C call, no pops
            return
        for key in self.untrusted_keys:
            environ.pop(key, None)

    def headers(self, identity: Identity) -> list[tuple[str, str]]:
        """``(name, value)`` pairs for ``identity``, as an upstream or nginx should receive them."""
        openid_name, nickname_name, unionid_name = self._names
        pairs = [(openid_name, identity.openid), (nickname_name, percent_encode(identity.nickname))]
        if self._unionid and identity.unionid:
            pairs.append((unionid_name, identity.unionid))
        return pairs

    def environ(
        self, identity: Identity, headers: Sequence[tuple[str, str]] | None = None
    ) -> dict[str, object]:
        """The environ entries that carry ``identity`` to a WSGI app (from its ``headers``, when
        the caller has them already)."""
        keys = self._keys
        pairs = self.headers(identity) if headers is None else headers
        extra: dict[str, object] = {keys[name]: value for name, value in pairs}
        extra["REMOTE_USER"] = identity.openid
        extra[IDENTITY_KEY] = identity
        return extra
