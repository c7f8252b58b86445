"""The benchmark scripts run from a checkout as bench/README.md says: each prints its table and
exits 0 (targets met) or 1 (a target missed), never with a traceback. Timings are not checked
here: they are measured by the scripts themselves, on a quiet machine (bench/RESULTS.md)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*argv: str, timeout: float = 120) -> str:
    done = subprocess.run(
        [sys.executable, "-m", *argv],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert done.returncode in (0, 1), f"{argv} crashed:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        pytest.param(
            ("bench.inprocess", "--seconds", "1"), "auth_request, signed in (202)", id="inprocess"
        ),
        pytest.param(("bench.signin", "--sign-ins", "20"), "QQClient", id="signin"),
        pytest.param(("bench.recv_size", "--rounds", "200"), "128 KiB", id="recv_size"),
        pytest.param(
            ("bench.parse", "--sizes", "4,8", "--rounds", "1"), "worst growth", id="parse"
        ),
    ],
)
def test_in_process_benchmarks_run(argv, expected) -> None:
    assert expected in run_bench(*argv)


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (tools/system-deps.sh)")
def test_http_benchmark_runs_against_real_gunicorn() -> None:
    out = run_bench(
        "bench.http", "--section", "in-call", "--duration", "1", "--warmup", "1", "--repeat", "1"
    )
    assert "gunicorn gthread, timed in the worker" in out
    assert "the gate adds" in out and "gated/bare req/s" in out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (tools/system-deps.sh)")
@pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="nginx not installed (tools/system-deps.sh)",
)
def test_scale_benchmark_runs_against_real_gunicorn() -> None:
    out = run_bench(
        *("bench.scale", "--duration", "1", "--repeat", "1"),
        *("--idle", "20", "--downloads", "5", "--probe-seconds", "2"),
    )
    assert "qqgate serve, proxy mode, 1 worker" in out and "gevent/gthread req/s" in out
    assert "KiB per held connection" in out and "p99 < 200 ms" in out
    assert "QQGate middleware in-process, 1 worker" in out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk not installed (tools/system-deps.sh)")
@pytest.mark.skipif(
    shutil.which("nginx") is None and not Path("/usr/sbin/nginx").exists(),
    reason="nginx not installed (tools/system-deps.sh)",
)
def test_auth_cache_benchmark_runs_against_real_nginx() -> None:
    out = run_bench("bench.authcache", "--duration", "1", "--repeat", "1", "--connections", "4")
    assert "auth_request + cache" in out and "x plain" in out
