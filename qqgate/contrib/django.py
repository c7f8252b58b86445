"""Django: QQ users logged into ``django.contrib.auth``, named after their QQ nickname.

Import this module only from a Django project (it imports Django). Behind the gate in-process
(``application = QQGate(get_wsgi_application(), ...)`` in ``wsgi.py``), add to the settings::

    MIDDLEWARE = [
        ...,
        "django.contrib.auth.middleware.AuthenticationMiddleware",
        "qqgate.contrib.django.QQGateMiddleware",  # after AuthenticationMiddleware
        ...,
    ]
    AUTHENTICATION_BACKENDS = ["qqgate.contrib.django.QQRemoteUserBackend"]
    LOGIN_URL = "/_qqgate/login"  # login_required on a public path: sign in with QQ, come back

Each QQ user becomes a ``User`` whose username is the openid (the nickname is neither unique nor
stable) and whose ``first_name`` is the nickname, brought up to date whenever it changes. The
gate's session is the truth: a request without it (a public path, after the gate's sign-out) logs
the Django session out too, as Django's ``RemoteUserMiddleware`` does.

Behind a front instead (proxy mode, nginx, Caddy, Traefik), where the identity arrives as the
``X-QQ-OpenID`` and ``X-QQ-Nickname`` headers, use ``QQGateHeaderMiddleware``; only where nothing
but that front can reach Django, since it trusts those headers.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from django.contrib.auth.backends import RemoteUserBackend
from django.contrib.auth.middleware import RemoteUserMiddleware

from ..headers import IDENTITY_KEY

NAME_LENGTH = 150  # django.contrib.auth's first_name


def nickname_of(meta: dict[str, Any]) -> str | None:
    """The QQ nickname of this request's user: from the gate in-process, else its header."""
    identity = meta.get(IDENTITY_KEY)
    if identity is not None:
        return str(identity.nickname)
    header = meta.get("HTTP_X_QQ_NICKNAME")
    return None if header is None else unquote(header)


def keep_name(user: Any, meta: dict[str, Any]) -> None:
    """Set ``user.first_name`` to the nickname if it differs; saved only when it changed."""
    nickname = nickname_of(meta)
    if nickname is None:
        return
    name = nickname[:NAME_LENGTH]
    if user.first_name != name:
        user.first_name = name
        user.save(update_fields=["first_name"])


class QQRemoteUserBackend(RemoteUserBackend):  # type: ignore[misc]  # Django is untyped
    """Creates a user per openid on first sight, named after the nickname."""

    create_unknown_user = True

    def configure_user(self, request: Any, user: Any, created: bool = True) -> Any:
        if request is not None:
            keep_name(user, request.META)
        return user


class QQGateMiddleware(RemoteUserMiddleware):  # type: ignore[misc]
    """``RemoteUserMiddleware`` that also keeps the user's name to the current nickname (a new
    QQ sign-in may bring a new one while the Django session lasts)."""

    async_capable = False  # the gate is WSGI middleware: Django runs this synchronously

    def __call__(self, request: Any) -> Any:
        self.process_request(request)
        user = request.user
        if user.is_authenticated and user.get_username() == request.META.get(self.header):
            keep_name(user, request.META)
        return self.get_response(request)


class QQGateHeaderMiddleware(QQGateMiddleware):
    """``QQGateMiddleware`` for Django behind a front that sets ``X-QQ-OpenID``."""

    header = "HTTP_X_QQ_OPENID"
