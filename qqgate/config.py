"""Settings: one frozen, validated object built from an INI file, the environment and overrides.

Precedence, highest first: keyword overrides, ``QQGATE_<KEY>`` environment variables, the
``[qqgate]`` section of the INI file, then defaults. Secrets can therefore live in the environment
(a systemd EnvironmentFile, a container secret) and never in a file.

Validation collects every problem before raising, so an operator fixes a config in one go.
"""

from __future__ import annotations

import configparser
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .validation import CHECKS

SECTION = "qqgate"
ENV_PREFIX = "QQGATE_"
DEFAULT_CONFIG = "gate.ini"

_DURATION = re.compile(r"^(\d+)\s*([smhd]?)$")
_DURATION_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(Exception):
    """The configuration is invalid. ``problems`` lists ``(key, what is wrong)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {key}: {message}" for key, message in problems)
        super().__init__(f"invalid qqgate configuration:\n{lines}")

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.problems]


@dataclass(frozen=True, slots=True)
class Settings:
    app_id: str
    app_key: str = field(repr=False)
    redirect_uri: str
    secret_keys: tuple[str, ...] = field(repr=False)
    prefix: str = "/_qqgate"
    qq_base_url: str = "https://graph.qq.com"
    scope: str = "get_user_info"
    timeout: float = 5.0
    session_max_age: int = 7 * 86400
    cookie_name: str = "qqgate"
    cookie_secure: bool = True
    cookie_samesite: str = "lax"
    cookie_domain: str | None = None
    public_paths: tuple[str, ...] = ()
    allowed_openids: frozenset[str] = frozenset()
    openid_header: str = "X-QQ-OpenID"
    nickname_header: str = "X-QQ-Nickname"
    unionid_header: str = "X-QQ-UnionID"
    unionid: bool = False
    # proxy mode (qqgate.upstream)
    upstream: str | None = None
    upstream_timeout: float = 60.0
    preserve_host: bool = True
    # WebSockets through the proxy (qqgate.upstream.tunnel): origins allowed besides the gate's
    websocket_origins: tuple[str, ...] = ()
    websocket_idle_timeout: float = 300.0
    # bounds a client cannot stretch (qqgate serve: qqgate.worker and qqgate.gunicorn_conf)
    client_header_timeout: float = 10.0
    client_idle_timeout: float = 60.0
    max_request_line: int = 4094
    max_header_fields: int = 100
    max_header_field_size: int = 8190
    worker_connections: int = 1000
    # what visitors see (qqgate.pages)
    site_name: str = ""
    sign_in_page: bool = False
    language: str = "auto"
    templates_dir: str | None = None
    log_format: str = "text"

    @property
    def state_cookie_name(self) -> str:
        return f"{self.cookie_name}_state"

    @property
    def identity_headers(self) -> tuple[str, ...]:
        return (self.openid_header, self.nickname_header, self.unionid_header)


# --- value parsers: each returns the parsed value or raises ValueError with a readable reason ---


def _text(raw: str) -> str:
    return raw.strip()


def _words(raw: str) -> tuple[str, ...]:
    return tuple(raw.replace(",", " ").split())


def _boolean(raw: str) -> bool:
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true or false, got {raw!r}")


def _seconds_up_to(limit: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw)
        except ValueError:
            raise ValueError(f"expected a number of seconds, got {raw!r}") from None
        if not 0 < value <= limit:
            raise ValueError(f"must be more than 0 and at most {limit:g} seconds")
        return value

    return parse


def _count(low: int, high: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        text = raw.strip()
        if not text.isdigit():
            raise ValueError(f"expected a whole number, got {raw!r}")
        value = int(text)
        if not low <= value <= high:
            raise ValueError(f"must be from {low} to {high}")
        return value

    return parse


def _origins(raw: str) -> tuple[str, ...]:
    origins = []
    for word in _words(raw):
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


def _choice(*allowed: str) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in allowed:
            raise ValueError(f"must be one of {', '.join(allowed)}, got {raw!r}")
        return value

    return parse


def _duration(raw: str) -> int:
    match = _DURATION.match(raw.strip().lower())
    if not match:
        raise ValueError(f"expected seconds or a number with s/m/h/d, got {raw!r}")
    value = int(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if value <= 0:
        raise ValueError("must be positive")
    return value


_PARSERS: dict[str, Callable[[str], Any]] = {
    "app_id": _text,
    "app_key": _text,
    "redirect_uri": _text,
    "secret_key": _words,
    "prefix": _text,
    "qq_base_url": _text,
    "scope": _text,
    "timeout": _seconds_up_to(120),
    "session_max_age": _duration,
    "cookie_name": _text,
    "cookie_secure": _boolean,
    "cookie_samesite": _choice("lax", "strict", "none"),
    "cookie_domain": lambda raw: raw.strip().lstrip(".").lower() or None,
    "public_paths": _words,
    "allowed_openids": lambda raw: frozenset(_words(raw)),
    "openid_header": _text,
    "nickname_header": _text,
    "unionid_header": _text,
    "unionid": _boolean,
    "upstream": lambda raw: raw.strip().rstrip("/") or None,
    "upstream_timeout": _seconds_up_to(3600),
    "preserve_host": _boolean,
    "websocket_origins": _origins,
    "websocket_idle_timeout": _seconds_up_to(86400),
    "client_header_timeout": _seconds_up_to(300),
    "client_idle_timeout": _seconds_up_to(3600),
    "max_request_line": _count(256, 8190),
    "max_header_fields": _count(16, 32768),
    "max_header_field_size": _count(1024, 65536),
    "worker_connections": _count(1, 100000),
    "site_name": _text,
    "sign_in_page": _boolean,
    "language": _choice("auto", "zh", "en"),
    "templates_dir": lambda raw: raw.strip() or None,
    "log_format": _choice("text", "json"),
}
KEYS = tuple(_PARSERS)
_DEFAULTS = {f.name: f.default for f in fields(Settings) if f.default is not MISSING}
REQUIRED = ("app_id", "app_key", "redirect_uri", "secret_key")


def config_path() -> str:
    """The gate.ini of a standalone gate: ``QQGATE_CONFIG``, else ``./gate.ini``."""
    return os.environ.get("QQGATE_CONFIG") or DEFAULT_CONFIG


def load_settings(path: str | os.PathLike[str] | None = None, **overrides: Any) -> Settings:
    """Build validated :class:`Settings` from an INI file, ``QQGATE_*`` variables and overrides."""
    raw: dict[str, Any] = {}
    if path is not None:
        raw.update(read_ini(path))
    raw.update(read_environ(os.environ))
    raw.update(overrides)
    return settings_from_mapping(raw)


def read_ini(path: str | os.PathLike[str]) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with Path(path).open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except OSError as exc:
        raise ConfigError(
            [("config file", f"cannot read {os.fspath(path)!r}: {exc.strerror}")]
        ) from None
    except (configparser.Error, UnicodeDecodeError) as exc:
        problem = f"{os.fspath(path)!r} is not a valid INI file: {type(exc).__name__}"
        raise ConfigError([("config file", problem)]) from None
    if not parser.has_section(SECTION):
        raise ConfigError([("config file", f"{os.fspath(path)!r} has no [{SECTION}] section")])
    return dict(parser.items(SECTION))


def read_environ(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        name[len(ENV_PREFIX) :].lower(): value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].lower() in _PARSERS
    }


def settings_from_mapping(raw: Mapping[str, Any]) -> Settings:
    """Parse and validate a mapping of key -> str (or already-typed) values."""
    problems: list[tuple[str, str]] = []
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _PARSERS:
            problems.append((key, "unknown key"))
            continue
        if value is None or value == "":
            continue
        try:
            values[key] = _PARSERS[key](value) if isinstance(value, str) else value
        except ValueError as exc:
            problems.append((key, str(exc)))
    problems += [(key, "missing (required)") for key in REQUIRED if not values.get(key)]
    if problems:
        raise ConfigError(problems)
    _normalise(values)
    problems = _validate(values)
    if problems:
        raise ConfigError(problems)
    values["secret_keys"] = tuple(values.pop("secret_key"))
    return Settings(**values)


def _normalise(values: dict[str, Any]) -> None:
    if "prefix" in values:
        values["prefix"] = "/" + values["prefix"].strip("/")
    if "qq_base_url" in values:
        values["qq_base_url"] = values["qq_base_url"].rstrip("/")
    for key in ("public_paths", "allowed_openids", "secret_key"):
        if isinstance(values.get(key), str):
            values[key] = _PARSERS[key](values[key])


def _validate(values: dict[str, Any]) -> list[tuple[str, str]]:
    merged = {**_DEFAULTS, **values}
    problems: list[tuple[str, str]] = []
    for check in CHECKS:
        problems += check(merged, values)
    return problems
