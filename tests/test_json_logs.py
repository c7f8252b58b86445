"""One log stream (issue 13): with ``log_format = json`` every line ``qqgate serve`` writes, gunicorn's
access and error lines included, is a JSON object; and an app that embeds the middleware logs the
gate's events with no logging setup of its own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import requests

from .operated import new_gate
from .servers import ROOT


def test_every_line_of_qqgate_serve_is_json(tmp_path) -> None:
    _, gate = new_gate(tmp_path, 9, log_format="json")
    gate.start()
    try:
        assert requests.get(f"{gate.url}/_qqgate/ping", timeout=30).text == "ok\n"
        bad = requests.get(f"{gate.url}/_qqgate/callback?code=C0DE&state=ST4TE", timeout=30)
        assert bad.status_code == 400
    finally:
        output = gate.stop()
    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    loggers = {line["logger"] for line in lines}
    assert {"gunicorn.error", "gunicorn.access", "qqgate"} <= loggers, output
    (ping,) = [line for line in lines if line.get("target") == "/_qqgate/ping"]
    assert ping["event"] == "request" and ping["method"] == "GET" and ping["status"] == "200"
    assert ping["client"] == "127.0.0.1" and ping["user"] == "-"
    (callback,) = [line for line in lines if line.get("target", "").startswith("/_qqgate/cal")]
    assert callback["target"] == "/_qqgate/callback?[redacted]" and callback["status"] == "400"
    (failed,) = [line for line in lines if line.get("event") == "sign-in failed"]
    assert failed["reason"] == "state_mismatch" and failed["client"] == "127.0.0.1"
    assert "C0DE" not in output and "ST4TE" not in output


def test_the_embedded_middleware_logs_without_any_setup() -> None:
    script = textwrap.dedent(
        """
        import time
        from webob import Request
        from qqgate import QQGate
        from qqgate.config import settings_from_mapping
        from qqgate.session import Identity

        settings = settings_from_mapping({
            "app_id": "101000001", "app_key": "k" * 32, "secret_key": "s" * 40,
            "redirect_uri": "https://app.example.com/_qqgate/callback",
        })
        app = QQGate(lambda environ, start_response: [], settings)
        Request.blank("/_qqgate/callback?code=c&state=s").get_response(app)
        cookie = app.sessions.issue(Identity("A" * 32, "n", "", None, int(time.time())))[1].split(";")[0]
        Request.blank("/_qqgate/logout", method="POST", headers={"Cookie": cookie}).get_response(app)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("QQGATE_")}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "WARNING qqgate: sign-in failed reason=state_mismatch" in result.stderr
    assert f"INFO qqgate: sign-out openid={'A' * 32}" in result.stderr  # INFO too
