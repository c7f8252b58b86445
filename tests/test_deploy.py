"""The deployments as operators run them: `qqgate serve`, gunicorn with deploy/gunicorn.conf.py,
several gate processes sharing one secret, nginx in front of proxy mode, and a PasteDeploy pipeline
(nginx auth_request: tests/test_nginx_auth_request.py)."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap

import pytest
import requests

from .conftest import APP_ID, APP_KEY
from .fronts import between, start_nginx
from .live import PROCESS_SECRET as SECRET
from .live import session_token, write_gate_ini
from .rig import OPENID
from .servers import ROOT, Gunicorn, free_port, wait_for_port
from .test_e2e import HTML, approve
from .test_proxy import start_upstream


def _run_until_ping(args: list[str], port: int, env: dict[str, str]) -> subprocess.Popen:
    process = subprocess.Popen(
        args, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        wait_for_port(port, process)
        assert requests.get(f"http://127.0.0.1:{port}/_qqgate/ping", timeout=10).text == "ok\n"
    except Exception:
        process.kill()
        raise
    return process


def _stop(process: subprocess.Popen) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    return process.returncode, output.decode("utf-8", "replace")


def _env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("QQGATE_")}
    env["PYTHONPATH"] = str(ROOT)
    return {**env, **extra}


def test_qqgate_serve_answers_ping_and_stops_on_sigterm(tmp_path) -> None:
    port = free_port()
    config = write_gate_ini(tmp_path, port, None)
    args = [
        sys.executable,
        "-m",
        "qqgate.cli",
        "serve",
        "-c",
        str(config),
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "1",
    ]
    process = _run_until_ping(args, port, _env())
    code, output = _stop(process)
    assert code == 0, output
    assert "Shutting down" in output or "Handling signal: term" in output


def test_gunicorn_with_the_deploy_config_works_the_same(tmp_path) -> None:
    port = free_port()
    config = write_gate_ini(tmp_path, port, None)
    env = _env(QQGATE_CONFIG=str(config), QQGATE_BIND=f"127.0.0.1:{port}", QQGATE_WORKERS="1")
    args = [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")]
    process = _run_until_ping(args, port, env)
    requests.get(
        f"http://127.0.0.1:{port}/_qqgate/auth",
        headers={"Cookie": f"qqgate={session_token()}"},
        timeout=10,
    )
    code, output = _stop(process)
    assert code == 0, output
    # The access log names the signed-in user (from the environ the gate set, not a client header).
    assert f"127.0.0.1 {OPENID} [" in output and '"GET /_qqgate/auth HTTP/1.1" 202' in output


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        pytest.param(None, "cannot read", id="missing-file"),
        pytest.param("[qqgate]\napp_id = 1\n", "app_key: missing", id="bad-config"),
    ],
)
def test_bad_config_stops_start_up_with_a_clear_message(tmp_path, content, fragment) -> None:
    config = tmp_path / "gate.ini"
    if content is not None:
        config.write_text(content)
    for args in (
        [
            sys.executable,
            "-m",
            "qqgate.cli",
            "serve",
            "-c",
            str(config),
            "--bind",
            f"127.0.0.1:{free_port()}",
        ],
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py")],
    ):
        env = _env(QQGATE_CONFIG=str(config), QQGATE_BIND=f"127.0.0.1:{free_port()}")
        result = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
        assert result.returncode != 0
        assert fragment in result.stderr and "Traceback" not in result.stderr, result.stderr


def test_two_gate_processes_share_sessions_through_the_secret(tmp_path, provider) -> None:
    upstream = start_upstream()
    first_port, second_port = free_port(), free_port()
    common = {"qq_base_url": f"http://localhost:{provider.port}", "app_key": APP_KEY}
    gates = []
    try:
        for port in (first_port, second_port):
            config = write_gate_ini(tmp_path, port, upstream.url, **common)
            provider.register_gate(port)
            gates.append(
                Gunicorn(
                    "qqgate.wsgi:application", {"QQGATE_CONFIG": str(config)}, port=port
                ).start()
            )
        browser = requests.Session()
        consent = browser.get(f"http://127.0.0.1:{first_port}/echo", headers=HTML, timeout=10)
        page = approve(browser, consent, "alice")
        assert page.status_code == 200 and page.url == f"http://127.0.0.1:{first_port}/echo"
        # Cookies ignore ports: the browser sends the session to the second process, which knows it.
        seen = browser.get(f"http://127.0.0.1:{second_port}/echo", timeout=10).json()
        from qqgate.dev.fakeqq import openid_for

        assert seen["headers"]["x-qq-openid"] == openid_for(APP_ID, "alice")
    finally:
        for gate in gates:
            gate.stop()
        upstream.stop()


def test_paste_deploy_filter(tmp_path) -> None:
    loadapp = pytest.importorskip("paste.deploy").loadapp
    ini = tmp_path / "app.ini"
    ini.write_text(
        textwrap.dedent(
            f"""
            [pipeline:main]
            pipeline = qqgate app

            [filter:qqgate]
            use = egg:qqgate
            app_id = 101000001
            app_key = paste-app-key
            secret_key = {SECRET}
            redirect_uri = https://app.example.com/_qqgate/callback

            [app:app]
            paste.app_factory = tests.test_deploy:make_echo_app
            """
        )
    )
    from webtest import TestApp

    app = TestApp(loadapp(f"config:{ini}"))
    assert (
        app.get("/x", headers={"Accept": "application/json"}, expect_errors=True).status_int == 401
    )
    seen = app.get(
        "/x", headers={"Cookie": f"__Host-qqgate={session_token()}", "X-QQ-OpenID": "SPOOFED"}
    )
    assert seen.text == OPENID


def make_echo_app(global_conf, **local_conf):
    def echo(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [environ.get("HTTP_X_QQ_OPENID", "").encode()]

    return echo


def test_nginx_proxy_conf_carries_websockets_and_requests(tmp_path, nginx_binary) -> None:
    """deploy/nginx-proxy.conf, as shipped (less TLS), in front of qqgate serve in front of a
    WebSocket echo server: the Upgrade reaches the gate, the 101 comes back, frames flow."""
    from websockets.sync.client import connect

    from .edge import serve_gate
    from .live import signed_in
    from .security.test_request_smuggling import ALICE
    from .test_websocket import EchoUpstream

    upstream = EchoUpstream()
    gate = serve_gate(tmp_path, upstream.url)
    listen = free_port()
    shipped = (ROOT / "deploy" / "nginx-proxy.conf").read_text()
    server = between(shipped, "test-begin", "test-end").replace(
        "127.0.0.1:8000", f"127.0.0.1:{gate.port}"
    )
    block = between(shipped, "test-map-begin", "test-map-end")
    block += f"server {{\n    listen 127.0.0.1:{listen};\n{server}\n}}"
    nginx = start_nginx(nginx_binary, tmp_path, listen, block)
    try:
        with connect(
            f"ws://127.0.0.1:{listen}/chat",
            additional_headers=signed_in(ALICE),
            origin=f"http://127.0.0.1:{listen}",
            open_timeout=10,
        ) as socket:
            for n in range(50):
                socket.send(f"through nginx {n}")
                assert socket.recv(timeout=10) == f"through nginx {n}"
        assert upstream.handshakes[-1]["x-qq-openid"] == ALICE
        refused = requests.get(f"http://127.0.0.1:{listen}/page", timeout=10)
        assert refused.status_code == 401, "plain requests still pass the gate"
    finally:
        nginx.stop()
        gate.stop()
        upstream.close()
