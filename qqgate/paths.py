"""Public-path matching: which requests pass without a sign-in.

Servers hand us PATH_INFO already percent-decoded once, so ``/static%2f..%2fadmin`` arrives as
``/static/../admin``. We do not try to normalise such a path and then trust the result: the app
behind us may resolve it differently. A path is public only when it is already in normal form
(no ``.``/``..``/empty segments, no backslash, ``;``, ``%``, ``#``, ``?`` or control characters) and
sits under a public prefix on a segment boundary. Everything else needs a sign-in. The query string
is never looked at.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

_NOT_NORMAL = re.compile(r"[\x00-\x1f\x7f%\\;#?]|//|/\.\.?(?:/|$)")


class PublicPaths:
    """Matches a request path against prefixes such as ``/static/`` or ``/healthz``."""

    __slots__ = ("_bases", "_prefixes")

    def __init__(self, prefixes: Iterable[str]) -> None:
        self._bases = frozenset(p.rstrip("/") for p in prefixes)
        self._prefixes = tuple(sorted(base + "/" for base in self._bases))

    def __bool__(self) -> bool:
        return bool(self._bases)

    def __contains__(self, path: str) -> bool:
        if not self._bases or _NOT_NORMAL.search(path):
            return False
        return path in self._bases or path.startswith(self._prefixes)
