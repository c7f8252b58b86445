"""Fixtures that cross the network: the development provider on a loopback port, gates that call it
with the real ``QQClient``, and the sample app behind the gate under real gunicorn processes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from webob import Request

from qqgate import QQGate
from qqgate.dev.fakeqq import FakeQQ

from ..conftest import APP_ID, APP_KEY, FakeClock, LoopbackServer, make_settings
from ..servers import Gunicorn, free_port
from .support import SITE, Downstream, blank, call, set_cookie_value

# For the gates under gunicorn: any session they mint verifies on both.
PROCESS_SECRET = "security-suite-secret-0123456789-abcdef"


@dataclass
class Provider:
    """FakeQQ served on 127.0.0.1 from a thread of the test process."""

    fake: FakeQQ
    url: str

    def calls(self) -> dict[str, int]:
        """The provider's call counters, read over HTTP as another process would."""
        return requests.get(f"{self.url}/_fake/calls", timeout=5).json()

    def reset(self) -> None:
        requests.post(f"{self.url}/_fake/reset", timeout=5).raise_for_status()

    def approve(self, authorize_url: str, user: str = "xiaoming") -> str:
        """Approve the consent page for ``user``; return the callback URL QQ sends the browser to."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        form = {
            name: query.get(name, "") for name in ("client_id", "redirect_uri", "state", "scope")
        }
        response = requests.post(
            f"{self.url}/oauth2.0/authorize",
            data={**form, "user": user},
            allow_redirects=False,
            timeout=5,
        )
        assert response.status_code == 302, response.text
        return response.headers["Location"]


def serve_provider(app_key: str = APP_KEY) -> Iterator[Provider]:
    fake = FakeQQ({APP_ID: app_key})
    fake.hang_seconds = 5.0  # a forgotten release() must not pin a server thread for long
    with LoopbackServer(fake) as server:
        try:
            yield Provider(fake, server.url)
        finally:
            fake.release()


@pytest.fixture(scope="session")
def provider() -> Iterator[Provider]:
    yield from serve_provider()


@pytest.fixture
def clean_provider(provider: Provider) -> Iterator[Provider]:
    """The shared provider with no faults and zeroed counters, reset again afterwards."""
    provider.fake.reset()
    try:
        yield provider
    finally:
        provider.fake.reset()


@dataclass
class LiveRig:
    """An in-process gate whose real QQClient talks to the provider over loopback."""

    gate: QQGate
    app: Downstream
    provider: Provider
    clock: FakeClock | None

    def login(self, next_url: str = "%2Fafter", cookie: str | None = None) -> tuple[str, str, str]:
        """(authorize URL, state, pending-login cookie value)."""
        response = call(self.gate, blank("/_qqgate/login", f"next={next_url}", cookie=cookie))
        assert response.status_int == 302, response.status
        state = parse_qs(urlsplit(response.location).query)["state"][0]
        return response.location, state, set_cookie_value(response, "qqgate_state")

    def code_for(self, authorize_url: str, user: str = "xiaoming") -> str:
        """A real code minted by the provider for this login (approved in-process)."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
        form = {name: query[name] for name in ("client_id", "redirect_uri", "state", "scope")}
        request = Request.blank("/oauth2.0/authorize", POST={**form, "user": user})
        location = request.get_response(self.provider.fake).location
        return parse_qs(urlsplit(location).query)["code"][0]


def make_live_rig(provider: Provider, clock: FakeClock | None = None, **overrides: str) -> LiveRig:
    settings = make_settings(
        qq_base_url=provider.url,
        timeout="1",
        redirect_uri=f"{SITE}/_qqgate/callback",
        **overrides,
    )
    app = Downstream()
    gate = QQGate(app, settings, clock=clock) if clock else QQGate(app, settings)
    return LiveRig(gate, app, provider, clock)


# --- the sample app behind the gate, under gunicorn --------------------------------------------


@dataclass
class GateProcess:
    server: Gunicorn
    provider: Provider

    @property
    def port(self) -> int:
        return self.server.port

    def sign_in(self, user: str = "xiaoming") -> str:
        """A full sign-in over HTTP; returns the session cookie value."""
        base = self.server.url
        login = requests.get(f"{base}/_qqgate/login?next=/", allow_redirects=False, timeout=10)
        assert login.status_code == 302, login.text
        callback = self.provider.approve(login.headers["Location"], user)
        state_cookie = login.cookies["qqgate_state"]
        done = requests.get(
            callback,
            headers={"Cookie": f"qqgate_state={state_cookie}"},
            allow_redirects=False,
            timeout=10,
        )
        assert done.status_code == 302, done.text
        return done.cookies["qqgate"]


def _gate_env(port: int, provider: Provider, public_paths: str) -> dict[str, str]:
    return {
        "QQGATE_APP_ID": APP_ID,
        "QQGATE_APP_KEY": APP_KEY,
        "QQGATE_SECRET_KEY": PROCESS_SECRET,
        "QQGATE_REDIRECT_URI": f"http://127.0.0.1:{port}/_qqgate/callback",
        "QQGATE_QQ_BASE_URL": provider.url,
        "QQGATE_COOKIE_SECURE": "false",
        "QQGATE_TIMEOUT": "2",
        "QQGATE_PUBLIC_PATHS": public_paths,
    }


def _start_gate(provider: Provider, public_paths: str, extra: list[str] | None = None) -> Gunicorn:
    port = free_port()
    server = Gunicorn(
        "qqgate.dev.sample:gated_sample()",
        _gate_env(port, provider, public_paths),
        workers=1,
        threads=4,
        port=port,
        extra=extra,
    )
    return server.start()


@pytest.fixture(scope="session")
def strict_gate(provider: Provider) -> Iterator[GateProcess]:
    """``public_paths = /static/ /healthz``: ``/headers.json`` (the sample's echo) is protected."""
    server = _start_gate(provider, "/static/ /healthz")
    try:
        yield GateProcess(server, provider)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def echo_gate(provider: Provider) -> Iterator[GateProcess]:
    """``/headers.json`` is public here, so the echo shows what an anonymous visitor passes on."""
    server = _start_gate(provider, "/headers.json /static/ /healthz")
    try:
        yield GateProcess(server, provider)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def dangerous_gate(provider: Provider) -> Iterator[GateProcess]:
    """Like ``echo_gate``, but gunicorn maps ``X-QQ_OpenID`` to ``HTTP_X_QQ_OPENID`` (and joins it
    with ``X-QQ-OpenID``) as wsgiref and many other servers do."""
    server = _start_gate(provider, "/headers.json /static/ /healthz", ["--header-map", "dangerous"])
    try:
        yield GateProcess(server, provider)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def process_session(strict_gate: GateProcess) -> str:
    """A session cookie value for xiaoming, valid on both gate processes."""
    return strict_gate.sign_in()


@pytest.fixture(scope="session")
def proxy_gate(provider: Provider, tmp_path_factory) -> Iterator[GateProcess]:
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
    port = free_port()
    config = tmp_path_factory.mktemp("proxy-gate") / "gate.ini"
    config.write_text(f"[qqgate]\nupstream = http://127.0.0.1:{upstream_port}\n", encoding="utf-8")
    env = {**_gate_env(port, provider, "/static/ /healthz"), "QQGATE_CONFIG": str(config)}
    gate = Gunicorn("qqgate.wsgi:application", env, workers=1, threads=4, port=port)
    try:
        gate.start()
    except Exception:
        upstream.stop()
        raise
    try:
        yield GateProcess(gate, provider)
    finally:
        gate.stop()
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
