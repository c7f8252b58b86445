"""Settings: one frozen, validated object built from an INI file, the environment and overrides.

Precedence, highest first: keyword overrides, ``QQGATE_<KEY>`` environment variables, the
``[qqgate]`` section of the INI file, then defaults. Secrets can therefore live in the environment
(a systemd EnvironmentFile, a container secret) and never in a file.

Validation collects every problem before raising, so an operator fixes a config in one go.
"""

from __future__ import annotations

import configparser
import difflib
import os
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from . import values
from .forwarded import IPNetwork
from .validation import CHECKS
from .values import as_text

SECTION = "qqgate"
ENV_PREFIX = "QQGATE_"
DEFAULT_CONFIG = "gate.ini"
# QQGATE_* variables that are not settings: read by qqgate.gunicorn_conf and qqgate serve.
ENV_VARIABLES = (
    "QQGATE_CONFIG",
    "QQGATE_BIND",
    "QQGATE_WORKERS",
    "QQGATE_WORKER_CLASS",
    "QQGATE_THREADS",
    "QQGATE_FORWARDED_ALLOW_IPS",
)
HOST_COOKIE_PREFIX = "__Host-"


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
    # sliding sessions (qqgate.session): idle limit, absolute limit from the sign-in, and the
    # age at which a signed-in request gets its cookie re-issued (defaults: see _normalise)
    session_max_age: int = setting(7 * 86400, values.duration)
    session_max_lifetime: int = setting(30 * 86400, values.duration)
    session_refresh: int = setting(86400, values.duration)
    # revocation across gate hosts (qqgate.sessionstore): redis://host:port/db; may hold a password
    session_store: str | None = setting(None, values.optional_text, repr=False)
    # MiB per worker for verified session tokens (qqgate.tokencache: ~1.6 KiB a user); 0: no cache
    token_cache_mib: int = setting(192, values.count(0, 65536))
    # "__Host-qqgate" when the cookies may carry that prefix (cookie_secure, no cookie_domain):
    # browsers then refuse a copy from any sibling site (see default_cookie_name)
    cookie_name: str = setting("qqgate", values.text)
    cookie_secure: bool = setting(True, values.boolean)
    cookie_samesite: str = setting("lax", values.choice("lax", "strict", "none"))
    cookie_domain: str | None = setting(None, values.domain)
    public_paths: tuple[str, ...] = setting((), values.words)
    allowed_openids: frozenset[str] = setting(frozenset(), values.openids)
    # one openid a line, read again when it changes (qqgate.allowlist)
    allowed_openids_file: str | None = setting(None, values.optional_text)
    allowed_unionids: frozenset[str] = setting(frozenset(), values.openids)
    # seconds nginx may keep a 2xx answer of /auth (qqgate.forward); also how long a change to
    # the allow-lists or secret_key may take to reach nginx's users. 0: never cached
    auth_cache_seconds: int = setting(10, values.count(0, 300))
    openid_header: str = setting("X-QQ-OpenID", values.text)
    nickname_header: str = setting("X-QQ-Nickname", values.text)
    unionid_header: str = setting("X-QQ-UnionID", values.text)
    unionid: bool = setting(False, values.boolean)
    avatar_https: bool = setting(True, values.boolean)
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
    # reverse proxies whose X-Forwarded-For names the visitor in the logs (qqgate.forwarded)
    trusted_proxies: tuple[IPNetwork, ...] = setting((), values.networks)
    # who may read {prefix}/metrics (qqgate.metrics); empty: nobody, the route is not there
    metrics_allow: tuple[IPNetwork, ...] = setting((), values.networks)

    @property
    def mount(self) -> str:
        """Where the app is mounted in the site's URL space: the path of ``redirect_uri`` before
        ``{prefix}/callback`` ("" for an app at the site root)."""
        path = urlsplit(self.redirect_uri).path
        return path[: len(path) - len(self.prefix) - len("/callback")]

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
    environ = read_environ(os.environ)
    raw.update(environ)
    raw.update(overrides)
    sources = {key: ENV_PREFIX + key.upper() for key in environ if key not in overrides}
    return settings_from_mapping(raw, sources, unknown_variables(os.environ))


def read_ini(path: str | os.PathLike[str]) -> dict[str, str]:
    parser = configparser.ConfigParser(interpolation=None)
    try:
        with Path(path).open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except OSError as exc:
        raise ConfigError(
            [("config file", f"cannot read {os.fspath(path)!r}: {exc.strerror}")]
        ) from None
    except UnicodeDecodeError:
        raise ConfigError([("config file", f"{os.fspath(path)!r} is not UTF-8 text")]) from None
    except configparser.Error as exc:
        raise ConfigError(ini_problems(os.fspath(path), exc)) from None
    if not parser.has_section(SECTION):
        raise ConfigError([("config file", f"{os.fspath(path)!r} has no [{SECTION}] section")])
    return dict(parser.items(SECTION))


def ini_problems(path: str, exc: configparser.Error) -> list[tuple[str, str]]:
    """What configparser found wrong, by line number. The lines themselves are not repeated:
    a malformed line may hold a secret."""
    invalid = f"{path!r} is not a valid INI file"
    where = f"{invalid}: line {getattr(exc, 'lineno', None) or '?'}"
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return [("config file", f"{where}: text before the first [section] header")]
    if isinstance(exc, configparser.ParsingError):
        lines = [number for number, _ in exc.errors]
        return [("config file", f"{invalid}: line {n}: not a `key = value` line") for n in lines]
    if isinstance(exc, configparser.DuplicateOptionError):
        return [("config file", f"{where}: {exc.option!r} given twice in [{exc.section}]")]
    if isinstance(exc, configparser.DuplicateSectionError):
        return [("config file", f"{where}: [{exc.section}] given twice")]
    return [("config file", f"{invalid}: {type(exc).__name__}")]


def read_environ(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        name[len(ENV_PREFIX) :].lower(): value
        for name, value in environ.items()
        if name.startswith(ENV_PREFIX) and name[len(ENV_PREFIX) :].lower() in _PARSERS
    }


def unknown_variables(environ: Mapping[str, str]) -> list[tuple[str, str]]:
    """A problem for every ``QQGATE_*`` variable that names no setting: a misspelt one
    (``QQGATE_UPSTRAM``) would otherwise be ignored without a word."""
    known = {ENV_PREFIX + key.upper() for key in _PARSERS} | set(ENV_VARIABLES)
    problems = []
    for name in sorted(n for n in environ if n.startswith(ENV_PREFIX) and n not in known):
        close = difflib.get_close_matches(name, sorted(known), n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append((name, f"unknown variable: no such setting{hint}"))
    return problems


def settings_from_mapping(
    raw: Mapping[str, Any],
    sources: Mapping[str, str] | None = None,
    problems: list[tuple[str, str]] | None = None,
) -> Settings:
    """Parse and validate a mapping of key -> str (or already-typed) values.

    Every problem is collected before ``ConfigError`` is raised: values that do not parse, missing
    keys, and the checks of ``qqgate.validation`` on everything that did parse. ``sources`` names
    the ``QQGATE_*`` variable a key came from, for its messages; ``problems`` are found earlier.
    """
    problems = list(problems or [])
    values: dict[str, Any] = {}
    failed: set[str] = set()
    for key, value in raw.items():
        if key not in _PARSERS:
            problems.append((key, "unknown key"))
        elif value is not None and value != "":
            try:
                values[key] = _PARSERS[key](as_text(value))
            except ValueError as exc:
                problems.append((key, str(exc)))
                failed.add(key)
    missing = [key for key in REQUIRED if not values.get(key) and key not in failed]
    problems += [(key, "missing (required)") for key in missing]
    _normalise(values)
    problems += _validate(values, failed.union(missing))
    if problems:
        raise ConfigError([_named(key, message, sources or {}) for key, message in problems])
    values["secret_keys"] = tuple(values.pop("secret_key"))
    return Settings(**values)


def _named(key: str, message: str, sources: Mapping[str, str]) -> tuple[str, str]:
    return (key, f"{message} (from {sources[key]})") if key in sources else (key, message)


def default_cookie_name(secure: bool, domain: str | None) -> str:
    """``__Host-qqgate`` where browsers allow the prefix (Secure, host-only, Path=/): no other
    site, not even a sibling subdomain, can then set or overwrite our cookies. Else ``qqgate``."""
    return HOST_COOKIE_PREFIX + "qqgate" if secure and not domain else "qqgate"


def _normalise(values: dict[str, Any]) -> None:
    _session_defaults(values)
    if "cookie_name" not in values:
        secure = values.get("cookie_secure", _DEFAULTS["cookie_secure"])
        values["cookie_name"] = default_cookie_name(secure, values.get("cookie_domain"))
    if "prefix" in values:
        values["prefix"] = "/" + values["prefix"].strip("/")
    if "qq_base_url" in values:
        values["qq_base_url"] = values["qq_base_url"].rstrip("/")


def _session_defaults(values: dict[str, Any]) -> None:
    """Defaults that follow a given ``session_max_age``: a lifetime no shorter (a config written
    before sliding sessions keeps working), a refresh at a quarter of it, a day at most."""
    max_age = values.get("session_max_age")
    if max_age is None:
        return
    if "session_max_lifetime" not in values:
        values["session_max_lifetime"] = max(max_age, _DEFAULTS["session_max_lifetime"])
    if "session_refresh" not in values:
        values["session_refresh"] = max(1, min(_DEFAULTS["session_refresh"], max_age // 4))


def _validate(values: dict[str, Any], unusable: set[str]) -> list[tuple[str, str]]:
    # A check that reads an unusable key (missing, or its value did not parse) is skipped: its
    # key has a problem already, and a check on the default instead would only mislead.
    merged = {key: value for key, value in {**_DEFAULTS, **values}.items() if key not in unusable}
    problems: list[tuple[str, str]] = []
    for check in CHECKS:
        try:
            problems += check(merged, values)
        except KeyError:
            continue
    return problems
