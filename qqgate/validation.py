"""The checks a configuration must pass, each on the merged values (defaults and what was given);
every problem is collected, naming its key, before ``ConfigError`` is raised."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

_HEADER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")
_COOKIE_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_OPENID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
# A URL path of plain segments (no "." or ".." segment): a prefix, or where an app is mounted.
_MOUNT = re.compile(r"(/(?!\.\.?(?:/|$))[A-Za-z0-9_.~-]+)+")
MIN_SECRET_LENGTH = 32


def _check_app(merged: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    if not str(merged["app_id"]).isdigit():
        return [("app_id", "must be the numeric APP ID from QQ Connect")]
    return []


def _check_secret(merged: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    keys = values["secret_key"]
    short = [index for index, key in enumerate(keys, 1) if len(key) < MIN_SECRET_LENGTH]
    if short:
        return [("secret_key", f"key #{short[0]} is shorter than {MIN_SECRET_LENGTH} characters")]
    return []


def _check_prefix(merged: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    prefix = merged["prefix"]
    if not _MOUNT.fullmatch(prefix):
        return [("prefix", "must be a path like /_qqgate (letters, digits, _ . ~ -)")]
    return []


def _check_redirect_uri(merged: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    problem = _url_problem(merged["redirect_uri"])
    if problem:
        return [("redirect_uri", problem)]
    parts = urlsplit(merged["redirect_uri"])
    callback = f"{merged['prefix']}/callback"
    mount = parts.path.removesuffix(callback)
    if not parts.path.endswith(callback) or (mount and not _MOUNT.fullmatch(mount)):
        return [
            (
                "redirect_uri",
                f"path must be {callback} (the gate's callback), or the app's mount point and "
                f"then {callback} (as /app{callback}), got {parts.path!r}",
            )
        ]
    if parts.query or parts.fragment:
        return [("redirect_uri", "must not have a query or a fragment")]
    return []


def _check_base_url(merged: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    problem = _url_problem(merged["qq_base_url"])
    return [("qq_base_url", problem)] if problem else []


def _check_cookie(merged: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    if not _COOKIE_NAME.match(merged["cookie_name"]):
        problems.append(("cookie_name", "may only use letters, digits, _ . -"))
    if merged["cookie_samesite"] == "none" and not merged["cookie_secure"]:
        problems.append(
            ("cookie_samesite", "none requires cookie_secure = true (browsers refuse it)")
        )
    domain = merged["cookie_domain"]
    if domain and not re.fullmatch(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?", domain):
        problems.append(("cookie_domain", f"not a host name: {domain!r}"))
    return problems + _cookie_prefix_problems(
        merged["cookie_name"], merged["cookie_secure"], domain
    )


def _cookie_prefix_problems(name: str, secure: bool, domain: str | None) -> list[tuple[str, str]]:
    # Browsers silently drop a prefixed cookie that breaks the prefix's rules: no sign-in sticks.
    problems = []
    if name.startswith(("__Host-", "__Secure-")) and not secure:
        problems.append(("cookie_name", f"{name.split('-')[0]}- needs cookie_secure = true"))
    if name.startswith("__Host-") and domain:
        problems.append(("cookie_name", "__Host- cookies cannot have a cookie_domain"))
    return problems


def _check_paths_and_names(merged: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    problems = []
    for path in merged["public_paths"]:
        if not path.startswith("/") or path == "/":
            problems.append(("public_paths", f"{path!r}: each entry must be a path below /"))
    for key, what in (("allowed_openids", "an openid"), ("allowed_unionids", "a unionid")):
        problems += [(key, f"{i!r} is not {what}") for i in merged[key] if not _OPENID.match(i)]
    if merged["allowed_unionids"] and not merged["unionid"]:
        problems.append(("allowed_unionids", "needs unionid = true (else QQ sends no unionid)"))
    problems += _allow_file_problems(merged["allowed_openids_file"])
    for key in ("openid_header", "nickname_header", "unionid_header"):
        if not _HEADER_NAME.match(merged[key]):
            problems.append((key, f"{merged[key]!r} is not a header name"))
    if not re.fullmatch(r"[A-Za-z0-9_,]+", merged["scope"]):
        problems.append(("scope", "must be comma-separated API names such as get_user_info"))
    return problems


def _allow_file_problems(path: str | None) -> list[tuple[str, str]]:
    if path is None:
        return []
    try:
        with open(path, encoding="utf-8") as fh:
            words = [w for line in fh for w in line.partition("#")[0].split()]
    except (OSError, UnicodeDecodeError) as exc:
        return [("allowed_openids_file", f"cannot read {path!r}: {type(exc).__name__}")]
    bad = [word for word in words if not _OPENID.match(word)]
    return [("allowed_openids_file", f"{bad[0]!r} is not an openid")] if bad else []


def _check_upstream(merged: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    upstream = merged["upstream"]
    if upstream is None:
        return []
    try:
        parts = urlsplit(upstream)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        return [("upstream", f"not a valid URL: {upstream!r}")]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return [
            ("upstream", f"must be an http(s) URL like http://127.0.0.1:8080, got {upstream!r}")
        ]
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        return [("upstream", "must be scheme://host[:port] only (no path, query or user)")]
    return []


def _check_session_times(merged: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    refresh, max_age = merged["session_refresh"], merged["session_max_age"]
    lifetime = merged["session_max_lifetime"]
    problems = []
    if refresh >= max_age:
        problems.append(
            (
                "session_refresh",
                f"must be shorter than session_max_age ({max_age} s), got {refresh}",
            )
        )
    if max_age > lifetime:
        problems.append(
            (
                "session_max_lifetime",
                f"must be at least session_max_age ({max_age} s), got {lifetime}",
            )
        )
    return problems


def _check_session_store(merged: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    url = merged["session_store"]
    if url is None:
        return []
    if urlsplit(url).scheme not in ("redis", "rediss", "unix"):
        return [("session_store", "must be a redis://host:port/db (or rediss://, unix://) URL")]
    try:
        import redis  # noqa: F401 - only whether it is installed
    except ImportError:
        return [("session_store", "needs the redis package: pip install qqgate[redis]")]
    return []


def is_openid(text: str) -> bool:
    return bool(_OPENID.fullmatch(text))


def _check_templates(merged: dict[str, Any], values: dict[str, Any]) -> list[tuple[str, str]]:
    directory = merged["templates_dir"]
    if directory and not Path(directory).is_dir():
        return [("templates_dir", f"{directory!r} is not a directory")]
    return []


CHECKS = (
    _check_app,
    _check_secret,
    _check_prefix,
    _check_redirect_uri,
    _check_base_url,
    _check_cookie,
    _check_paths_and_names,
    _check_upstream,
    _check_session_times,
    _check_session_store,
    _check_templates,
)


def _url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return f"not a valid URL: {url!r}"
    if parts.scheme not in ("http", "https") or not host:
        return f"must be an absolute http(s) URL, got {url!r}"
    if parts.scheme == "http" and not is_loopback(host):
        return (
            "plain http is only allowed for a loopback host (127.0.0.1, ::1, localhost): use https"
        )
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
