"""gunicorn settings for the gate: ``gunicorn -c python:qqgate.gunicorn_conf`` (what
``qqgate serve`` runs) or ``gunicorn -c deploy/gunicorn.conf.py``. Tunable through the environment:

QQGATE_CONFIG (the gate.ini), QQGATE_BIND (default 127.0.0.1:8000), QQGATE_WORKERS (default: CPU
count), QQGATE_WORKER_CLASS (default ``qqgate.worker.GateWorker``, gevent; ``gthread`` for a
thread per connection), QQGATE_THREADS (gthread only, default 8), QQGATE_FORWARDED_ALLOW_IPS (the
proxies trusted to set X-Forwarded-Proto, default 127.0.0.1,::1). The bounds on clients
(``client_header_timeout``, ``max_header_fields``, ...) come from gate.ini.
"""

import os
import shutil
import sys
import tempfile
from typing import Any

from qqgate import metrics, reloads
from qqgate.config import ConfigError, Settings
from qqgate.values import bind_address

wsgi_app = "qqgate.wsgi:application"
# prometheus_client's multiprocess mode: each worker writes its metrics to files here, and a scrape
# adds them up. A fresh directory per master, removed when it exits (unless the operator set one).
_metrics_dir = "" if os.environ.get(metrics.MULTIPROC_ENV) else tempfile.mkdtemp(prefix="qqgate-")
if _metrics_dir:
    os.environ[metrics.MULTIPROC_ENV] = _metrics_dir
bind = os.environ.get("QQGATE_BIND", "127.0.0.1:8000")
try:
    bind_address(bind)
    _bind_problem = ""
except ValueError as exc:
    _bind_problem = str(exc)
    bind = "127.0.0.1:8000"  # never used: on_starting stops gunicorn first
workers = int(os.environ.get("QQGATE_WORKERS") or os.cpu_count() or 1)
# One greenlet per connection: slow clients, long downloads and WebSockets hold no thread.
worker_class = os.environ.get("QQGATE_WORKER_CLASS", "qqgate.worker.GateWorker")
threads = int(os.environ.get("QQGATE_THREADS", "8"))
# Longer than the default upstream_timeout (60 s), so a slow upstream gets our 504, not a kill.
timeout = 90
graceful_timeout = 20
# Must stay above 0: the gevent worker's keep-alive loop is where the head deadline applies.
keepalive = 5
forwarded_allow_ips = os.environ.get("QQGATE_FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
accesslog = "-"
# Redacts the callback's query (QQ's code and the state) and credential-like parameters.
logger_class = "qqgate.accesslog.GateLogger"
# {remote_user}e is the environ after the gate ran: the openid of a signed-in user, never a value
# the client sent (the gate removed that). Request headers (%({...}i)s) would be client-chosen.
access_log_format = '%(h)s %({remote_user}e)s %(t)s "%(r)s" %(s)s %(B)s %(M)sms "%(a)s"'
# gunicorn >= 27 opens a control socket in ~/.gunicorn, shared by every instance of the user.
control_socket_disable = True


_gate = reloads.start()  # kept in the master for the workers; on_starting reports a problem
if isinstance(_gate, Settings):  # as reloads.GUNICORN_SETTINGS, which a reload applies again
    limit_request_line = _gate.max_request_line
    limit_request_fields = _gate.max_header_fields
    limit_request_field_size = _gate.max_header_field_size
    worker_connections = _gate.worker_connections


def on_starting(server: object) -> None:
    """Refuse to start with a missing or bad config, with a message instead of a traceback."""
    if isinstance(_gate, ConfigError):
        sys.stderr.write(f"qqgate: cannot start: {_gate}\n")
        sys.exit(1)
    if _bind_problem:
        sys.stderr.write(f"qqgate: cannot start: QQGATE_BIND: {_bind_problem}\n")
        sys.exit(1)


def on_reload(server: object) -> None:
    """On SIGHUP: check the new gate.ini before any new worker forks; keep the old one if bad."""
    reloads.reload(server)


def child_exit(server: object, worker: Any) -> None:
    """A worker ended: its gauges (requests in flight, tunnels) leave the sums."""
    metrics.worker_exited(worker.pid)


def on_exit(server: object) -> None:
    if _metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
