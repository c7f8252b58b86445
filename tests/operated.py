"""Support for the tests of operating the gate: gates as ``qqgate serve`` runs them (gunicorn with
``qqgate.gunicorn_conf``) in front of the development provider, and a bounded wait."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .conftest import APP_KEY
from .live import Provider, write_gate_ini
from .servers import Gunicorn, free_port


def gate_ini(directory: Path, port: int, provider: Provider | int, **extra: str) -> Path:
    """A gate.ini (in ``directory``) for a gate on ``port`` whose QQ is the development provider
    (a ``Provider``, which gets the gate's callback registered, or the port of one elsewhere)."""
    provider_port = provider if isinstance(provider, int) else provider.port
    if not isinstance(provider, int):
        provider.register_gate(port)
    keys = {"app_key": APP_KEY, "qq_base_url": f"http://localhost:{provider_port}", **extra}
    upstream = keys.pop("upstream", None)
    return write_gate_ini(directory, port, upstream, **{"public_paths": "", **keys})


def served_gate(config: Path, port: int, *, workers: int = 1, **env: str) -> Gunicorn:
    """The gate as ``qqgate serve`` runs it: gunicorn with ``qqgate.gunicorn_conf``."""
    return Gunicorn(
        "qqgate.wsgi:application",
        {"QQGATE_CONFIG": str(config), **env},
        workers=workers,
        port=port,
        extra=["-c", "python:qqgate.gunicorn_conf"],
    )


def new_gate(tmp_path: Path, provider: Provider | int, **extra: str) -> tuple[Path, Gunicorn]:
    port = free_port()
    config = gate_ini(tmp_path, port, provider, **extra)
    return config, served_gate(config, port)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or condition}")
