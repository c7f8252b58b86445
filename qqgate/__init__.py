"""qqgate: "Sign in with QQ" (QQ Connect) in front of any WSGI or HTTP app."""

from __future__ import annotations

from importlib import import_module
from typing import Any

from .config import ConfigError, Settings, load_settings

# Loaded on first use: the gunicorn master imports qqgate.config only, so the HTTP client
# (requests, ssl) is first imported in each worker, after gevent has patched the standard library.
_LAZY = {
    "QQGate": "middleware",
    "Identity": "session",
    "QQClient": "qq",
    "QQError": "qq",
    "QQUnavailable": "qq",
}

__all__ = [
    "ConfigError",
    "Identity",
    "QQClient",
    "QQError",
    "QQGate",
    "QQUnavailable",
    "Settings",
    "load_settings",
]


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'qqgate' has no attribute {name!r}")
    value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
    globals()[name] = value
    return value
