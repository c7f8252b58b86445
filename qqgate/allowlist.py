"""Who may pass once signed in: ``allowed_openids``, the openids in ``allowed_openids_file`` and
``allowed_unionids`` (QQ's unionid is one user across a company's apps). No list at all: everyone.

The file (one openid a line, ``#`` starts a comment) is read again when it changes, so an operator
adds or removes a user without a restart. Checking costs the signed-in hot path one clock reading:
the file's status is looked at most once every ``CHECK_SECONDS`` (by whichever request comes then),
and it is read again only when its modification time, size or inode moved. A file that cannot be
read any more keeps the last list read (an editor replacing it must not let everyone in or out),
and says so in the log.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable

from . import logs
from .config import Settings
from .session import Identity

CHECK_SECONDS = 1.0
log = logging.getLogger("qqgate")


def read_openids(path: str) -> frozenset[str]:
    """The openids in ``path``: one a line, blank lines and ``#`` comments skipped."""
    with open(path, encoding="utf-8") as fh:
        return frozenset(
            word for line in fh for word in line.partition("#")[0].split() if word.strip()
        )


class AllowList:
    """The allow-list of one gate, its file kept current."""

    def __init__(self, settings: Settings, clock: Callable[[], float] = time.monotonic) -> None:
        self._openids = settings.allowed_openids
        self._unionids = settings.allowed_unionids
        self._path = settings.allowed_openids_file
        self._clock = clock
        self._lock = threading.Lock()
        self._file_openids: frozenset[str] = frozenset()
        self._signature: tuple[int, int, int] | None = None
        self._next_check = 0.0
        if self._path:
            self._reload()
        self.restricted = bool(self._openids or self._unionids or self._path)

    def allows(self, identity: Identity) -> bool:
        if not self.restricted:
            return True
        if identity.openid in self._openids:
            return True
        if identity.unionid is not None and identity.unionid in self._unionids:
            return True
        if self._path is None:
            return False
        if self._clock() >= self._next_check:
            self._reload()
        return identity.openid in self._file_openids

    def _reload(self) -> None:
        with self._lock:
            now = self._clock()
            if now < self._next_check:
                return  # another thread just did it
            self._next_check = now + CHECK_SECONDS
            assert self._path is not None
            try:
                status = os.stat(self._path)
                signature = (status.st_mtime_ns, status.st_size, status.st_ino)
                if signature != self._signature:
                    self._file_openids = read_openids(self._path)
                    self._signature = signature
            except (OSError, UnicodeDecodeError) as exc:
                reason = type(exc).__name__
                logs.event(log, logging.ERROR, "allow-list unreadable", reason=reason)
