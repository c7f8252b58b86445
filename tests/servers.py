"""Real server processes on loopback for end-to-end tests: started, awaited and stopped by the tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import gunicorn

from bench.ports import free_port, free_port_pair, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
__all__ = ["ROOT", "Gunicorn", "free_port", "free_port_pair", "terminate", "wait_for_port"]


# gunicorn >= 27 opens a control socket in ~/.gunicorn shared by all instances: not for tests.
_NO_CONTROL_SOCKET = ["--no-control-socket"] if gunicorn.version_info >= (27,) else []


def terminate(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if ``process`` is still running after ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


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
        terminate(self.process)
        text = self.output()
        self.log.close()
        return text

    def __enter__(self) -> Gunicorn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
