"""Real front servers for the deployment tests: nginx and Caddy from the distribution, each on a free
loopback port with its own temporary configuration, started, awaited and stopped by the tests.

The configurations are the files in ``deploy/`` as shipped: the part between ``# --- test-begin ---``
and ``# --- test-end ---`` (and the http-level ``test-map`` part) is cut out and run, with only the
addresses of the gate and the app replaced.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from .servers import ROOT, free_port, terminate, wait_for_port

NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
{server}
}}
"""

GATE, APP = "127.0.0.1:8000", "127.0.0.1:8080"  # the addresses deploy/ files name


def between(text: str, begin: str, end: str) -> str:
    """The part of ``text`` between the ``# --- begin ---`` and ``# --- end ---`` markers."""
    return text.split(f"# --- {begin} ---")[1].split(f"# --- {end} ---")[0]


def shipped(name: str, gate: int, app: int | None = None) -> str:
    """``deploy/{name}`` with the gate's and the app's addresses replaced by test ports."""
    text = (ROOT / "deploy" / name).read_text()
    text = text.replace(GATE, f"127.0.0.1:{gate}")
    return text.replace(APP, f"127.0.0.1:{app}") if app else text


def binary(name: str) -> str:
    """The path of a distribution binary, or skip the test saying why."""
    found = shutil.which(name) or (
        f"/usr/sbin/{name}" if Path(f"/usr/sbin/{name}").exists() else None
    )
    if found is None:
        pytest.skip(
            f"{name} is not installed and could not be installed "
            "(tools/system-deps.sh installs it from Debian when run as root)"
        )
    return found


class Front:
    """A front server process listening on ``port``; ``stop()`` returns what it wrote."""

    def __init__(self, args: list[str], port: int, directory: Path, env: dict[str, str]) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = directory / f"front-{port}.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                args, cwd=directory, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        try:
            wait_for_port(port, self.process)
        except Exception:
            self.stop()
            raise

    def stop(self) -> str:
        terminate(self.process)
        return self.log.read_text(errors="replace")


def start_nginx(nginx: str, directory: Path, port: int, http_block: str) -> Front:
    """nginx with ``http_block`` (maps and server blocks) inside NGINX_CONF's http block."""
    conf = directory / f"nginx-{port}.conf"
    conf.write_text(NGINX_CONF.format(tmp=directory, server=http_block))
    return Front([nginx, "-c", str(conf), "-p", str(directory)], port, directory, {})


def nginx_auth_request(
    nginx: str, directory: Path, gate: int, app: int, listen: int | None = None
) -> Front:
    """deploy/nginx-auth-request.conf as shipped (less TLS) in front of the gate and the app."""
    listen = listen or free_port()
    text = shipped("nginx-auth-request.conf", gate, app)
    server = between(text, "test-begin", "test-end")
    block = between(text, "test-map-begin", "test-map-end")
    block += f"server {{\n    listen 127.0.0.1:{listen};\n{server}\n}}"
    return start_nginx(nginx, directory, listen, block)
