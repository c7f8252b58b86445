"""``qqgate demo``: the development provider, the gate and the sample app, on localhost, in one
process.

The provider answers on ``localhost`` and the gate on ``127.0.0.1``: two different sites, so the
return from the provider is a real cross-site navigation, as it is from graph.qq.com.
"""

from __future__ import annotations

import secrets
import signal
import sys
import threading
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from ..config import settings_from_mapping
from ..middleware import QQGate
from .fakeqq import FakeQQ
from .sample import sample_app

DEMO_APP_ID = "101000001"


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def build_demo(port: int, provider_port: int, **overrides: str) -> tuple[QQGate, FakeQQ]:
    """The gated sample app and the provider, wired to each other with fresh secrets.

    ``overrides`` are further settings for the gate, e.g. ``sign_in_page="true"``.
    """
    app_key = secrets.token_hex(16)
    redirect_uri = f"http://127.0.0.1:{port}/_qqgate/callback"
    # Registered with the provider as at QQ Connect; the demo app may also ask for unionid.
    provider = FakeQQ(
        {DEMO_APP_ID: app_key},
        callbacks={DEMO_APP_ID: [redirect_uri]},
        unionid_apps=[DEMO_APP_ID],
    )
    # Built from a mapping, not load_settings(): QQGATE_* variables meant for a real gate stay out.
    settings = settings_from_mapping(
        {
            "app_id": DEMO_APP_ID,
            "app_key": app_key,
            "secret_key": secrets.token_urlsafe(48),
            "redirect_uri": redirect_uri,
            "qq_base_url": f"http://localhost:{provider_port}",
            "cookie_secure": "false",  # plain http on loopback, for the demo only
            "public_paths": "/healthz",
            **overrides,
        }
    )
    return QQGate(sample_app, settings), provider


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def run_demo(port: int = 8000) -> None:
    gate, provider = build_demo(port, port + 1)
    servers = [
        make_server("127.0.0.1", port + 1, provider, ThreadingServer, QuietHandler),
        make_server("127.0.0.1", port, gate, ThreadingServer, QuietHandler),
    ]
    threading.Thread(target=servers[0].serve_forever, daemon=True).start()
    signal.signal(signal.SIGTERM, interrupt)
    print(f"qqgate demo: development QQ provider on http://localhost:{port + 1}")
    print(f"qqgate demo: open http://127.0.0.1:{port}/ and sign in as a test user (Ctrl-C stops)")
    sys.stdout.flush()
    try:
        servers[1].serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        servers[0].shutdown()
        for server in servers:
            server.server_close()
