"""Support for the tests of issue 13 (operating the gate): a gate.ini for a gate in front of the
development provider, and ``qqgate serve``-style gunicorn processes (``qqgate.gunicorn_conf``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from .conftest import FAKE_APP_ID, FAKE_APP_KEY
from .servers import Gunicorn, free_port

SECRET = "operated-secret-key-0123456789-0123456789"


def gate_ini(path: Path, port: int, provider_port: int, **extra: str) -> Path:
    """A gate.ini for a gate on ``port`` whose QQ is the development provider."""
    values = {
        "app_id": FAKE_APP_ID,
        "app_key": FAKE_APP_KEY,
        "secret_key": SECRET,
        "redirect_uri": f"http://127.0.0.1:{port}/_qqgate/callback",
        "qq_base_url": f"http://localhost:{provider_port}",
        "cookie_secure": "false",
        **extra,
    }
    lines = "".join(f"{key} = {value}\n" for key, value in values.items())
    path.write_text(f"[qqgate]\n{lines}", encoding="utf-8")
    return path


def served_gate(config: Path, port: int, *, workers: int = 1, **env: str) -> Gunicorn:
    """The gate as ``qqgate serve`` runs it: gunicorn with ``qqgate.gunicorn_conf``."""
    return Gunicorn(
        "qqgate.wsgi:application",
        {"QQGATE_CONFIG": str(config), **env},
        workers=workers,
        port=port,
        extra=["-c", "python:qqgate.gunicorn_conf"],
    )


def new_gate(tmp_path: Path, provider_port: int, **extra: str) -> tuple[Path, Gunicorn]:
    port = free_port()
    config = gate_ini(tmp_path / "gate.ini", port, provider_port, **extra)
    return config, served_gate(config, port)


def wait_until(condition: Callable[[], bool], timeout: float = 60.0, what: str = "") -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or condition}")
