"""Log lines: text and JSON, one per event, and never a secret."""

from __future__ import annotations

import io
import json
import logging

import pytest

from qqgate import logs
from qqgate.qq import QQUnavailable

from .conftest import APP_KEY, SECRET, make_settings
from .rig import set_cookie_value
from .test_middleware import CODE, OPENID, harness


@pytest.fixture
def captured():
    """The qqgate logger's lines, as ``configure`` formats them, for one settings object."""
    streams: list[io.StringIO] = []

    def install(**overrides: str) -> io.StringIO:
        stream = io.StringIO()
        logs.configure(make_settings(**overrides), stream)
        streams.append(stream)
        return stream

    yield install
    logger = logging.getLogger(logs.LOGGER_NAME)
    for handler in [h for h in logger.handlers if getattr(h, "_qqgate_handler", False)]:
        logger.removeHandler(handler)
    logger.propagate = True
    logger.setLevel(logging.NOTSET)


def test_event_text_line_quotes_what_could_break_it(caplog) -> None:
    caplog.set_level(logging.INFO, logger="qqgate")
    logs.event(
        logging.getLogger("qqgate"),
        logging.INFO,
        "sign-in ok",
        openid=OPENID,
        client="192.0.2.7",
        note="two words\nX-Forged: 1",
        missing=None,
    )
    [record] = caplog.records
    assert record.getMessage() == (
        f'sign-in ok openid={OPENID} client=192.0.2.7 note="two words\\nX-Forged: 1"'
    )


def test_json_lines_carry_the_fields(captured) -> None:
    stream = captured(log_format="json")
    logs.event(logging.getLogger("qqgate"), logging.WARNING, "access denied", openid=OPENID)
    logging.getLogger("qqgate.qq").info("plain %s", "message")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["event"] == "access denied" and first["openid"] == OPENID
    assert first["level"] == "WARNING" and first["logger"] == "qqgate"
    assert first["time"].endswith("+00:00")
    assert second["message"] == "plain message" and "event" not in second


def test_configure_replaces_its_own_handler_only(captured) -> None:
    logger = logging.getLogger("qqgate")
    foreign = logging.NullHandler()
    logger.addHandler(foreign)
    try:
        captured()
        text = captured(log_format="text")
        ours = [h for h in logger.handlers if getattr(h, "_qqgate_handler", False)]
        assert len(ours) == 1 and foreign in logger.handlers
        logger.info("hello")
        assert text.getvalue().rstrip().endswith("INFO qqgate: hello")
    finally:
        logger.removeHandler(foreign)


def test_one_line_per_event_and_no_secrets(captured) -> None:
    stream = captured(log_format="json")
    h = harness()
    state, cookie = h.login("/after")
    signed_in = h.callback(f"code={CODE}&state={state}", cookie)
    session = set_cookie_value(signed_in, "qqgate")
    h.get("/_qqgate/logout", cookie=f"qqgate={h.session_for()}", headers={"Sec-Fetch-Site": "none"})
    h.callback("code=X&state=forged", cookie)
    h.qq.result = QQUnavailable("down", endpoint="token")
    state2, cookie2 = h.login()
    h.callback(f"code={CODE}&state={state2}", cookie2)
    denied = harness(allowed_openids="F" * 32)
    denied.get("/admin", cookie=f"qqgate={denied.session_for()}")

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(line["event"], line.get("reason")) for line in lines] == [
        ("sign-in ok", None),
        ("sign-out", None),
        ("sign-in failed", "state_mismatch"),
        ("sign-in failed", "qq_unavailable"),
        ("access denied", "not_in_allowed_openids"),
    ]
    assert all(line["client"] == "192.0.2.7" for line in lines)
    assert lines[0]["openid"] == lines[1]["openid"] == lines[4]["openid"] == OPENID
    text = stream.getvalue()
    for secret in (CODE, state, state2, cookie, cookie2, session, APP_KEY, SECRET):
        assert secret not in text


def test_json_line_survives_a_lone_surrogate(captured) -> None:
    stream = captured(log_format="json")
    logs.event(logging.getLogger("qqgate"), logging.INFO, "sign-in ok", openid="小\ud83d")
    line = stream.getvalue().strip()
    line.encode("utf-8")
    assert json.loads(line)["openid"] == "小\ud83d"
