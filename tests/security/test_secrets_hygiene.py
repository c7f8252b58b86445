"""Secrets hygiene: full sign-ins against the development provider, some succeeding and some failing
in every way QQ can fail, with the ``qqgate`` and ``urllib3`` loggers at DEBUG. Neither the log nor
any response (bodies and headers, except the Set-Cookie headers that carry the cookies themselves)
may contain the APP Key, an authorization code, an access token, a state or a cookie value.

The one place a state must appear is the login's redirect to QQ (QQ sends it back): that Location
(and the redirect's body, which repeats it) is checked to hold no APP Key, then left out of the
search.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from urllib.parse import quote, quote_plus

import pytest

from ..live import Provider, serve_provider
from ..rig import blank, call, make_rig, set_cookies

# Characters that requests percent-encodes, so the key's encoded form is searched for too.
HYGIENE_APP_KEY = "hygiene-Key+with/special=chars&more#and;semi"


@pytest.fixture(scope="module")
def hygiene_provider() -> Iterator[Provider]:
    yield from serve_provider(HYGIENE_APP_KEY)


class Recorder:
    """Runs sign-ins against one gate and keeps everything an observer could see."""

    def __init__(self, provider: Provider) -> None:
        self.provider = provider
        self.rig = make_rig(provider=provider, app_key=HYGIENE_APP_KEY)
        self.seen: list[str] = []  # response headers and bodies, minus Set-Cookie
        self.states: list[str] = []
        self.cookie_values: list[str] = []
        self.codes_tried: list[str] = []

    def observe(self, response, *, login: bool = False) -> None:
        """Keep a gate response; for the login, whose Location and body are the redirect to QQ
        (which must carry the state), keep only the other headers."""
        for name, value in response.headerlist:
            if name.lower() == "set-cookie":
                cookie = value.split(";", 1)[0].split("=", 1)[1]
                if cookie:
                    self.cookie_values.append(cookie)
            elif not (login and name.lower() == "location"):
                self.seen.append(f"{name}: {value}")
        if not login:
            self.seen.append(response.text)

    def sign_in(self, fault: tuple[str, str] | None = None, state_ok: bool = True) -> None:
        login = call(self.rig.gate, blank("/_qqgate/login", "next=%2Fafter"))
        self.observe(login, login=True)
        authorize = login.headers["Location"]
        assert HYGIENE_APP_KEY not in authorize and quote_plus(HYGIENE_APP_KEY) not in authorize
        _, state, _ = self.rig.start_login()  # a second pending login, as another tab would
        self.states.append(state)
        code = self.rig.code_for(authorize)
        self.codes_tried.append(code)
        login_state = authorize.split("state=", 1)[1].split("&", 1)[0]
        self.states.append(login_state)
        pending = set_cookies(login)["qqgate_state"].split(";", 1)[0].split("=", 1)[1]
        used_state = login_state if state_ok else state
        query = f"code={code}&state={used_state}"
        if fault:
            self.provider.fake.set_fault(*fault)
        try:
            response = call(
                self.rig.gate, blank("/_qqgate/callback", query, cookie=f"qqgate_state={pending}")
            )
        finally:
            if fault:
                self.provider.fake.set_fault(fault[0], None)
                self.provider.fake.release()
        self.observe(response)
        session = set_cookies(response).get("qqgate", "").split(";", 1)[0].split("=", 1)[-1]
        if session:
            # The gate's own routes (a page of the app would be the app's business).
            for path in ("/_qqgate/userinfo", "/_qqgate/auth", "/_qqgate/logout", "/_qqgate/x"):
                self.observe(call(self.rig.gate, blank(path, cookie=f"qqgate={session}")))

    def secrets(self) -> dict[str, str]:
        fake = self.provider.fake
        found = {"app key": HYGIENE_APP_KEY}
        found["app key (form-encoded)"] = quote_plus(HYGIENE_APP_KEY)
        found["app key (url-encoded)"] = quote(HYGIENE_APP_KEY, safe="")
        found |= {f"code {c}": c for c in [*fake._codes, *self.codes_tried]}
        found |= {f"access token {t}": t for t in fake._tokens}
        found |= {f"state {s}": s for s in self.states}
        found |= {f"cookie {v[:12]}...": v for v in self.cookie_values}
        return found


FAILURES = [
    ("token", "error:100019"),
    ("token", "error:100020"),
    ("token", "http500"),
    ("token", "hang"),
    ("me", "error:100016"),
    ("me", "other_client"),
    ("me", "garbage"),
    ("user_info", "ret"),
    ("user_info", "hang"),
]


@pytest.fixture
def debug_log(caplog) -> Iterator[pytest.LogCaptureFixture]:
    """The ``qqgate`` and ``urllib3`` loggers at DEBUG, captured even if something (such as
    ``qqgate.logs.configure``) has stopped them propagating to the root logger."""
    loggers = [logging.getLogger(name) for name in ("qqgate", "urllib3")]
    for logger in loggers:
        caplog.set_level(logging.DEBUG, logger=logger.name)
        if not logger.propagate:
            logger.addHandler(caplog.handler)
    try:
        yield caplog
    finally:
        for logger in loggers:
            logger.removeHandler(caplog.handler)


def test_nothing_secret_is_logged_or_served(hygiene_provider: Provider, debug_log) -> None:
    recorder = Recorder(hygiene_provider)
    recorder.sign_in()
    for fault in FAILURES:
        recorder.sign_in(fault)
    recorder.sign_in(state_ok=False)
    recorder.sign_in()

    fake = hygiene_provider.fake
    assert len(fake._tokens) >= 2, "the successful sign-ins should have minted access tokens"
    messages = [record.getMessage() for record in debug_log.records]
    # Both loggers must really have been heard, or the test would prove nothing.
    assert any("GET /oauth2.0/token" in m for m in messages), "no urllib3 DEBUG line captured"
    assert any(m.startswith("sign-in ok") for m in messages), "no qqgate line captured"
    haystacks = {"log": debug_log.text, "responses": "\n".join(recorder.seen)}
    leaks = [
        f"{what} appears in the {where}"
        for what, secret in recorder.secrets().items()
        for where, text in haystacks.items()
        if secret and secret in text
    ]
    assert not leaks, "\n".join(leaks)
