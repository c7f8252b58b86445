"""The ``qqgate`` command: ``demo``, ``check``, ``serve``, ``secret``, ``provider``, ``revoke``."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import time
from collections.abc import Sequence
from urllib.parse import urlsplit, urlunsplit

from . import checks, values
from .config import KEYS, ConfigError, Settings
from .reloads import load_checked

# Every key but the two secrets, in gate.ini.example's order.
_SUMMARY_KEYS = tuple(key for key in KEYS if key not in ("app_key", "secret_key"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="qqgate", description="Sign in with QQ in front of any web app."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo", help="run the gate, a sample app and a development QQ provider"
    )
    demo.add_argument("--port", type=int, default=8000, help="gate port (the provider uses port+1)")
    check = commands.add_parser(
        "check", help="validate a gate.ini and print a summary without secrets"
    )
    check.add_argument("-c", "--config", default="gate.ini", help="path to the config file")
    check.add_argument(
        "--strict", action="store_true", help="treat warnings as problems (exit 1), for CI"
    )
    serve = commands.add_parser("serve", help="run the gate under gunicorn")
    serve.add_argument("-c", "--config", default="gate.ini", help="path to the config file")
    serve.add_argument("--bind", help="HOST:PORT to listen on (default 127.0.0.1:8000)")
    serve.add_argument("--workers", type=int, help="worker processes (default: CPU count)")
    commands.add_parser("secret", help="print a fresh random secret_key")
    revoke = commands.add_parser(
        "revoke", help="sign a user out of every browser, on every gate (needs session_store)"
    )
    revoke.add_argument("openid", help="the user's openid")
    revoke.add_argument("-c", "--config", default="gate.ini", help="path to the config file")
    provider = commands.add_parser(
        "provider", help="run the development QQ provider on localhost (never expose it)"
    )
    provider.add_argument("--port", type=int, default=8001, help="port (default 8001)")
    provider.add_argument("--app-id", default="101000001", help="the APP ID it accepts")
    provider.add_argument("--app-key", help="the APP Key it accepts (default: a fresh one)")
    provider.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        metavar="URL",
        help="the gate's redirect_uri, registered exactly as at QQ Connect (repeatable; default "
        "http://127.0.0.1:8000/_qqgate/callback)",
    )
    provider.add_argument(
        "--unionid", action="store_true", help="grant the app unionid (QQ answers 100048 without)"
    )
    args = parser.parse_args(argv)
    if args.command == "secret":
        print(secrets.token_urlsafe(48))
        return 0
    if args.command == "revoke":
        return revoke_user(args.config, args.openid)
    if args.command == "serve":
        return serve_gate(args.config, args.bind, args.workers)
    if args.command == "provider":
        from .dev.provider import run_provider

        callbacks = args.redirect_uri or ["http://127.0.0.1:8000/_qqgate/callback"]
        run_provider(args.port, args.app_id, args.app_key, callbacks, unionid=args.unionid)
        return 0
    if args.command == "demo":
        from .dev.demo import run_demo

        run_demo(args.port)
        return 0
    return check_config(args.config, strict=args.strict)


def serve_gate(path: str, bind: str | None, workers: int | None) -> int:
    """Validate the config, then replace this process with gunicorn (signals go straight to it)."""
    try:
        load_checked(path)
        if bind:
            values.bind_address(bind)
    except ConfigError as exc:
        print(f"qqgate: cannot start: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"qqgate: cannot start: --bind {bind}: {exc}", file=sys.stderr)
        return 2
    os.environ["QQGATE_CONFIG"] = os.path.abspath(path)
    args = [sys.executable, "-m", "gunicorn", "-c", "python:qqgate.gunicorn_conf"]
    if bind:
        args += ["--bind", bind]
    if workers:
        args += ["--workers", str(workers)]
    os.execv(sys.executable, args)  # noqa: S606 - our own interpreter, fixed arguments


def revoke_user(path: str, openid: str) -> int:
    """Revoke every session of ``openid`` signed in until now, through the session store."""
    from .revocations import user_field
    from .sessionstore import connect, namespace, write_entry
    from .validation import is_openid

    try:
        settings = load_checked(path)
    except ConfigError as exc:
        return _problems(f"{path}: {len(exc.problems)} problem(s)", exc.problems)
    if not is_openid(openid):
        print(f"qqgate: {openid!r} is not an openid", file=sys.stderr)
        return 2
    if not settings.session_store:
        print(f"qqgate: {path} sets no session_store: nothing to revoke in", file=sys.stderr)
        return 1
    now = int(time.time())
    value = f"{now} {now + settings.session_max_lifetime}"
    try:
        write_entry(connect(settings.session_store), namespace(settings), user_field(openid), value)
    except Exception as exc:  # the client's errors: Redis unreachable, refused, ...
        print(f"qqgate: session store unavailable: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(f"revoked every session of {openid} signed in until now (every gate within 2 s)")
    return 0


def check_config(path: str, *, strict: bool = False) -> int:
    """Print every problem and exit 1, or a summary and the warnings and exit 0 (with ``strict``,
    warnings are problems: exit 1)."""
    try:
        settings = load_checked(path)
    except ConfigError as exc:
        return _problems(f"{path}: {len(exc.problems)} problem(s)", exc.problems)
    advice = checks.warnings(settings, checks.example_values(path))
    if strict and advice:
        return _problems(f"{path}: {len(advice)} warning(s), problems with --strict", advice)
    print(f"{path}: OK")
    for line in summary(settings):
        print(f"  {line}")
    print(f"callback URL to register at QQ Connect: {checks.callback_url(settings)}")
    for key, message in advice:
        print(f"warning: {key}: {message}")
    return 0


def _problems(heading: str, problems: list[tuple[str, str]]) -> int:
    print(heading, file=sys.stderr)
    for key, message in problems:
        print(f"  {key}: {message}", file=sys.stderr)
    return 1


def summary(settings: Settings) -> list[str]:
    lines = [f"{key} = {_show(getattr(settings, key))}" for key in _SUMMARY_KEYS]
    lines = [
        f"session_store = {_show_store(settings.session_store)}"
        if line.startswith("session_store =")
        else line
        for line in lines
    ]
    lines.append(f"app_key = (set, {len(settings.app_key)} characters)")
    lines.append(f"secret_key = ({len(settings.secret_keys)} key(s) set)")
    return lines


def _show_store(url: str | None) -> str:
    """``session_store`` without its password."""
    if url is None:
        return "(none)"
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def _show(value: object) -> str:
    if isinstance(value, tuple | frozenset):
        return " ".join(sorted(str(item) for item in value)) or "(none)"
    return "(none)" if value is None else str(value)


if __name__ == "__main__":
    raise SystemExit(main())
