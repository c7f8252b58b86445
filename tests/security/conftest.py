"""Fixtures that cross the network: the development provider with clean counters, and the sample
app or proxy mode behind the gate under real gunicorn processes."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from ..live import LiveGate, Provider, start_gate
from ..servers import Gunicorn, free_port


def _serve(
    provider: Provider, public_paths: str, *, extra: tuple[str, ...] = ()
) -> Iterator[LiveGate]:
    gate = start_gate(provider, extra=extra, timeout="2", public_paths=public_paths)
    try:
        yield gate
    finally:
        gate.server.stop()


@pytest.fixture(scope="session")
def strict_gate(provider: Provider) -> Iterator[LiveGate]:
    """``public_paths = /static/ /healthz``: ``/headers.json`` (the sample's echo) is protected."""
    yield from _serve(provider, "/static/ /healthz")


@pytest.fixture(scope="session")
def echo_gate(provider: Provider) -> Iterator[LiveGate]:
    """``/headers.json`` is public here, so the echo shows what an anonymous visitor passes on."""
    yield from _serve(provider, "/headers.json /static/ /healthz")


@pytest.fixture(scope="session")
def dangerous_gate(provider: Provider) -> Iterator[LiveGate]:
    """Like ``echo_gate``, but gunicorn maps ``X-QQ_OpenID`` to ``HTTP_X_QQ_OPENID`` (and joins it
    with ``X-QQ-OpenID``) as wsgiref and many other servers do."""
    yield from _serve(
        provider, "/headers.json /static/ /healthz", extra=("--header-map", "dangerous")
    )


@pytest.fixture(scope="session")
def process_session(strict_gate: LiveGate) -> str:
    """A session cookie value for xiaoming, valid on every gate process."""
    return strict_gate.sign_in()


@pytest.fixture(scope="session")
def proxy_gate(provider: Provider, tmp_path_factory) -> Iterator[LiveGate]:
    """Proxy mode: ``qqgate.wsgi:application`` under gunicorn in front of ``tests.upstream_app``
    (which echoes the raw URI, path and headers it received), ``public_paths = /static/
    /healthz``. Both processes as the README's deployment runs them."""
    upstream_port = free_port()
    upstream = Gunicorn(
        "tests.upstream_app:application",
        {"UPSTREAM_SELF": f"http://127.0.0.1:{upstream_port}"},
        port=upstream_port,
        threads=4,
    ).start()
    config = tmp_path_factory.mktemp("proxy-gate") / "gate.ini"
    config.write_text(f"[qqgate]\nupstream = http://127.0.0.1:{upstream_port}\n", encoding="utf-8")
    try:
        gate = start_gate(
            provider, "qqgate.wsgi:application", env={"QQGATE_CONFIG": str(config)}, timeout="2"
        )
    except Exception:
        upstream.stop()
        raise
    try:
        yield gate
    finally:
        gate.server.stop()
        upstream.stop()


def upstream_echo_of(body: bytes) -> dict[str, object] | None:
    """``tests.upstream_app``'s echo, or None if the body is not one (the upstream was not reached)."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "raw_uri" in data else None


def echo_of(body: bytes) -> dict[str, object] | None:
    """The sample app's /headers.json answer, or None if the body is not one."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    return data if isinstance(data, dict) and "remote_user" in data else None
