"""qqgate: "Sign in with QQ" (QQ Connect) in front of any WSGI or HTTP app."""

from .config import ConfigError, Settings, load_settings
from .middleware import QQGate
from .qq import QQClient, QQError, QQUnavailable
from .session import Identity

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
