"""One log line per thing the gate decides: sign-in, sign-out, denial, error.

Each line names the event, the openid when there is one, the client address and the reason.
Codes, tokens, states, cookie values and keys are never passed in, so they can never be logged.
Sign-in outcomes and denials are counted for the metrics too (``qqgate.metrics``).

``log_format = text`` gives ``sign-in ok openid=... client=...``; ``json`` gives one JSON object a
line, with the same fields as keys, for log shippers. ``configure(settings)`` installs either on
the ``qqgate`` logger; the command-line and WSGI entry points call it, and ``QQGate`` calls
``configure_unless_configured``, so an app that embeds the middleware logs its events with no
setup, or with its own.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import IO

from . import metrics
from .config import Settings

LOGGER_NAME = "qqgate"
_PLAIN = re.compile(r"^[\x21-\x7e]{1,200}$")  # printable ASCII without spaces: safe as it is
_HANDLER_FLAG = "_qqgate_handler"


def event(logger: logging.Logger, level: int, name: str, **fields: object) -> None:
    """Log ``name`` (e.g. "sign-in ok") with ``key=value`` fields; None values are left out."""
    present = {key: value for key, value in fields.items() if value is not None}
    line = " ".join([name, *(f"{key}={_text_value(value)}" for key, value in present.items())])
    logger.log(level, "%s", line, extra={"qqgate_event": name, "qqgate_fields": present})
    metrics.count_event(name, present)


def _text_value(value: object) -> str:
    # A nickname or a header may carry spaces or line breaks: quote them so one event stays one
    # line and no field can pretend to be another.
    text = str(value)
    return text if _PLAIN.match(text) else json.dumps(text)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, event fields, message."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        name = getattr(record, "qqgate_event", None)
        if name:
            data["event"] = name
            data.update(getattr(record, "qqgate_fields", {}))
        data["message"] = record.getMessage()
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        line = json.dumps(data, ensure_ascii=False, default=str)
        # A lone surrogate (from a hostile value) cannot be written as UTF-8: escape it instead.
        return line if line.isascii() or _encodable(line) else json.dumps(data, default=str)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(
    settings: Settings, stream: IO[str] | None = None, level: int = logging.INFO
) -> logging.Handler:
    """Send the ``qqgate`` logger's lines to ``stream`` (stderr) in ``settings.log_format``.

    Calling it again replaces the handler it installed before. The ``qqgate`` logger then stops
    propagating, so a root handler does not print every line a second time.
    """
    logger = logging.getLogger(LOGGER_NAME)
    for old in [h for h in logger.handlers if getattr(h, _HANDLER_FLAG, False)]:
        logger.removeHandler(old)
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter(settings.log_format))
    setattr(handler, _HANDLER_FLAG, True)
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    return handler


def configure_unless_configured(settings: Settings) -> None:
    """What an app that embeds the middleware gets with no setup of its own: when neither the
    ``qqgate`` logger nor the root logger has a handler (the app has set up no logging), the
    gate's lines go to stderr as ``configure`` sends them. Logging set up before the gate is
    created is left alone (the ``qqgate`` logger then only gets level INFO, if it had none)."""
    logger = logging.getLogger(LOGGER_NAME)
    if logger.handlers or logging.getLogger().handlers:
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.INFO)
        return
    configure(settings)
