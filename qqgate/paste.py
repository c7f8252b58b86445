"""PasteDeploy entry point: ``[filter:qqgate]`` with ``use = egg:qqgate`` and the gate's keys.

PasteDeploy itself is an optional extra (``pip install qqgate[paste]``).
"""

from __future__ import annotations

from typing import Any

from .config import load_settings
from .middleware import QQGate
from .wsgiutil import WSGIApp


def filter_app_factory(app: WSGIApp, global_conf: dict[str, Any], **local_conf: str) -> QQGate:
    """Wrap ``app`` in the gate. Keys in the filter section win over ``QQGATE_*`` variables;
    ``config = path/to/gate.ini`` there reads a gate.ini too. Logging is left to the pipeline's
    own ``[loggers]`` configuration (the lines go to the ``qqgate`` logger)."""
    return QQGate(app, load_settings(local_conf.pop("config", None), **local_conf))
