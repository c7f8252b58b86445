"""The ``qqgate`` command: ``demo`` and ``check``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .config import ConfigError, Settings, load_settings

_SUMMARY_KEYS = (
    "app_id",
    "redirect_uri",
    "prefix",
    "qq_base_url",
    "scope",
    "timeout",
    "session_max_age",
    "cookie_name",
    "cookie_secure",
    "cookie_samesite",
    "cookie_domain",
    "public_paths",
    "allowed_openids",
    "openid_header",
    "nickname_header",
    "unionid",
)


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
    args = parser.parse_args(argv)
    if args.command == "demo":
        from .demo import run_demo

        run_demo(args.port)
        return 0
    return check_config(args.config)


def check_config(path: str) -> int:
    try:
        settings = load_settings(path)
    except ConfigError as exc:
        print(f"{path}: {len(exc.problems)} problem(s)", file=sys.stderr)
        for key, message in exc.problems:
            print(f"  {key}: {message}", file=sys.stderr)
        return 1
    print(f"{path}: OK")
    for line in summary(settings):
        print(f"  {line}")
    return 0


def summary(settings: Settings) -> list[str]:
    lines = [f"{key} = {_show(getattr(settings, key))}" for key in _SUMMARY_KEYS]
    lines.append(f"app_key = (set, {len(settings.app_key)} characters)")
    lines.append(f"secret_key = ({len(settings.secret_keys)} key(s) set)")
    return lines


def _show(value: object) -> str:
    if isinstance(value, tuple | frozenset):
        return " ".join(sorted(value)) or "(none)"
    return "(none)" if value is None else str(value)


if __name__ == "__main__":
    raise SystemExit(main())
