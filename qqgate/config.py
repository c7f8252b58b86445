"""Settings: one frozen, validated object built from an INI file, the environment and overrides.

Precedence, highest first: keyword overrides, ``QQGATE_<KEY>`` environment variables, the
``[qqgate]`` section of the INI file, then defaults. Secrets can therefore live in the environment
(a systemd EnvironmentFile, a container secret) and never in a file.

Validation collects every problem before raising, so an operator fixes a config in one go.
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any

from . import values
from .validation import CHECKS
from .values import as_text

SECTION = "qqgate"
ENV_PREFIX = "QQGATE_"
DEFAULT_CONFIG = "gate.ini"


class ConfigError(Exception):
    """The configuration is invalid. ``problems`` lists ``(key, what is wrong)`` pairs."""

    def __init__(self, problems: list[tuple[str, str]]) -> None:
        self.problems = problems
        lines = "\n".join(f"  {key}: {message}" for key, message in problems)
        super().__init__(f"invalid qqgate configuration:\n{lines}")

    @property
    def keys(self) -> list[str]:
        return [key for key, _ in self.problems]


def setting(
    default: Any, parse: Callable[[str], Any], *, key: str | None = None, repr: bool = True
) -> Any:
    """A setting with a default: its parser (and its key in gate.ini, if not its name)."""
    return field(default=default, repr=repr, metadata=_meta(parse, key))


def required(parse: Callable[[str], Any], *, key: str | None = None, repr: bool = True) -> Any:
    """A setting without a default: the config must give it."""
    return field(repr=repr, metadata=_meta(parse, key))


def _meta(parse: Callable[[str], Any], key: str | None) -> dict[str, Any]:
    return {"parse": parse} if key is None else {"parse": parse, "key": key}


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting, declared once: its type, default and parser (``qqgate.values``)."""

    app_id: str = required(values.text)
    app_key: str = required(values.text, repr=False)
    redirect_uri: str = required(values.text)
    secret_keys: tuple[str, ...] = required(values.words, key="secret_key", repr=False)
    prefix: str = setting("/_qqgate", values.text)
    qq_base_url: str = setting("https://graph.qq.com", values.text)
    scope: str = setting("get_user_info", values.text)
    timeout: float = setting(5.0, values.seconds_up_to(120))
    session_max_age: int = setting(7 * 86400, values.duration)
    # MiB per worker for verified session tokens (qqgate.tokencache: ~1.4 KiB a user); 0: no cache
    token_cache_mib: int = setting(192, values.count(0, 65536))
    cookie_name: str = setting("qqgate", values.text)
    cookie_secure: bool = setting(True, values.boolean)
    cookie_samesite: str = setting("lax", values.choice("lax", "strict", "none"))
    cookie_domain: str | None = setting(None, values.domain)
    public_paths: tuple[str, ...] = setting((), values.words)
    allowed_openids: frozenset[str] = setting(frozenset(), values.openids)
    # seconds nginx may keep a 2xx answer of /auth (qqgate.forward); also how long a change to
    # allowed_openids or secret_key may take to reach nginx's users. 0: never cached
    auth_cache_seconds: int = setting(10, values.count(0, 300))
    openid_header: str = setting("X-QQ-OpenID", values.text)
    nickname_header: str = setting("X-QQ-Nickname", values.text)
    unionid_header: str = setting("X-QQ-UnionID", values.text)
    unionid: bool = setting(False, values.boolean)
    # proxy mode (qqgate.upstream)
    upstream: str | None = setting(None, values.upstream_url)
    upstream_timeout: float = setting(60.0, values.seconds_up_to(3600))
    preserve_host: bool = setting(True, values.boolean)
    # WebSockets through the proxy (qqgate.upstream.tunnel): origins allowed besides the gate's
    websocket_origins: tuple[str, ...] = setting((), values.origins)
    websocket_idle_timeout: float = setting(300.0, values.seconds_up_to(86400))
    # bounds a client cannot stretch (qqgate serve: qqgate.worker and qqgate.gunicorn_conf)
    client_header_timeout: float = setting(10.0, values.seconds_up_to(300))
    client_idle_timeout: float = setting(60.0, values.seconds_up_to(3600))
    max_request_line: int = setting(4094, values.count(256, 8190))
    max_header_fields: int = setting(100, values.count(16, 32768))
    max_header_field_size: int = setting(8190, values.count(1024, 65536))
    worker_connections: int = setting(1000, values.count(1, 100000))
    # what visitors see (qqgate.pages)
    site_name: str = setting("", values.text)
    sign_in_page: bool = setting(False, values.boolean)
    language: str = setting("auto", values.choice("auto", "zh", "en"))
    templates_dir: str | None = setting(None, values.optional_text)
    log_format: str = setting("text", values.choice("text", "json"))

    @property
    def state_cookie_name(self) -> str:
        return f"{self.cookie_name}_state"

    @property
    def identity_headers(self) -> tuple[str, ...]:
        return (self.openid_header, self.nickname_header, self.unionid_header)


_PARSERS: dict[str, Callable[[str], Any]] = {
    f.metadata.get("key", f.name): f.metadata["parse"] for f in fields(Settings)
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
            values[key] = _PARSERS[key](as_text(value))
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


def _validate(values: dict[str, Any]) -> list[tuple[str, str]]:
    merged = {**_DEFAULTS, **values}
    problems: list[tuple[str, str]] = []
    for check in CHECKS:
        problems += check(merged, values)
    return problems
