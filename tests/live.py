"""The test harness, network half: the development provider on loopback (``Provider``), gates under
real gunicorn (``LiveGate``, ``write_gate_ini``) and sessions every such gate accepts
(``session_token``, ``signed_in``). The in-process half is ``tests.rig``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import requests

from qqgate.dev.fakeqq import FakeQQ
from qqgate.session import Identity, SessionCodec

from .conftest import APP_ID, APP_KEY, LoopbackServer
from .rig import NICKNAME, OPENID
from .servers import Gunicorn, free_port

# For the gates under gunicorn: any session they mint verifies on all of them.
PROCESS_SECRET = "live-gate-secret-0123456789-abcdef-0123"


def session_token(openid: str = OPENID, nickname: str = NICKNAME) -> str:
    """A session cookie value, signed now, that every gate process of the tests accepts (they all
    run with ``PROCESS_SECRET``)."""
    identity = Identity(openid, nickname, "", None, int(time.time()))
    return SessionCodec([PROCESS_SECRET], 3600).dumps(identity)


def signed_in(openid: str = OPENID, nickname: str = NICKNAME) -> dict[str, str]:
    """The Cookie header of a browser signed in as ``openid`` on those gate processes."""
    return {"Cookie": f"qqgate={session_token(openid, nickname)}"}


# --- the development provider on loopback ---------------------------------------------------------


@dataclass
class Provider:
    """The development provider served on 127.0.0.1 from a thread of the test process: driven over
    HTTP as another process would, and white-box through ``fake`` (faults, minted tokens)."""

    fake: FakeQQ
    url: str
    port: int

    def register_gate(self, port: int) -> None:
        """Register the callback of a gate on 127.0.0.1:``port``, as at QQ Connect."""
        self.fake.register(APP_ID, f"http://127.0.0.1:{port}/_qqgate/callback")

    def calls(self) -> dict[str, int]:
        """The provider's call counters, read over HTTP."""
        return requests.get(f"{self.url}/_fake/calls", timeout=5).json()

    def reset(self) -> None:
        requests.post(f"{self.url}/_fake/reset", timeout=5).raise_for_status()

    def approve(self, authorize_url: str, user: str = "xiaoming") -> str:
        """Approve the consent page for ``user``; return the callback URL QQ sends the browser to."""
        form = _consent_form(authorize_url)
        response = requests.post(
            f"{self.url}/oauth2.0/authorize",
            data={**form, "user": user},
            allow_redirects=False,
            timeout=5,
        )
        assert response.status_code == 302, response.text
        return response.headers["Location"]

    def code_for(self, authorize_url: str, user: str = "xiaoming") -> str:
        """A real code minted by the provider for this sign-in."""
        return parse_qs(urlsplit(self.approve(authorize_url, user)).query)["code"][0]


def _consent_form(authorize_url: str) -> dict[str, str]:
    query = {k: v[0] for k, v in parse_qs(urlsplit(authorize_url).query).items()}
    return {name: query.get(name, "") for name in ("client_id", "redirect_uri", "state", "scope")}


def serve_provider(app_key: str = APP_KEY, *, unionid: bool = True) -> Iterator[Provider]:
    """The development provider for ``APP_ID`` with ``app_key`` (granted unionid unless told
    otherwise), until the generator is closed. Gates register their callbacks with it."""
    fake = FakeQQ({APP_ID: app_key}, unionid_apps=[APP_ID] if unionid else [])
    fake.hang_seconds = 5.0  # a forgotten release() must not pin a server thread for long
    with LoopbackServer(fake) as server:
        try:
            yield Provider(fake, server.url, server.port)
        finally:
            fake.release()


# --- a gate under real gunicorn -----------------------------------------------------------------


def write_gate_ini(directory: Path, gate_port: int, upstream: str | None, **extra: str) -> Path:
    """A gate.ini for a gate on ``gate_port`` that needs no QQ (sessions minted with
    ``session_token``), in proxy mode in front of ``upstream`` if given; ``extra`` adds or
    replaces keys."""
    keys = {
        "app_id": APP_ID,
        "app_key": "proxy-test-app-key",
        "secret_key": PROCESS_SECRET,
        "redirect_uri": f"http://127.0.0.1:{gate_port}/_qqgate/callback",
        "qq_base_url": "http://127.0.0.1:9",
        "cookie_secure": "false",
        "public_paths": "/public/",
        **({"upstream": upstream} if upstream else {}),
        **extra,
    }
    path = directory / f"gate-{gate_port}.ini"
    lines = ["[qqgate]", *(f"{key} = {value}" for key, value in keys.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def gate_env(port: int, provider_port: int, **settings: str) -> dict[str, str]:
    """QQGATE_* variables for a gate on ``port`` signing in through the provider on
    ``provider_port`` (reached as ``localhost``, the gate as ``127.0.0.1``: two sites, as with
    graph.qq.com); ``settings`` are more gate.ini keys."""
    return {
        "QQGATE_APP_ID": APP_ID,
        "QQGATE_APP_KEY": APP_KEY,
        "QQGATE_SECRET_KEY": PROCESS_SECRET,
        "QQGATE_REDIRECT_URI": f"http://127.0.0.1:{port}/_qqgate/callback",
        "QQGATE_QQ_BASE_URL": f"http://localhost:{provider_port}",
        "QQGATE_COOKIE_SECURE": "false",
        "QQGATE_PUBLIC_PATHS": "/static/ /healthz",
        **{f"QQGATE_{name.upper()}": value for name, value in settings.items()},
    }


@dataclass
class LiveGate:
    """A gate under gunicorn (the sample app behind it, or proxy mode) and its provider."""

    server: Gunicorn
    provider: Provider

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return self.server.url

    def __enter__(self) -> LiveGate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    def sign_in(self, user: str = "xiaoming") -> str:
        """A full sign-in over HTTP; returns the session cookie value."""
        login = requests.get(f"{self.url}/_qqgate/login?next=/", allow_redirects=False, timeout=10)
        assert login.status_code == 302, login.text
        callback = self.provider.approve(login.headers["Location"], user)
        done = requests.get(
            callback,
            headers={"Cookie": f"qqgate_state={login.cookies['qqgate_state']}"},
            allow_redirects=False,
            timeout=10,
        )
        assert done.status_code == 302, done.text
        return done.cookies["qqgate"]


def start_gate(
    provider: Provider,
    app: str = "qqgate.dev.sample:gated_sample()",
    *,
    env: dict[str, str] | None = None,
    workers: int = 1,
    threads: int = 4,
    extra: Iterable[str] = (),
    **settings: str,
) -> LiveGate:
    """``app`` under gunicorn on a free port, configured by ``settings`` (gate.ini keys)."""
    port = free_port()
    provider.register_gate(port)
    server = Gunicorn(
        app,
        {**gate_env(port, provider.port, **settings), **(env or {})},
        workers=workers,
        threads=threads,
        port=port,
        extra=list(extra),
    )
    return LiveGate(server.start(), provider)
