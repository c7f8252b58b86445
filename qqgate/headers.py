"""The identity headers: which ones a client may never send, and what the gate sets in their place.

Header values are latin-1 (PEP 3333) while nicknames are Chinese, emoji, even CR/LF, so the nickname
travels percent-encoded as UTF-8 (RFC 3986); downstream apps decode it with ``unquote``.
"""

from __future__ import annotations

from urllib.parse import quote

from .config import Settings
from .session import Identity
from .wsgiutil import environ_key

IDENTITY_KEY = "qqgate.identity"


class IdentityHeaders:
    """Strips client-sent identity from an environ and renders a signed-in identity as headers."""

    __slots__ = ("_names", "_unionid", "untrusted_keys")

    def __init__(self, settings: Settings) -> None:
        self._names = settings.identity_headers  # (openid, nickname, unionid) header names
        self._unionid = settings.unionid
        # Servers fold "X-QQ_OpenID" and "x-qq-openid" into one environ key: removing by key
        # covers every spelling. Remote-User is on the list for apps that read HTTP_REMOTE_USER.
        self.untrusted_keys = (
            *(environ_key(name) for name in self._names),
            "HTTP_REMOTE_USER",
            "REMOTE_USER",
            IDENTITY_KEY,
        )

    def strip(self, environ: dict) -> None:
        for key in self.untrusted_keys:
            environ.pop(key, None)

    def headers(self, identity: Identity) -> list[tuple[str, str]]:
        """``(name, value)`` pairs for ``identity``, as an upstream or nginx should receive them."""
        openid_name, nickname_name, unionid_name = self._names
        pairs = [(openid_name, identity.openid), (nickname_name, quote(identity.nickname, safe=""))]
        if self._unionid and identity.unionid:
            pairs.append((unionid_name, identity.unionid))
        return pairs

    def environ(self, identity: Identity) -> dict[str, object]:
        """The environ entries that carry ``identity`` to a WSGI app."""
        extra: dict[str, object] = {
            environ_key(name): value for name, value in self.headers(identity)
        }
        extra["REMOTE_USER"] = identity.openid
        extra[IDENTITY_KEY] = identity
        return extra
