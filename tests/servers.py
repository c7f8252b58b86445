"""Real server processes on loopback for end-to-end tests: started, awaited and stopped by the tests."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path
from typing import Self

import gunicorn

from bench.ports import free_port, free_port_pair, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
__all__ = [
    "ROOT",
    "Gunicorn",
    "Server",
    "free_port",
    "free_port_pair",
    "terminate",
    "wait_for_port",
]


# gunicorn >= 27 opens a control socket in ~/.gunicorn shared by all instances: not for tests.
_NO_CONTROL_SOCKET = ["--no-control-socket"] if gunicorn.version_info >= (27,) else []


def terminate(process: subprocess.Popen, timeout: float = 15) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if ``process`` is still running after ``timeout``."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


class Server:
    """A server process (``args``) that listens on ``port`` of 127.0.0.1, as a context manager:
    started and awaited by ``start()``, stopped with SIGTERM by ``stop()``."""

    def __init__(self, args: list[str], env: dict[str, str] | None = None, *, port: int) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.process: subprocess.Popen | None = None

    def start(self) -> Self:
        # A file, not a pipe: a pipe nobody reads fills up and blocks the server.
        self.log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.args, env=self.env, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT
        )
        try:
            wait_for_port(self.port, self.process)
        except RuntimeError:
            self.stop()
            raise
        return self

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace")

    def stop(self) -> str:
        """Stop with SIGTERM (graceful); return everything the server wrote. Stopping again
        returns what the first stop returned."""
        assert self.process is not None
        terminate(self.process)
        if not self.log.closed:
            self._output = self.output()
            self.log.close()
        return self._output

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Gunicorn(Server):
    """``gunicorn APP`` on a free loopback port."""

    def __init__(
        self,
        app: str,
        env: dict[str, str] | None = None,
        *,
        workers: int = 1,
        threads: int = 4,
        port: int | None = None,
        extra: list[str] | None = None,
    ) -> None:
        port = port or free_port()
        args = [
            sys.executable,
            "-m",
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            str(threads),
            "--graceful-timeout",
            "5",
            *_NO_CONTROL_SOCKET,
            *(extra or []),
            app,
        ]
        super().__init__(args, env, port=port)


def waitress(app: str, env: dict[str, str], *, port: int, url_prefix: str = "") -> Server:
    """waitress serving ``module:callable``; with ``url_prefix``, mounted there (SCRIPT_NAME)."""
    args = [sys.executable, "-m", "waitress", f"--listen=127.0.0.1:{port}", "--threads=8"]
    if url_prefix:
        args.append(f"--url-prefix={url_prefix}")
    return Server([*args, app], env, port=port)


def werkzeug(app: str, env: dict[str, str], *, port: int) -> Server:
    """werkzeug's development server (threaded) serving ``module:attribute``."""
    module, _, attribute = app.partition(":")
    code = (
        "import importlib, sys; from werkzeug.serving import run_simple; "
        f"app = getattr(importlib.import_module({module!r}), {attribute!r}); "
        "run_simple('127.0.0.1', int(sys.argv[1]), app, threaded=True)"
    )
    return Server([sys.executable, "-c", code, str(port)], env, port=port)


UWSGI = Path("/usr/bin/uwsgi_python3")


def uwsgi(script: Path, env: dict[str, str], *, port: int, mount: str = "") -> Server:
    """Debian's uWSGI with its python3 plugin, speaking HTTP/1.1 itself (``--http11-socket``),
    serving the ``application`` of ``script``; with ``mount``, there (``--mount`` and
    ``--manage-script-name``: SCRIPT_NAME is the mount, PATH_INFO the rest)."""
    site_packages = sysconfig.get_paths()["purelib"]
    args = [str(UWSGI), "--http11-socket", f"127.0.0.1:{port}", "--master", "--processes", "1"]
    args += ["--threads", "8", "--pythonpath", str(ROOT), "--pythonpath", site_packages]
    args += ["--die-on-term", "--need-app", "--disable-logging"]
    if mount:
        args += ["--mount", f"{mount}={script}", "--manage-script-name"]
    else:
        args += ["--wsgi-file", str(script)]
    return Server(args, env, port=port)


APACHE = Path("/usr/sbin/apache2")
MOD_WSGI = Path("/usr/lib/apache2/modules/mod_wsgi.so")
_APACHE_CONF = """\
ServerRoot "{home}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile "{home}/httpd.pid"
ErrorLog "{home}/error.log"
LogLevel warn
Mutex file:{home}
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule wsgi_module {mod_wsgi}
{user}
WSGISocketPrefix "{home}/wsgi"
WSGIDaemonProcess qqgate processes=1 threads=8 python-path={python_path}
WSGIProcessGroup qqgate
WSGIApplicationGroup %{{GLOBAL}}
WSGIScriptAlias {mount} "{script}"
<Directory "{script_dir}">
    Require all granted
</Directory>
"""


def apache_mod_wsgi(
    script: Path, env: dict[str, str], home: Path, *, port: int, mount: str = "/"
) -> Server:
    """Debian's Apache with mod_wsgi (daemon mode, the usual way to host a WSGI app), with its own
    config in ``home`` (readable by the server's user), serving ``script`` at ``mount``
    (``WSGIScriptAlias``). The daemon process finds qqgate and its packages through python-path."""
    site_packages = sysconfig.get_paths()["purelib"]
    # Run as root, Apache's children must drop to another user: give it the files it reads.
    user = "User nobody\nGroup nogroup" if os.geteuid() == 0 else ""
    conf = home / "httpd.conf"
    conf.write_text(
        _APACHE_CONF.format(
            home=home,
            port=port,
            mod_wsgi=MOD_WSGI,
            user=user,
            python_path=f"{ROOT}:{site_packages}",
            mount=mount,
            script=script,
            script_dir=script.parent,
        ),
        encoding="utf-8",
    )
    if os.geteuid() == 0:
        shutil.chown(home, "nobody", "nogroup")
    # The daemon process inherits this environment (QQGATE_CONFIG), as a service's would.
    return Server([str(APACHE), "-f", str(conf), "-DFOREGROUND"], env, port=port)
