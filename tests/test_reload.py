"""Reloads that cannot take the site down (issue 13): SIGHUP to ``qqgate serve``'s gunicorn master
with a broken gate.ini keeps the gate answering with the configuration it had; with a good one, the
new configuration applies. And the systemd unit checks the file before it sends the signal."""

from __future__ import annotations

import re
import signal

import requests

from .operated import gate_ini, served_gate, wait_until
from .servers import ROOT, free_port


def _site_name(url: str) -> str:
    page = requests.get(f"{url}/nowhere", timeout=30)
    assert page.status_code == 404
    match = re.search(r'class="site">([^<]*)<', page.text)
    assert match, page.text
    return match.group(1)


def test_hup_with_a_broken_config_keeps_the_gate_up_and_a_good_one_applies(tmp_path) -> None:
    port = free_port()
    config = gate_ini(tmp_path, port, 9, site_name="Before")
    gate = served_gate(config, port, workers=2).start()
    try:
        assert _site_name(gate.url) == "Before"
        assert gate.process is not None
        gate_ini(tmp_path, port, 9, site_name="Broken", upstream_timeout="banana")
        gate.process.send_signal(signal.SIGHUP)
        wait_until(lambda: "reload refused" in gate.output(), what="the refused reload")
        assert "upstream_timeout: expected a number of seconds, got 'banana'" in gate.output()
        # The workers gunicorn forks after the HUP boot with the configuration that was running.
        wait_until(lambda: gate.output().count("Booting worker") >= 4, what="new workers")
        for _ in range(10):
            assert _site_name(gate.url) == "Before"
            assert requests.get(f"{gate.url}/_qqgate/ping", timeout=30).text == "ok\n"
        assert gate.process.poll() is None

        gate_ini(tmp_path, port, 9, site_name="After")
        gate.process.send_signal(signal.SIGHUP)
        wait_until(lambda: _site_name(gate.url) == "After", what="the new site_name")
        assert "qqgate: reloaded" in gate.output()
    finally:
        output = gate.stop()
    assert "Worker failed to boot" not in output and "Traceback" not in output, output


def test_the_systemd_unit_checks_the_config_before_the_hup() -> None:
    unit = (ROOT / "deploy" / "qqgate.service").read_text(encoding="utf-8")
    reloads = [line for line in unit.splitlines() if line.startswith("ExecReload=")]
    assert reloads == [
        "ExecReload=/opt/qqgate/venv/bin/qqgate check -c ${QQGATE_CONFIG}",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ]
