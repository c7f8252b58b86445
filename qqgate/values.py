"""The parsers of setting values: each takes the text of a value (from gate.ini, a ``QQGATE_*``
variable or an override) and returns it typed, or raises ``ValueError`` with a readable reason.
A value given already typed is turned back into text first (``as_text``), so it passes the same
checks: ``timeout = 0`` is refused whether it came as ``"0"`` or ``0``."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterable
from urllib.parse import urlsplit

_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def as_text(value: object) -> str:
    """A typed value as the text a config file would hold."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, Iterable):
        return " ".join(str(item) for item in value)
    return str(value)


def text(raw: str) -> str:
    return raw.strip()


def words(raw: str) -> tuple[str, ...]:
    return tuple(raw.replace(",", " ").split())


def boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def seconds_up_to(limit: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {raw!r}") from None
        if not 0 < value <= limit:
            raise ValueError(f"must be more than 0 and at most {limit:g} seconds")
        return value

    return parse


def count(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        text = raw.strip()
        if not text.isdigit():
            raise ValueError(f"expected a whole number, got {raw!r}")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}")
        return value

    return parse


def origins(raw: str) -> tuple[str, ...]:
    origins = []
    for word in words(raw):
        origin = normal_origin(word)
        if origin is None:
            raise ValueError(f"{word!r} is not an origin like https://app.example.com")
        origins.append(origin)
    return tuple(origins)


def normal_origin(text: str) -> str | None:
    """``scheme://host[:port]`` lowercased, without a default port; None if ``text`` is not an
    http(s) origin (a path, query, user or fragment makes it no origin)."""
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    if parts.path or parts.query or parts.fragment or parts.username is not None:
        return None
    default = 443 if parts.scheme == "https" else 80
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")


def choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def duration(raw: str) -> int:
    match = _DURATION.match(raw.strip().lower())
    if not match:
        raise ValueError(f"expected seconds or a number with s/m/h/d, got {raw!r}")
    value = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if value <= 0:
        raise ValueError("must be positive")
    return value


def domain(raw: str) -> str | None:
    return raw.strip().lstrip(".").lower() or None


def openids(raw: str) -> frozenset[str]:
    return frozenset(words(raw))


def upstream_url(raw: str) -> str | None:
    return raw.strip().rstrip("/") or None


def optional_text(raw: str) -> str | None:
    return raw.strip() or None


def bind_address(raw: str) -> str:
    """Where gunicorn listens: ``HOST:PORT``, ``[IPv6]:PORT`` or ``unix:PATH``."""
    value = raw.strip()
    if value.startswith("unix:") and len(value) > len("unix:"):
        return value
    host, colon, port = value.rpartition(":")
    if not colon or not host or host in ("[]",) or (":" in host and not host.startswith("[")):
        raise ValueError(f"expected HOST:PORT, [IPv6]:PORT or unix:PATH, got {raw!r}")
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError(f"the port must be a number from 1 to 65535, got {port!r}")
    return value


def networks(raw: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """Addresses and CIDR blocks: ``127.0.0.1 10.0.0.0/8 ::1``."""
    found = []
    for word in words(raw):
        try:
            found.append(ipaddress.ip_network(word, strict=False))
        except ValueError:
            raise ValueError(
                f"{word!r} is not an IP address or a CIDR block like 10.0.0.0/8"
            ) from None
    return tuple(found)
