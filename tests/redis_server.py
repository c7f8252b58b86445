"""Debian's redis-server on a free loopback port with its own temporary directory, started and
stopped by the tests (``redis_server`` fixture); skipped, saying why, where it is not installed
(tools/system-deps.sh installs it)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator

import pytest

from .servers import Server, free_port

REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


class RedisServer:
    """One redis-server; ``stop()`` and ``start()`` again on the same port (Redis going down)."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.dir = tempfile.TemporaryDirectory(prefix="qqgate-redis-")
        args = [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--save", "", "--appendonly", "no", "--dir", self.dir.name]
        self.server = Server(args, port=self.port)
        self.running = False

    def start(self) -> RedisServer:
        self.server.start()
        self.running = True
        return self

    def stop(self) -> None:
        if self.running:
            self.running = False
            self.server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    if not os.path.exists(REDIS_SERVER):
        pytest.skip("redis-server is not installed (tools/system-deps.sh installs it)")
    server = RedisServer().start()
    try:
        yield server
    finally:
        server.stop()
        server.dir.cleanup()
