"""``qqgate.wsgi:application``: the gate as a standalone process, built from one config file.

The file is named by ``QQGATE_CONFIG`` (default ``./gate.ini``; ``QQGATE_*`` variables still
override its keys). With ``upstream`` set, the gate wraps a reverse proxy to that app. Without it,
the gate serves only its own routes under ``{prefix}`` and answers 404 elsewhere: all that the nginx
``auth_request`` deployment needs.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import logs, reloads
from .config import Settings, config_path, load_settings
from .middleware import QQGate
from .pages import Pages
from .upstream import OriginPolicy, UpstreamProxy
from .wsgiutil import TRUSTED_PROXIES, Environ, StartResponse, WSGIApp


def build_application(settings: Settings) -> WSGIApp:
    """The WSGI app for ``settings``: gate + proxy, or the gate's own routes only."""
    if settings.upstream:
        proxy = UpstreamProxy(
            settings.upstream,
            timeout=settings.upstream_timeout,
            preserve_host=settings.preserve_host,
            hidden_cookies=(settings.cookie_name, settings.state_cookie_name),
            identity_headers=settings.identity_headers,
            origins=OriginPolicy(settings.redirect_uri, settings.websocket_origins),
            websocket_idle_timeout=settings.websocket_idle_timeout,
            pages=Pages(settings),
        )
        return QQGate(proxy, settings)
    return RoutesOnly(QQGate(_never_called, settings))


class RoutesOnly:
    """Pass only ``{prefix}`` requests to the gate; 404 for everything else."""

    def __init__(self, gate: QQGate) -> None:
        self.gate = gate
        self._prefix = gate.settings.prefix

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == self._prefix or path.startswith(self._prefix + "/"):
            return self.gate(environ, start_response)
        if self.gate.proxies is not None:  # the access log's address, as the gate's routes have
            environ[TRUSTED_PROXIES] = self.gate.proxies
        page = self.gate.routes.pages.error(environ, 404, "not_found.title", ["not_found.message"])
        return page(environ, start_response)


def _never_called(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
    raise AssertionError("RoutesOnly passes only the gate's own routes")


def __getattr__(name: str) -> WSGIApp:
    # Built on first access (gunicorn's import of "qqgate.wsgi:application"), not on import, so
    # that importing this module for its helpers never reads a config file.
    if name != "application":
        raise AttributeError(name)
    # Under qqgate serve, what gunicorn's master checked (qqgate.reloads); else the file.
    settings = reloads.current() or load_settings(config_path())
    logs.configure(settings)
    app = build_application(settings)
    globals()["application"] = app
    return app
