"""``qqgate provider`` (issue 13): the development provider as a command, and a gate served as in
production (``qqgate.gunicorn_conf``) signing a user in through it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import requests

from .operated import gate_ini, served_gate
from .servers import ROOT, free_port, wait_for_port
from .test_e2e import HTML, approve

APP_KEY = "provider-command-app-key-0123456789"


def test_provider_command_serves_a_sign_in(tmp_path) -> None:
    port, gate_port = free_port(), free_port()
    callback = f"http://127.0.0.1:{gate_port}/_qqgate/callback"
    env = {k: v for k, v in os.environ.items() if not k.startswith("QQGATE_")}
    args = [sys.executable, "-m", "qqgate.cli", "provider", "--port", str(port)]
    args += ["--redirect-uri", callback]
    provider = subprocess.Popen(
        [*args, "--app-key", APP_KEY],
        cwd=ROOT,
        env={**env, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_for_port(port, provider, timeout=60)
        config = gate_ini(tmp_path, gate_port, port, app_key=APP_KEY)
        with served_gate(config, gate_port) as gate:
            browser = requests.Session()
            consent = browser.get(f"{gate.url}/_qqgate/login", headers=HTML, timeout=30)
            assert consent.url.startswith(f"http://localhost:{port}/oauth2.0/authorize")
            approve(browser, consent, "xiaoming")
            assert browser.get(f"{gate.url}/_qqgate/userinfo", timeout=30).json()["nickname"]
    finally:
        provider.send_signal(signal.SIGTERM)
        output, _ = provider.communicate(timeout=30)
    assert provider.returncode == 0, output
    assert f"qq_base_url = http://localhost:{port}" in output
    assert f"QQGATE_APP_KEY={APP_KEY}" in output
    assert f"redirect_uri = {callback}" in output
