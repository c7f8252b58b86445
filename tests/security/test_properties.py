"""Property-based tests of the pure parts, with strategies biased towards the characters attacks
are made of: ``safe_next``, ``qq.parse_body``, the session codec and ``PublicPaths``."""

from __future__ import annotations

import json
import string
from urllib.parse import urlencode

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from qqgate.cookies import cookie_values, first_cookie_value
from qqgate.paths import PublicPaths
from qqgate.qq import QQError, parse_body
from qqgate.redirects import safe_next
from qqgate.session import Identity, SessionCodec, StateCodec

from ..conftest import SECRET, FakeClock
from .support import offsite

FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# --- safe_next ---------------------------------------------------------------------------------------

URL_PIECES = [
    "/", "//", "\\", "\\\\", ".", "..", ":", "@", "?", "#", ";", "%", "%2f", "%5c", "%09", "%00",
    "%2e", "\t", "\r", "\n", " ", "\x00", "\x0b", "\x7f", "\u00a0", "\u3000", "／", "＼", "\u2215",
    "。", "http:", "https:", "javascript:", "data:", "evil.example", "app.example.com", "x",
]  # fmt: skip
url_like = st.lists(st.sampled_from(URL_PIECES), max_size=12).map("".join)


@FAST
@given(st.one_of(url_like, st.text(max_size=80)))
def test_safe_next_accepts_only_same_site_paths(value: str) -> None:
    result = safe_next(value)
    assert offsite(result) is None, offsite(result)
    assert result.startswith("/") and not result.startswith("//")
    assert result.isascii() and result.isprintable() and "\\" not in result and " " not in result
    assert safe_next(result) == result


@FAST
@given(url_like)
def test_safe_next_with_a_prefix_path_stays_on_site(value: str) -> None:
    for candidate in ("/" + value, "/a/" + value):
        assert offsite(safe_next(candidate)) is None


# --- parse_body ----------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=12,
)
qq_keys = st.sampled_from(
    ["error", "error_description", "ret", "msg", "code", "access_token", "openid", "client_id", "x"]
)
qq_objects = st.dictionaries(qq_keys | st.text(max_size=8), json_values, max_size=5)


def shapes(obj: dict) -> list[str]:
    text = json.dumps(obj, ensure_ascii=False)
    flat = {str(k): str(v) for k, v in obj.items()}
    return [text, f"callback( {text} );", f"\ufeff cb({text})\n", urlencode(flat), text[:-1]]


def must_parse_or_raise_qqerror(body: bytes | str) -> None:
    try:
        result = parse_body(body, "token")
    except QQError:
        return
    assert isinstance(result, dict)


@FAST
@given(st.binary(max_size=200))
def test_parse_body_bytes_raise_only_qqerror(body: bytes) -> None:
    must_parse_or_raise_qqerror(body)


@FAST
@given(st.text(max_size=200))
def test_parse_body_text_raises_only_qqerror(body: str) -> None:
    must_parse_or_raise_qqerror(body)


@FAST
@given(qq_objects)
def test_parse_body_shapes_raise_only_qqerror(obj: dict) -> None:
    for body in shapes(obj):
        must_parse_or_raise_qqerror(body)
        must_parse_or_raise_qqerror(body.encode("utf-8"))


@FAST
@given(st.integers(min_value=1, max_value=10**9), st.text(max_size=30))
def test_parse_body_error_payloads_always_raise(code: int, text: str) -> None:
    for body in (
        json.dumps({"error": code, "error_description": text}),
        "callback( " + json.dumps({"error": code}) + " );",
        json.dumps({"ret": code, "msg": text}),
    ):
        try:
            parse_body(body, "me")
        except QQError as exc:
            assert exc.code == code
        else:
            raise AssertionError(f"{body!r} parsed as a success")


# --- the session codec ---------------------------------------------------------------------------------

CLOCK = FakeClock()
CODEC = SessionCodec([SECRET], 3600, CLOCK)
openids = st.from_regex(r"[0-9A-F]{32}", fullmatch=True)
unicode_text = st.text(st.characters(exclude_categories=["Cs"]), max_size=64)
identities = st.builds(
    Identity,
    openid=openids,
    nickname=unicode_text,
    avatar_url=st.text(max_size=40),
    unionid=st.none() | openids,
    signed_in_at=st.just(int(CLOCK())),
)


@FAST
@given(identities)
def test_session_round_trips_any_unicode(identity: Identity) -> None:
    assert CODEC.loads(CODEC.dumps(identity)) == identity


def mutate(token: str, kind: str, index: int, bit: int, char: str) -> str:
    index %= len(token) + (1 if kind == "insert" else 0)
    if kind == "flip":
        raw = bytearray(token.encode("latin-1"))
        raw[index] ^= 1 << bit
        return raw.decode("latin-1")
    if kind == "delete":
        return token[:index] + token[index + 1 :]
    return token[:index] + char + token[index:]


token_chars = st.sampled_from(string.ascii_letters + string.digits + '-_.=+/ ;"\x00\xff')


@FAST
@given(
    identities,
    st.sampled_from(["flip", "delete", "insert"]),
    st.integers(min_value=0, max_value=10_000),
    st.integers(min_value=0, max_value=7),
    token_chars,
)
def test_every_mutation_of_a_session_is_rejected(identity, kind, index, bit, char) -> None:
    token = CODEC.dumps(identity)
    mutated = mutate(token, kind, index, bit, char)
    assume(mutated != token)
    assert CODEC.loads(mutated) is None, (kind, index, bit, char)


@FAST
@given(
    st.sampled_from(["flip", "delete", "insert"]),
    st.integers(0, 10_000),
    st.integers(0, 7),
    token_chars,
)
def test_every_mutation_of_a_state_cookie_is_rejected(kind, index, bit, char) -> None:
    codec = StateCodec([SECRET], CLOCK)
    token = codec.dumps([codec.new("S" * 43, "/after")])
    mutated = mutate(token, kind, index, bit, char)
    assume(mutated != token)
    assert codec.loads(mutated) == []


# --- PublicPaths -----------------------------------------------------------------------------------------

PUBLIC = PublicPaths(["/static/", "/healthz", "/docs/api/"])
segments = st.text(
    st.sampled_from(string.ascii_letters + string.digits + "-_.~"), min_size=1, max_size=8
)
public_bases = st.sampled_from(["/static", "/healthz", "/docs/api", "/STATIC", "/static/x"])
NOT_NORMAL = [
    "/../",
    "/./",
    "//",
    "%",
    "\\",
    ";",
    "#",
    "?",
    "\x00",
    "\t",
    "\n",
    "\x7f",
    "/..",
    "/.",
]


@FAST
@given(
    public_bases,
    st.lists(segments, max_size=4),
    st.sampled_from(NOT_NORMAL),
    st.lists(segments, max_size=3),
)
def test_nothing_not_normal_is_public(base, before, trick, after) -> None:
    path = "/".join([base, *before]) + trick + "/".join(after)
    if trick in ("/..", "/."):
        path = "/".join([base, *before]) + trick  # a dot segment at the very end
    assert path not in PUBLIC, path


@FAST
@given(public_bases, st.lists(segments, max_size=4))
def test_public_paths_are_under_a_prefix_on_a_segment_boundary(base, rest) -> None:
    path = "/".join([base, *rest])
    if path in PUBLIC:
        assert path in ("/static", "/healthz", "/docs/api") or path.startswith(
            ("/static/", "/healthz/", "/docs/api/")
        )
        assert not any(seg in (".", "..", "") for seg in path.split("/")[1:]), path


# --- reading our cookie out of a Cookie header ---------------------------------------------------------

cookie_pieces = st.sampled_from(
    ["qqgate", "qqgate_state", "xqqgate", "qqgatex", "=", ";", " ", "\t", '"', ",", "v", "\xff"]
)
cookie_headers = st.lists(cookie_pieces, max_size=16).map("".join)
junk_pairs = st.lists(
    st.sampled_from(
        ["a=b", "qqgate_state=x", "xqqgate=y", "===", "a", '"q"', "=qqgate", "\xe9=\xff"]
    ),
    max_size=6,
)


@FAST
@given(cookie_headers)
def test_fast_cookie_lookup_agrees_with_the_full_scan(header: str) -> None:
    assert first_cookie_value(header, "qqgate") == (cookie_values(header, "qqgate") or [None])[0]


@FAST
@given(junk_pairs, junk_pairs)
def test_junk_cookies_never_hide_our_cookie(before: list[str], after: list[str]) -> None:
    header = "; ".join([*before, "qqgate=TOKEN", *after])
    assert first_cookie_value(header, "qqgate") == "TOKEN"
