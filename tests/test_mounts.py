"""The gate under a sub-path mount (``SCRIPT_NAME``): ``redirect_uri`` is ``{mount}{prefix}/callback``,
the routes answer under the mount, every Location and the pending-login cookie's Path carry it,
and nothing outside the mount is taken for the gate's. In-process here; real servers (gunicorn,
waitress, Apache with mod_wsgi) in tests/test_servers.py."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest

from qqgate.config import ConfigError

from .conftest import make_settings
from .rig import SITE, Rig, blank, make_rig, set_cookie_value, set_cookies, sets_session

MOUNTED = f"{SITE}/app/_qqgate/callback"


@pytest.fixture
def rig() -> Rig:
    return make_rig(redirect_uri=MOUNTED)


def under(path: str, query: str = "", *, script_name: str = "/app", **kw) -> object:
    """A request as a server that mounted the app at ``script_name`` hands it over."""
    return blank(path, query, environ={"SCRIPT_NAME": script_name}, **kw)


def test_the_mount_comes_from_redirect_uri() -> None:
    assert make_settings(redirect_uri=MOUNTED).mount == "/app"
    assert make_settings(redirect_uri=f"{SITE}/a/b.c/_qqgate/callback").mount == "/a/b.c"
    assert make_settings().mount == ""
    assert make_settings(redirect_uri=f"{SITE}/x/auth/callback", prefix="/auth").mount == "/x"


@pytest.mark.parametrize(
    "path",
    [
        "/app/_qqgate/callbackx",
        "/app//_qqgate/callback",
        "/../_qqgate/callback",
        "/app/../_qqgate/callback",
        "/./_qqgate/callback",
        "/a%20b/_qqgate/callback",
        "/app/_qqgate/callback/",
        "/app/_qqgate",
    ],
)
def test_a_redirect_uri_that_is_no_mount_is_refused(path: str) -> None:
    with pytest.raises(ConfigError, match="redirect_uri"):
        make_settings(redirect_uri=f"{SITE}{path}")


def test_a_whole_sign_in_under_the_mount(rig: Rig) -> None:
    challenge = rig.call(under("/private", "x=1"))
    assert challenge.status_int == 302
    assert challenge.location == "/app/_qqgate/login?next=%2Fapp%2Fprivate%3Fx%3D1"

    login = rig.call(under("/_qqgate/login", "next=%2Fapp%2Fprivate%3Fx%3D1"))
    assert login.status_int == 302 and login.location.startswith("https://graph.qq.com/")
    assert "Path=/app/_qqgate;" in set_cookies(login)["qqgate_state"], (
        "the cookie must reach the callback"
    )
    state = parse_qs(urlsplit(login.location).query)["state"][0]

    cookie = f"qqgate_state={set_cookie_value(login, 'qqgate_state')}"
    code = rig.qq.issue_code()
    callback = rig.call(under("/_qqgate/callback", f"code={code}&state={state}", cookie=cookie))
    assert callback.status_int == 302 and callback.location == "/app/private?x=1"
    assert sets_session(callback)
    session = f"qqgate={set_cookie_value(callback, 'qqgate')}"
    assert rig.call(under("/private", cookie=session)).status_int == 200
    assert rig.paths == ["/private"]


def test_a_front_that_strips_the_mount_still_gets_mounted_urls(rig: Rig) -> None:
    """nginx ``location /app/ { proxy_pass http://gate/; }``: the gate sees no SCRIPT_NAME, yet
    the browser must be sent under /app."""
    challenge = rig.call(under("/private", script_name=""))
    assert challenge.location == "/app/_qqgate/login?next=%2Fapp%2Fprivate"
    page = rig.call(under("/_qqgate/logout", script_name=""))
    assert 'href="/app/_qqgate/login"' in page.text


@pytest.mark.parametrize(
    ("script_name", "path"),
    [
        pytest.param("", "/other/_qqgate/login", id="other-path"),
        pytest.param("/other", "/x/_qqgate/login", id="other-mount"),
        pytest.param("/app", "/app/_qqgate/login", id="mount-twice"),
        pytest.param("/app", "/_qqgatex/login", id="prefix-lookalike"),
    ],
)
def test_nothing_outside_the_gate_routes_is_taken_for_one(rig, script_name, path) -> None:
    response = rig.call(under(path, script_name=script_name))
    assert response.status_int == 302 and "/_qqgate/login?next=" in response.location
    assert "qqgate_state" not in set_cookies(response), "no sign-in was started"


@pytest.mark.parametrize(
    ("query", "location"),
    [
        pytest.param("next=%2Fapp%2Fbye", "/app/bye", id="next"),
        pytest.param("next=%2F%2Fevil.example", "/app/", id="evil-next-goes-home"),
    ],
)
def test_logout_under_the_mount(rig: Rig, query: str, location: str) -> None:
    cookie = f"qqgate={rig.session_for()}"
    response = rig.call(under("/_qqgate/logout", query, cookie=cookie, method="POST"))
    assert response.status_int == 302 and response.location == location
    assert "Max-Age=0" in set_cookies(response)["qqgate"]
