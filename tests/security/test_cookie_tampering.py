"""Cookies: a tampered, truncated, foreign, expired, oversized or malformed session cookie means
"not signed in", never an error and never someone else; one bad cookie beside a valid session does
not sign the user out. In-process, and for the oversized and non-UTF-8 cases also through gunicorn.
"""

from __future__ import annotations

import hashlib
import time

import pytest
from itsdangerous import URLSafeSerializer
from itsdangerous.encoding import base64_encode

from qqgate.session import SESSION_SALT, STATE_SALT

from ..conftest import OTHER_SECRET, SECRET, FakeClock
from ..live import LiveGate
from ..rig import OPENID, Rig, blank, make_rig
from .conftest import echo_of
from .support import get_head, raw_http

BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def forged(payload: object, key: str = SECRET, salt: str = SESSION_SALT) -> str:
    """A token signed like the gate signs sessions (only the key holder can make these)."""
    digest = {"digest_method": hashlib.sha256}
    return URLSafeSerializer(key, salt=salt, signer_kwargs=digest).dumps(payload)


def forged_json(text: str, key: str = SECRET) -> str:
    """A session token whose signed payload is the raw JSON ``text``."""
    serializer = URLSafeSerializer(
        key, salt=SESSION_SALT, signer_kwargs={"digest_method": hashlib.sha256}
    )
    return serializer.make_signer(SESSION_SALT).sign(base64_encode(text.encode())).decode()


def flip_bit(token: str, index: int, bit: int) -> str:
    raw = bytearray(token.encode("latin-1"))
    raw[index] ^= 1 << bit
    return raw.decode("latin-1")


def last_char_unused_bits(token: str) -> str:
    """Change the last base64 character only in the bits base64 decoding throws away."""
    last = token[-1]
    return token[:-1] + BASE64URL[BASE64URL.index(last) ^ 1]


NOW = int(FakeClock()())  # the rig's clock
VALID_FIELDS = [OPENID, "n", "", None, NOW, NOW + 3600]

# (build the Cookie header from a valid token) -> must not be signed in.
NOT_SIGNED_IN = [
    pytest.param(lambda t: f"qqgate={flip_bit(t, 0, 0)}", id="bit-flip-first-char"),
    pytest.param(lambda t: f"qqgate={flip_bit(t, len(t) // 3, 2)}", id="bit-flip-payload"),
    pytest.param(lambda t: f"qqgate={flip_bit(t, t.index('.'), 0)}", id="bit-flip-separator"),
    pytest.param(lambda t: f"qqgate={flip_bit(t, len(t) - 5, 1)}", id="bit-flip-signature"),
    pytest.param(lambda t: f"qqgate={flip_bit(t, len(t) - 1, 7)}", id="bit-flip-high-bit"),
    pytest.param(lambda t: f"qqgate={last_char_unused_bits(t)}", id="signature-unused-bits"),
    pytest.param(lambda t: f"qqgate={t[:-1]}", id="truncated-by-one"),
    pytest.param(lambda t: f"qqgate={t[: len(t) // 2]}", id="truncated-by-half"),
    pytest.param(lambda t: f"qqgate={t.split('.')[0]}", id="payload-only"),
    pytest.param(lambda t: f"qqgate=.{t.split('.')[1]}", id="signature-only"),
    pytest.param(lambda t: f"qqgate={t}A", id="appended-char"),
    pytest.param(lambda t: f"qqgate={t}=", id="appended-padding"),
    pytest.param(lambda t: f"qqgate=.{t}", id="compressed-flag-added"),
    pytest.param(lambda t: f"qqgate={t.upper()}", id="upper-cased"),
    pytest.param(lambda t: f"qqgate={forged(VALID_FIELDS, OTHER_SECRET)}", id="wrong-key"),
    pytest.param(lambda t: f"qqgate={forged(VALID_FIELDS, salt=STATE_SALT)}", id="state-salt"),
    pytest.param(lambda t: f"qqgate={forged(VALID_FIELDS[:5])}", id="signed-five-fields"),
    pytest.param(lambda t: f"qqgate={forged([*VALID_FIELDS, 1])}", id="signed-seven-fields"),
    pytest.param(lambda t: f"qqgate={forged({'openid': OPENID})}", id="signed-object"),
    pytest.param(lambda t: f"qqgate={forged(OPENID)}", id="signed-string"),
    pytest.param(lambda t: f"qqgate={forged([None] * 6)}", id="signed-nulls"),
    pytest.param(lambda t: f"qqgate={forged([1, 2, 3, 4, 5, 6])}", id="signed-numbers"),
    pytest.param(
        lambda t: f"qqgate={forged([OPENID, 'n', '', None, True, True])}", id="signed-booleans"
    ),
    pytest.param(
        lambda t: f"qqgate={forged([OPENID, 'n', '', None, '1', '9999999999'])}",
        id="signed-string-times",
    ),
    pytest.param(
        lambda t: f"qqgate={forged([OPENID, 'n', '', 5, NOW, NOW + 60])}",
        id="signed-int-unionid",
    ),
    pytest.param(
        lambda t: f"qqgate={forged([OPENID, 'n', '', None, 0.5, 1e300])}", id="signed-floats"
    ),
    pytest.param(
        lambda t: "qqgate=" + forged_json("[" + "9" * 5000 + "]"), id="signed-5000-digit-int"
    ),
    pytest.param(
        lambda t: "qqgate=" + forged_json("[" * 1500 + "]" * 1500), id="signed-deep-nesting"
    ),
    pytest.param(
        lambda t: "qqgate=" + forged_json('["a","b","c",null,NaN,Infinity]'), id="signed-nan"
    ),
    pytest.param(lambda t: "qqgate=" + forged_json("\xff\xfe"), id="signed-not-json"),
    pytest.param(
        lambda t: f"qqgate={forged([OPENID, 'n', '', None, NOW - 10, NOW - 1])}",
        id="signed-expired",
    ),
    pytest.param(lambda t: f"qqgate={forged([[[[]]]] * 6)}", id="signed-nested-lists"),
    pytest.param(lambda t: "qqgate=", id="empty"),
    pytest.param(lambda t: "qqgate", id="name-only"),
    pytest.param(lambda t: "qqgate=!!!***", id="not-base64"),
    pytest.param(lambda t: "qqgate=" + "A" * 4097 + ".B", id="over-max-token-length"),
    pytest.param(lambda t: "qqgate=" + "x" * 8192, id="8k-value"),
    pytest.param(lambda t: "qqgate=" + "x" * 65536, id="64k-value"),
    pytest.param(
        lambda t: "; ".join(f"c{i}=" + "v" * 60 for i in range(1100)), id="64k-of-other-cookies"
    ),
    pytest.param(lambda t: "qqgate=\xe9\xe8\xff\xfe", id="latin-1-bytes"),
    pytest.param(lambda t: f"qqgate={t}\xff", id="valid-plus-latin-1-byte"),
    pytest.param(lambda t: "qqgate=" + t.replace(".", "\u2024"), id="unicode-one-dot-leader"),
    pytest.param(lambda t: "qqgate=\x00\x01\x02", id="control-bytes"),
    pytest.param(lambda t: '"qqgate=' + t + '"', id="whole-pair-quoted"),
    pytest.param(lambda t: f"QQGATE={t}", id="name-upper-case"),
    pytest.param(lambda t: f"qqgate_state={t}", id="session-in-state-cookie"),
    pytest.param(lambda t: f"xqqgate={t}", id="name-with-prefix"),
]


@pytest.fixture
def rig() -> Rig:
    return make_rig()


def visit(rig: Rig, cookie: str):
    started = time.perf_counter()
    response = rig.call(blank("/admin", cookie=cookie))
    return response, time.perf_counter() - started


@pytest.mark.parametrize("build", NOT_SIGNED_IN)
def test_bad_session_cookie_is_not_signed_in(rig: Rig, build) -> None:
    response, took = visit(rig, build(rig.session_for()))
    assert response.status_int == 302, (response.status, response.text[:200])
    assert rig.app.calls == []
    assert took < 1.0, f"parsing the cookie took {took:.2f} s"


def test_expired_session_is_not_signed_in(rig: Rig) -> None:
    token = rig.session_for()
    rig.clock.advance(7 * 86400)
    assert visit(rig, f"qqgate={token}")[0].status_int == 302


# (build the Cookie header from a valid token) -> the valid session must still count.
STILL_SIGNED_IN = [
    pytest.param(lambda t: f"qqgate={t}", id="alone"),
    pytest.param(lambda t: f'qqgate="{t}"', id="quoted"),
    pytest.param(lambda t: f"  qqgate = {t} ", id="spaces"),
    pytest.param(lambda t: f"junk=\xe9\xff; qqgate={t}", id="latin-1-neighbour"),
    pytest.param(lambda t: f"junk=\x00\x01; qqgate={t}", id="control-bytes-neighbour"),
    pytest.param(lambda t: f'a="unterminated; qqgate={t}', id="unterminated-quote-neighbour"),
    pytest.param(lambda t: f"===; ;; a; qqgate={t}", id="malformed-pairs-around"),
    pytest.param(lambda t: f"qqgate=garbage; qqgate={t}", id="bad-duplicate-first"),
    pytest.param(lambda t: f"qqgate={t}; qqgate=garbage", id="bad-duplicate-after"),
    pytest.param(lambda t: f"qqgate_state=garbage; qqgate={t}", id="bad-state-cookie-beside"),
    pytest.param(lambda t: "x=" + "y" * 8000 + f"; qqgate={t}", id="after-8k-neighbour"),
    pytest.param(lambda t: "x=" + "y" * 65536 + f"; qqgate={t}", id="after-64k-neighbour"),
    pytest.param(
        lambda t: "; ".join(f"c{i}=v" for i in range(3000)) + f"; qqgate={t}",
        id="after-3000-cookies",
    ),
]


@pytest.mark.parametrize("build", STILL_SIGNED_IN)
def test_valid_session_survives_bad_cookies_beside_it(rig: Rig, build) -> None:
    response, took = visit(rig, build(rig.session_for()))
    assert response.status_int == 200, (response.status, response.text[:200])
    (seen,) = rig.app.calls
    assert seen["HTTP_X_QQ_OPENID"] == OPENID
    assert took < 1.0, f"parsing the cookie took {took:.2f} s"


@pytest.mark.parametrize("bad", [1, 3, 4, 10, 1000])
def test_many_duplicates_are_bounded_work_and_never_hide_the_valid_one(rig: Rig, bad: int) -> None:
    """Every value of our name is looked at (the header bounds them): junk in front of the valid
    session never hides it, and the answer is quick."""
    bad_values = [f"qqgate=bad{i}" for i in range(bad)]
    response, took = visit(rig, "; ".join([*bad_values, f"qqgate={rig.session_for()}"]))
    assert response.status_int == 200 and took < 1.0
    assert [call["HTTP_X_QQ_OPENID"] for call in rig.app.calls] == [OPENID]


def test_two_valid_sessions_of_different_users_sign_nobody_in(rig: Rig) -> None:
    """Cookie tossing: a sibling site's signed-in cookie must not choose the identity."""
    first = rig.session_for(openid="A" * 32, nickname="first")
    second = rig.session_for(openid="B" * 32, nickname="second")
    response, _ = visit(rig, f"qqgate={first}; qqgate={second}")
    assert response.status_int == 302 and rig.app.calls == []


# --- through gunicorn ------------------------------------------------------------------------------

TOO_BIG = (302, 400, 431)  # gunicorn may refuse an 8 KB header line itself (400/431)
# (build the Cookie header lines from a valid token, the statuses allowed)
RAW_COOKIES = [
    pytest.param(lambda t: b"Cookie: qqgate=" + b"x" * 8192 + b"\r\n", TOO_BIG, id="8k-cookie"),
    pytest.param(
        lambda t: b"Cookie: " + b"; ".join(b"c%d=v" % i for i in range(1400)) + b"\r\n",
        TOO_BIG,
        id="8k-of-cookies",
    ),
    pytest.param(
        lambda t: b"Cookie: x=" + b"y" * 8000 + b"; qqgate=" + t + b"\r\n",
        (200, *TOO_BIG),
        id="8k-with-valid-session",
    ),
    pytest.param(
        lambda t: b"Cookie: x=" + b"y" * 7600 + b"; qqgate=" + t + b"\r\n",
        (200,),
        id="near-8k-with-valid-session",
    ),
    # gunicorn joins repeated header lines with "," (not "; "), so the session is not found.
    pytest.param(
        lambda t: b"Cookie: a=1\r\n" * 90 + b"Cookie: qqgate=" + t + b"\r\n",
        (200, 302),
        id="many-cookie-headers",
    ),
    pytest.param(
        lambda t: b"Cookie: junk=\xe9\xff\xfe; qqgate=" + t + b"\r\n",
        (200,),
        id="latin-1-bytes-beside-session",
    ),
    pytest.param(
        lambda t: b"Cookie: qqgate=\xe9\xff\xfe\r\n", (302,), id="latin-1-bytes-as-session"
    ),
    pytest.param(lambda t: b"Cookie: qqgate=" + t[:-3] + b"\r\n", (302,), id="truncated-session"),
    pytest.param(
        lambda t: b"Cookie: qqgate=" + t + b"; qqgate=bad\r\n", (200,), id="duplicate-names"
    ),
    pytest.param(lambda t: b"Cookie: qqgate=!!!***\r\n", (302,), id="not-base64"),
]


@pytest.mark.parametrize(("build", "allowed"), RAW_COOKIES)
def test_raw_socket_cookies(strict_gate: LiveGate, process_session: str, build, allowed) -> None:
    token = process_session.encode()
    response = raw_http(strict_gate.port, get_head(b"/headers.json", build(token)))
    assert 0 < response.status < 500, (response.status, response.text[:300])
    assert response.status in allowed, (response.status, response.text[:300])
    if response.status == 200:  # signed in: then only ever as the user of that session
        seen = echo_of(response.body)
        assert seen is not None and seen["identity"]["nickname"] == "小明🐧"
