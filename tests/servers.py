"""Real server processes on loopback for end-to-end tests: started, awaited and stopped by the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import gunicorn

ROOT = Path(__file__).resolve().parent.parent


# gunicorn >= 27 opens a control socket in ~/.gunicorn shared by all instances: not for tests.
_NO_CONTROL_SOCKET = ["--no-control-socket"] if gunicorn.version_info >= (27,) else []


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def free_port_pair() -> int:
    """A free port whose next port is free too (the demo puts its provider on port + 1)."""
    for _ in range(50):
        port = free_port()
        with socket.socket() as sock:
            # As servers do: a port whose last connection lingers in TIME_WAIT is free to listen on.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("127.0.0.1", port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two consecutive free ports")


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited early with code {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listened on 127.0.0.1:{port} within {timeout} s")


class Gunicorn:
    """``gunicorn APP`` on a free loopback port, as a context manager."""

    def __init__(
        self,
        app: str,
        env: dict[str, str] | None = None,
        *,
        workers: int = 1,
        threads: int = 4,
        port: int | None = None,
        extra: list[str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{self.port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--graceful-timeout",
            "5",
            *(extra or []),
            app,
        ]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> Gunicorn:
        # A file, not a pipe: a pipe nobody reads fills up and blocks the server.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.args, env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(self.port, self.process)
        except RuntimeError:
            self.stop()
            raise
        return self

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> str:
        """Stop with SIGTERM (graceful); return everything the server wrote."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        text = self.output()
        self.log.close()
        return text

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
