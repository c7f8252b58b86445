"""Real front servers for the deployment tests: nginx and Caddy from the distribution, each on a free
loopback port with its own temporary configuration, started, awaited and stopped by the tests; and
``Stack``, such a front with a gate and an app behind it.

The configurations are the files in ``deploy/`` as shipped: the part between ``# --- test-begin ---``
and ``# --- test-end ---`` (and the http-level ``test-map`` part) is cut out and run, with only the
addresses of the gate and the app replaced.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from .conftest import APP_KEY
from .live import Provider, write_gate_ini
from .servers import ROOT, Gunicorn, free_port, terminate, wait_for_port

NGINX_CONF = """
daemon off;
{user}
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

# Run as root, nginx's workers would be "nobody", who cannot enter pytest's private temp directories
# (request bodies and the auth cache are written there): keep them as the test's own user.
NGINX_USER = "user root;" if os.geteuid() == 0 else ""
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
    conf.write_text(NGINX_CONF.format(tmp=directory, server=http_block, user=NGINX_USER))
    return Front([nginx, "-c", str(conf), "-p", str(directory)], port, directory, {})


CACHE_PATH = "/var/cache/nginx/qqgate-auth"  # deploy/nginx-auth-request.conf's proxy_cache_path


def nginx_auth_request(
    nginx: str, directory: Path, gate: int, app: int, listen: int | None = None
) -> Front:
    """deploy/nginx-auth-request.conf as shipped (less TLS) in front of the gate and the app."""
    listen = listen or free_port()
    text = shipped("nginx-auth-request.conf", gate, app).replace(
        CACHE_PATH, str(directory / "cache")
    )
    server = between(text, "test-begin", "test-end")
    block = between(text, "test-map-begin", "test-map-end")
    block += f"server {{\n    listen 127.0.0.1:{listen};\n{server}\n}}"
    return start_nginx(nginx, directory, listen, block)


def nginx_front(nginx: str) -> StartFront:
    def start(directory: Path, gate: int, app: int, listen: int) -> Front:
        return nginx_auth_request(nginx, directory, gate, app, listen)

    return start


CADDY_GLOBAL = """{
	admin off
	auto_https off
}
"""


def caddy_front(caddy: str) -> StartFront:
    """deploy/Caddyfile as shipped, served over plain HTTP on loopback."""

    def start(directory: Path, gate: int, app: int, listen: int) -> Front:
        site = between(shipped("Caddyfile", gate, app), "test-begin", "test-end")
        config = directory / f"Caddyfile-{listen}"
        config.write_text(f"{CADDY_GLOBAL}http://127.0.0.1:{listen} {{\n{site}\n}}\n")
        home = str(directory / "caddy-home")  # Caddy keeps its state under $HOME or $XDG_*
        env = {**os.environ, "HOME": home, "XDG_DATA_HOME": home, "XDG_CONFIG_HOME": home}
        args = [caddy, "run", "--config", str(config), "--adapter", "caddyfile"]
        return Front(args, listen, directory, env)

    return start


# How a test starts a front: (directory, gate port, app port, listen port) -> Front.
StartFront = Callable[[Path, int, int, int], Front]


@dataclass
class Stack:
    """A front on loopback, the gate it asks (under gunicorn) and the app behind it."""

    front: Front
    gate: Gunicorn
    app: Gunicorn | None

    @property
    def url(self) -> str:
        return self.front.url

    def get(self, path: str, **kw: Any) -> requests.Response:
        """GET ``path`` through the front, redirects not followed."""
        return requests.get(self.url + path, allow_redirects=False, timeout=10, **kw)

    def sign_in(self, path: str, user: str = "xiaoming") -> requests.Response:
        """A browser opens ``path``, approves at the provider, and lands back on ``path``."""
        from .test_e2e import HTML, approve

        browser = requests.Session()
        page = approve(browser, browser.get(self.url + path, headers=HTML, timeout=10), user)
        assert page.status_code == 200 and page.url == self.url + path, page.url
        return page

    def stop(self) -> str:
        """Stop all three; return what the gate logged."""
        self.front.stop()
        if self.app is not None:
            self.app.stop()
        return self.gate.stop()


def start_stack(
    directory: Path,
    front: StartFront,
    app: Gunicorn | int,
    provider: Provider,
    allowed: str,
    gate_args: list[str] | None = None,
    **settings: str,
) -> Stack:
    """``front`` in front of ``app`` (a server, or the port of one the caller stops), asking a
    gate that signs in through the development provider and lets only ``allowed`` in."""
    listen, gate_port = free_port(), free_port()
    extra = {
        "app_key": APP_KEY,
        "qq_base_url": f"http://localhost:{provider.port}",
        "allowed_openids": allowed,
        **settings,
    }
    config = write_gate_ini(directory, listen, None, **extra)  # redirect_uri on the front's port
    provider.register_gate(listen)
    env = {"QQGATE_CONFIG": str(config)}
    gate = Gunicorn("qqgate.wsgi:application", env, port=gate_port, extra=gate_args)
    gate.start()
    app_port = app if isinstance(app, int) else app.port
    try:
        started = front(directory, gate_port, app_port, listen)
    except Exception:
        gate.stop()
        raise
    return Stack(started, gate, None if isinstance(app, int) else app)


def check_websockets(url: str, upstream: Any, allowed: str, outsider: str) -> None:
    """Through the front at ``url`` to ``upstream`` (a ``tests.test_websocket.EchoUpstream``):
    ``allowed``'s frames flow both ways, with the identity and without the session cookie, from no
    Origin (not a browser) or our own; an anonymous (401), ``outsider`` (403) or cross-site (403)
    handshake never reaches the app."""
    from websockets.exceptions import InvalidStatus
    from websockets.sync.client import connect

    from .live import signed_in

    cookie = signed_in(allowed)
    with connect(url, additional_headers=cookie, open_timeout=10) as socket:
        for n in range(50):
            socket.send(f"message {n} 🐧")
            assert socket.recv(timeout=10) == f"message {n} 🐧"
    handshake = upstream.handshakes[-1]
    assert handshake["x-qq-openid"] == allowed and "qqgate=" not in handshake.get("cookie", "")
    own = url.replace("ws://", "http://").rsplit("/", 1)[0]
    with connect(url, additional_headers=cookie, origin=own, open_timeout=10) as socket:
        socket.send("from our own page")
        assert socket.recv(timeout=10) == "from our own page"
    # A plain request first, whose answer an auth cache may keep: handshakes must not use it.
    assert requests.get(f"{own}/page", headers=cookie, timeout=10).status_code == 200
    seen = len(upstream.handshakes)
    refusals = [
        (None, None, 401),
        (signed_in(outsider), None, 403),
        (cookie, "http://evil.example", 403),  # cross-site WebSocket hijacking
        (cookie, "null", 403),
    ]
    for headers, origin, status in refusals:
        with pytest.raises(InvalidStatus) as refused:
            connect(url, additional_headers=headers, origin=origin, open_timeout=10).close()
        assert refused.value.response.status_code == status, (origin, status)
    assert len(upstream.handshakes) == seen, "the app never heard of the refused ones"
