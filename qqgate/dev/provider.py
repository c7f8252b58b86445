"""``qqgate provider``: the development provider (``qqgate.dev.fakeqq``) as a command, so that a
deployment (proxy mode, nginx ``auth_request``) can be tried on one machine without QQ.

It listens on 127.0.0.1 only and serves as ``localhost``: a different site from a gate on
``127.0.0.1``, as graph.qq.com is from yours. One process holds the codes and tokens in memory.
Never expose it: its test users sign anybody in.
"""

from __future__ import annotations

import secrets
import signal
import sys
from collections.abc import Sequence
from wsgiref.simple_server import make_server

from .demo import DEMO_APP_ID, QuietHandler, ThreadingServer, interrupt
from .fakeqq import FakeQQ


def run_provider(
    port: int = 8001,
    app_id: str = DEMO_APP_ID,
    app_key: str | None = None,
    callbacks: Sequence[str] = (),
    *,
    unionid: bool = False,
) -> None:
    """Serve the provider for one app, its ``callbacks`` registered (matched exactly, as QQ
    does), with unionid granted or not."""
    app_key = app_key or secrets.token_hex(16)
    fake = FakeQQ(
        {app_id: app_key},
        callbacks={app_id: callbacks},
        unionid_apps=[app_id] if unionid else [],
    )
    server = make_server("127.0.0.1", port, fake, ThreadingServer, QuietHandler)
    signal.signal(signal.SIGTERM, interrupt)
    print(f"qqgate provider: development QQ provider on http://localhost:{port} (Ctrl-C stops)")
    print("  for the gate: in gate.ini")
    print(f"    app_id = {app_id}")
    print(f"    qq_base_url = http://localhost:{port}")
    for callback in callbacks:
        print(f"    redirect_uri = {callback}")
    print(f"  and in the environment: QQGATE_APP_KEY={app_key}")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
