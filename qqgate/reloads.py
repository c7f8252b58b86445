"""The configuration a gunicorn master has checked, handed to the workers it forks.

``qqgate serve`` (``qqgate.gunicorn_conf``) reads gate.ini in gunicorn's master, at start and again
on every SIGHUP, before any worker is forked. A worker builds its app from what the master checked
(``current()``) instead of reading the file itself. So a broken gate.ini on reload is refused in
the master, its problems are logged, and the workers gunicorn forks to replace the old ones get
the configuration that was running: the site stays up. (Without this, the new workers failed to
boot and gunicorn's master shut down.)
"""

from __future__ import annotations

from typing import Any

from .config import ConfigError, Settings, config_path, load_settings
from .pages import load_templates

_current: Settings | None = None

# gunicorn settings that come from gate.ini: a reload applies them to the next workers.
GUNICORN_SETTINGS = {
    "limit_request_line": "max_request_line",
    "limit_request_fields": "max_header_fields",
    "limit_request_field_size": "max_header_field_size",
    "worker_connections": "worker_connections",
}


def current() -> Settings | None:
    """The settings this process's master checked; None outside ``qqgate serve``."""
    return _current


def load_checked(path: str) -> Settings:
    """The settings in ``path``, with the page templates they name loaded once to check them."""
    settings = load_settings(path)
    load_templates(settings.templates_dir)
    return settings


def start() -> Settings | ConfigError:
    """Read the config at start-up: the settings (kept for the workers) or what is wrong."""
    global _current
    try:
        _current = load_checked(config_path())
    except ConfigError as exc:
        return exc
    return _current


def reload(server: Any) -> None:
    """gunicorn's ``on_reload`` hook: runs in the master after SIGHUP, before new workers fork."""
    global _current
    path = config_path()
    try:
        settings = load_checked(path)
    except ConfigError as exc:
        problems = "; ".join(f"{key}: {message}" for key, message in exc.problems)
        server.log.error("qqgate: reload refused, %s unchanged: %s", path, problems)
        return
    _current = settings
    for name, key in GUNICORN_SETTINGS.items():
        server.cfg.set(name, getattr(settings, key))
    server.log.setup(server.cfg)  # log_format may have changed
    server.log.info("qqgate: reloaded %s", path)
