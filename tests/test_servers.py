"""The middleware under every WSGI server a legacy app is hosted on, at the site root and under a
sub-path mount: a full sign-in through the development provider (a browser-like session that
follows redirects), spoofed identity headers, a public path, logout, and a 5 MB upload, each on a
real server process started here: gunicorn (sync, gthread, gevent), waitress, werkzeug's server,
Debian's Apache with mod_wsgi and Debian's uWSGI."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import requests

from qqgate.dev.fakeqq import openid_for

from .conftest import APP_ID, APP_KEY
from .live import PROCESS_SECRET, Provider
from .servers import (
    APACHE,
    MOD_WSGI,
    ROOT,
    UWSGI,
    Gunicorn,
    Server,
    apache_mod_wsgi,
    free_port,
    uwsgi,
    waitress,
    werkzeug,
)
from .test_e2e import HTML, sign_in

NICKNAME = "小明🐧"
UPLOAD = os.urandom(5 * 1024 * 1024)
APP = "tests.matrix_app:application"
# Spellings of the identity headers a client may send (many servers fold "-" and "_" alike).
SPOOFS = {
    "X-QQ-OpenID": "SPOOF",
    "X-QQ_OpenID": "SPOOF",
    "x-qq-openid": "SPOOF",
    "X-QQ-Nickname": "SPOOF",
    "X_QQ_Nickname": "SPOOF",
    "X-QQ-UnionID": "SPOOF",
    "Remote-User": "SPOOF",
    "Remote_User": "SPOOF",
    "X-Qq-Openid": "SPOOF",
    "X-QQ-UNIONID": "SPOOF",
}


def _gunicorn(worker: str) -> Callable[..., Server]:
    def start(env: dict[str, str], home: Path, port: int, mount: str) -> Server:
        env = {**env, "SCRIPT_NAME": mount} if mount else env
        extra = ["--worker-class", worker]
        return Gunicorn("tests.matrix_app:create()", env, port=port, threads=8, extra=extra)

    return start


def _waitress(env: dict[str, str], home: Path, port: int, mount: str) -> Server:
    return waitress(APP, env, port=port, url_prefix=mount)


def _werkzeug(env: dict[str, str], home: Path, port: int, mount: str) -> Server:
    assert not mount, "werkzeug's server mounts nothing by itself"
    return werkzeug(APP, env, port=port)


def _uwsgi(env: dict[str, str], home: Path, port: int, mount: str) -> Server:
    if not UWSGI.exists():
        pytest.skip("uWSGI is not installed (tools/system-deps.sh installs it)")
    return uwsgi(ROOT / "tests" / "matrix_app.py", env, port=port, mount=mount)


def _apache(env: dict[str, str], home: Path, port: int, mount: str) -> Server:
    if not (APACHE.exists() and MOD_WSGI.exists()):
        pytest.skip("Apache with mod_wsgi is not installed (tools/system-deps.sh installs it)")
    script = ROOT / "tests" / "matrix_app.py"
    return apache_mod_wsgi(script, env, home, port=port, mount=mount or "/")


SERVERS = {
    "gunicorn-sync": _gunicorn("sync"),
    "gunicorn-gthread": _gunicorn("gthread"),
    "gunicorn-gevent": _gunicorn("gevent"),
    "waitress": _waitress,
    "werkzeug": _werkzeug,
    "apache-mod_wsgi": _apache,
    "uwsgi": _uwsgi,
}
MOUNTED = ("gunicorn-gthread", "waitress", "apache-mod_wsgi", "uwsgi")
CASES = [pytest.param((name, ""), id=name) for name in SERVERS] + [
    pytest.param((name, "/app"), id=f"{name}-under-/app") for name in MOUNTED
]


class Site:
    """A gated app on a real server: where it is, and what a browser does there."""

    def __init__(self, server: Server, mount: str) -> None:
        self.server, self.mount = server, mount
        self.base = server.url + mount

    def sign_in(self, user: str = "xiaoming") -> tuple[requests.Session, dict]:
        """From a protected page to QQ's consent page, approve, and back: the page's echo."""
        browser, page = sign_in(self.base, "/private?x=1", user)
        callback = next(r.url for r in page.history if "/_qqgate/callback?" in r.url)
        assert callback.startswith(f"{self.base}/_qqgate/callback?"), callback
        assert page.status_code == 200, page.text[:500]
        assert page.url == f"{self.base}/private?x=1"
        return browser, page.json()


@pytest.fixture(params=CASES)
def site(request, provider: Provider) -> Iterator[Site]:
    yield from serve_site(*request.param, provider)


@pytest.fixture(params=[case for case in CASES if case.values[0][1]])
def mounted_site(request, provider: Provider) -> Iterator[Site]:
    yield from serve_site(*request.param, provider)


def serve_site(name: str, mount: str, provider: Provider) -> Iterator[Site]:
    port = free_port()
    # Not under pytest's tmp_path (mode 0700 all the way): Apache's daemon process runs as its own
    # user and must reach its socket and read the config, as in a real deployment.
    home = Path(tempfile.mkdtemp(prefix=f"qqgate-{name}-"))
    home.chmod(0o755)
    config = home / "gate.ini"
    callback = f"http://127.0.0.1:{port}{mount}/_qqgate/callback"
    config.write_text(
        "[qqgate]\n"
        f"app_id = {APP_ID}\napp_key = {APP_KEY}\nsecret_key = {PROCESS_SECRET}\n"
        f"redirect_uri = {callback}\nqq_base_url = http://localhost:{provider.port}\n"
        "cookie_secure = false\npublic_paths = /healthz\n",
        encoding="utf-8",
    )
    config.chmod(0o644)
    provider.fake.register(APP_ID, callback)
    server = SERVERS[name]({"QQGATE_CONFIG": str(config)}, home, port, mount).start()
    try:
        yield Site(server, mount)
    finally:
        log = server.stop()
        error_log = home / "error.log"
        log += error_log.read_text(errors="replace") if error_log.exists() else ""
        shutil.rmtree(home, ignore_errors=True)
    assert "Traceback" not in log, log[-3000:]


def test_sign_in_spoofing_public_path_logout_and_upload(site: Site) -> None:
    browser, seen = site.sign_in()
    openid = openid_for(APP_ID, "xiaoming")
    assert seen["identity"]["openid"] == openid and seen["remote_user"] == openid
    assert seen["headers"]["HTTP_X_QQ_NICKNAME"] == quote(NICKNAME, safe="")
    assert (seen["script_name"], seen["path"]) == (site.mount, "/private")

    # Spoofed identity headers, in every spelling, never reach the app.
    for signed_in in (browser, requests.Session()):
        response = signed_in.get(f"{site.base}/healthz", headers=SPOOFS, timeout=20)
        assert response.status_code == 200 and "SPOOF" not in response.text, response.text
    assert requests.get(f"{site.base}/healthz", timeout=20).json()["identity"] is None

    # A 5 MB upload reaches the app whole.
    upload = browser.post(f"{site.base}/private", data=UPLOAD, timeout=60).json()
    assert upload["body"] == {"length": len(UPLOAD), "sha256": hashlib.sha256(UPLOAD).hexdigest()}

    # Logout ends the session; an API client then gets the 401 with a login URL under the mount.
    assert browser.post(f"{site.base}/_qqgate/logout", timeout=20).status_code == 200
    after = browser.get(f"{site.base}/private", headers={"Accept": "application/json"}, timeout=20)
    assert after.status_code == 401
    assert after.json()["login_url"] == f"{site.mount}/_qqgate/login?next=%2F" + quote(
        f"{site.mount}/private".lstrip("/"), safe=""
    )


def test_outside_the_mount_nothing_is_the_gate(mounted_site: Site) -> None:
    """``/other/_qqgate/login`` is not the gate's (the app is mounted at /app), nor is
    ``/app/other/_qqgate/login``: neither starts a sign-in."""
    site = mounted_site
    for path in ("/other/_qqgate/login", f"{site.mount}/other/_qqgate/login"):
        response = requests.get(
            f"{site.server.url}{path}", headers=HTML, allow_redirects=False, timeout=20
        )
        location = response.headers.get("Location", "")
        assert "graph.qq.com" not in location and "/oauth2.0/" not in location, (path, location)
        assert "qqgate_state" not in response.headers.get("Set-Cookie", ""), path
