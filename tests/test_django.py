"""``qqgate.contrib.django`` with a real Django project in-process: the gate wraps Django's WSGI app
(the README's ``wsgi.py``), with the settings the README gives; a browser signs in through the
gate and Django's ``request.user`` is that QQ user, named after the nickname, kept current, logged
out with the gate's session, and ``login_required`` on a public path goes through the gate."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from qqgate import QQGate
from qqgate.qq import QQProfile

from .conftest import make_settings
from .rig import OPENID, StubQQ

django = pytest.importorskip("django")

from django.conf import settings  # noqa: E402
from django.contrib.auth.decorators import login_required  # noqa: E402
from django.http import HttpRequest, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402
from webtest import TestApp  # noqa: E402

HTML = {"Accept": "text/html"}


def whoami(request: HttpRequest) -> JsonResponse:
    user = request.user
    return JsonResponse(
        {
            "authenticated": user.is_authenticated,
            "username": user.get_username(),
            "first_name": getattr(user, "first_name", ""),
        }
    )


urlpatterns = [
    path("public/whoami", whoami),
    path("public/members", login_required(whoami)),
    path("private", whoami),
]


@pytest.fixture(scope="module")
def django_app():
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY="django-test-secret-key-0123456789",
            ALLOWED_HOSTS=["localhost"],
            ROOT_URLCONF=__name__,
            DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
            INSTALLED_APPS=[
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django.contrib.sessions",
            ],
            # What the README tells a Django project to add:
            MIDDLEWARE=[
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "qqgate.contrib.django.QQGateMiddleware",
            ],
            AUTHENTICATION_BACKENDS=["qqgate.contrib.django.QQRemoteUserBackend"],
            LOGIN_URL="/_qqgate/login",
        )
    django.setup()
    from django.core.management import call_command
    from django.core.wsgi import get_wsgi_application

    call_command("migrate", verbosity=0, interactive=False)
    return get_wsgi_application()


class Browser:
    """A browser (WebTest, with its cookie jar) on the gate around the Django project."""

    def __init__(self, django_app) -> None:
        self.qq = StubQQ()
        gate_settings = make_settings(public_paths="/public/", cookie_secure="false")
        gate = QQGate(django_app, gate_settings, qq_client=self.qq)
        self.app = TestApp(gate, extra_environ={"HTTP_HOST": "localhost"})

    def sign_in(self, path: str, nickname: str, *, again: bool = False) -> dict:
        """Open ``path`` (``again``: the gate's login for it), go through QQ (the stub) as
        ``nickname``, land back on ``path``."""
        self.qq.result = QQProfile(OPENID, nickname, "", None)
        first = f"/_qqgate/login?next={quote(path, safe='')}" if again else path
        start = self.app.get(first, headers=HTML, status=302)
        while "graph.qq.com" not in start.location:
            start = self.app.get(start.location, headers=HTML, status=302)
        state = parse_qs(urlsplit(start.location).query)["state"][0]
        code = self.qq.issue_code()
        back = self.app.get(f"/_qqgate/callback?code={code}&state={state}", status=302)
        assert back.location == path
        return self.whoami(path)

    def whoami(self, path: str = "/public/whoami") -> dict:
        return json.loads(self.app.get(path).text)


@pytest.fixture
def browser(django_app) -> Browser:
    return Browser(django_app)


def test_signing_in_through_the_gate_logs_the_user_into_django(browser) -> None:
    seen = browser.sign_in("/private", "小明🐧")
    assert seen == {"authenticated": True, "username": OPENID, "first_name": "小明🐧"}
    # The Django user persists on public paths as long as the gate's session does.
    assert browser.whoami()["authenticated"] is True


def test_the_name_follows_the_nickname(browser) -> None:
    browser.sign_in("/private", "小明🐧")
    # A new QQ sign-in while Django's session lasts: the middleware renames the user.
    assert browser.sign_in("/private", "大明", again=True)["first_name"] == "大明"
    from django.contrib.auth import get_user_model

    assert get_user_model().objects.get(username=OPENID).first_name == "大明"


def test_signing_out_of_the_gate_logs_out_of_django(browser) -> None:
    browser.sign_in("/private", "小明🐧")
    same_site = {"Sec-Fetch-Site": "same-origin"}  # the site's own sign-out link, as a browser says
    browser.app.get("/_qqgate/logout?next=/public/whoami", headers=same_site, status=302)
    assert browser.whoami() == {"authenticated": False, "username": "", "first_name": ""}


def test_a_client_cannot_name_itself(browser) -> None:
    spoof = {"X-QQ-OpenID": "F" * 32, "Remote-User": "admin"}
    seen = json.loads(
        browser.app.get(
            "/public/whoami", headers=spoof, extra_environ={"REMOTE_USER": "admin"}
        ).text
    )
    assert seen["authenticated"] is False


def test_login_required_on_a_public_path_signs_in_with_qq_and_comes_back(browser) -> None:
    to_login = browser.app.get("/public/members", headers=HTML, status=302)
    assert to_login.location == "/_qqgate/login?next=/public/members"
    assert browser.sign_in("/public/members", "小明🐧")["authenticated"] is True
