"""``TokenVerifier`` against itsdangerous itself: on valid, tampered, truncated, extended, foreign-key
and other-salt tokens it accepts exactly what ``URLSafeSerializer.loads()`` accepts, less the tokens
with a second spelling, and returns the same payload."""

from __future__ import annotations

import hashlib
import secrets

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from itsdangerous import BadData, URLSafeSerializer
from itsdangerous.encoding import base64_decode, base64_encode

from qqgate.session import SESSION_SALT, STATE_SALT, Identity, SessionCodec
from qqgate.tokens import MAX_TOKEN_LENGTH, TokenVerifier

from .conftest import OTHER_SECRET, SECRET, FakeClock

FOREIGN = "f" * 40
KEYS = [SECRET, OTHER_SECRET]  # the signing key first, as secret_key lists them
BASE64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
REFUSED = object()


def serializer(keys: list[str], salt: str = SESSION_SALT) -> URLSafeSerializer:
    """As qqgate.session builds it: itsdangerous signs with the last key of its list."""
    return URLSafeSerializer(
        list(reversed(keys)), salt=salt, signer_kwargs={"digest_method": hashlib.sha256}
    )


OURS = serializer(KEYS)
VERIFIER = TokenVerifier(OURS)
SIGNERS = {
    "signing-key": OURS,
    "older-key": serializer([OTHER_SECRET]),
    "foreign-key": serializer([FOREIGN]),
    "state-salt": serializer(KEYS, STATE_SALT),
}


def reference(token: str) -> object:
    """What the gate must accept: what itsdangerous accepts, if the token has one spelling."""
    try:
        payload = OURS.loads(token)
    except BadData:
        return REFUSED
    if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
        return REFUSED
    signature = token.rpartition(".")[2].encode()
    if base64_encode(base64_decode(signature)) != signature:
        return REFUSED  # the unused bits of its last character, or characters b64decode skips
    return payload


def fast(token: str) -> object:
    try:
        return VERIFIER.loads(token)
    except BadData:
        return REFUSED


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=8,
)
SESSION_PAYLOADS = st.tuples(
    st.text(max_size=32),
    st.text(max_size=20),
    st.text(max_size=80),
    st.none() | st.text(max_size=32),
    st.integers(min_value=0, max_value=2**34),
    st.integers(min_value=0, max_value=2**34),
).map(list)
# Long repetitive payloads make itsdangerous compress (a "." before the payload).
PAYLOADS = JSON | SESSION_PAYLOADS | st.text(alphabet="ab", min_size=50, max_size=400)
TOKENS = st.builds(
    lambda ser, payload: ser.dumps(payload), st.sampled_from(list(SIGNERS.values())), PAYLOADS
)
CHARS = st.sampled_from([*BASE64URL, ".", "=", "+", "/", " ", "!", "\x00", "é", "\xff", "🐧"])


@st.composite
def mutated(draw: st.DrawFn) -> str:
    token = draw(TOKENS)
    kind = draw(st.sampled_from(["none", "flip", "substitute", "truncate", "extend", "insert"]))
    at = draw(st.integers(min_value=0, max_value=len(token)))
    if kind == "flip" and at < len(token):
        flipped = ord(token[at]) ^ draw(st.integers(min_value=1, max_value=255))
        return token[:at] + chr(flipped) + token[at + 1 :]
    if kind == "substitute" and at < len(token):
        return token[:at] + draw(CHARS) + token[at + 1 :]
    if kind == "truncate":
        return token[:at]
    if kind == "extend":
        return token + draw(st.text(CHARS, min_size=1, max_size=3))
    if kind == "insert":
        return token[:at] + draw(CHARS) + token[at:]
    return token


@given(mutated())
@settings(max_examples=1500)
def test_accepts_what_itsdangerous_accepts_with_the_same_payload(token: str) -> None:
    assert fast(token) == reference(token)


@given(st.sampled_from(list(SIGNERS)), PAYLOADS)
def test_tokens_of_our_keys_verify_with_the_same_payload_and_others_do_not(name, payload) -> None:
    token = SIGNERS[name].dumps(payload)
    if name in ("signing-key", "older-key") and len(token) <= MAX_TOKEN_LENGTH:
        assert fast(token) == OURS.loads(token) == payload
    else:
        assert fast(token) is REFUSED


@given(st.text(max_size=60))
def test_arbitrary_text_is_refused_as_itsdangerous_refuses_it(text: str) -> None:
    assert fast(text) == reference(text)


@pytest.mark.parametrize("name", ["signing-key", "older-key"])
def test_each_of_our_keys_verifies_and_foreign_keys_and_salts_do_not(name: str) -> None:
    token = SIGNERS[name].dumps(["x", 1])
    assert VERIFIER.loads(token) == ["x", 1] == OURS.loads(token)
    for other in ("foreign-key", "state-salt"):
        with pytest.raises(BadData):
            VERIFIER.loads(SIGNERS[other].dumps(["x", 1]))


def test_second_spellings_itsdangerous_accepts_are_refused() -> None:
    token = OURS.dumps(["x", 1])
    last = BASE64URL.index(token[-1])
    respelled = [
        token[:-1] + BASE64URL[last ^ 1],  # the unused low bits of the last character
        token + "=",  # padding
        token + "é",  # a character base64 decoding skips
        token[:-2] + "!!!!" + token[-2:],  # four of them: the padding it adds still fits
    ]
    for spelling in respelled:
        assert OURS.loads(spelling) == ["x", 1], spelling  # itsdangerous lets them through
        assert fast(spelling) is REFUSED, spelling


def test_a_token_over_the_length_limit_is_refused() -> None:
    token = OURS.dumps(secrets.token_hex(MAX_TOKEN_LENGTH))  # too random to compress much
    assert len(token) > MAX_TOKEN_LENGTH and OURS.loads(token)
    assert fast(token) is REFUSED


def test_only_hmac_serializers_without_fallbacks() -> None:
    with pytest.raises(TypeError):
        TokenVerifier(URLSafeSerializer(SECRET, fallback_signers=[{"digest_method": "sha1"}]))
    # itsdangerous's defaults (SHA-1): the digest and key derivation are the serializer's own
    assert TokenVerifier(URLSafeSerializer(SECRET)).loads(URLSafeSerializer(SECRET).dumps(1)) == 1


# --- the session codec on top of it: expiry inside the signed payload ------------------------------


@given(
    st.integers(min_value=-(10**6), max_value=10**6),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=1, max_value=10**6),
    st.integers(min_value=0, max_value=2 * 10**6),
)
def test_a_session_verifies_until_its_signed_expiry_or_max_age(
    signed_offset: int, lifetime: int, max_age: int, later: int
) -> None:
    clock = FakeClock()
    signed_in_at = int(clock()) + signed_offset
    token = OURS.dumps(["A" * 32, "n", "https://a/", None, signed_in_at, signed_in_at + lifetime])
    clock.advance(later)
    expires = min(signed_in_at + lifetime, signed_in_at + max_age)
    expected = None
    if expires > clock():
        expected = Identity("A" * 32, "n", "https://a/", None, signed_in_at)
    codec = SessionCodec(KEYS, max_age, clock)
    assert codec.loads(token) == expected
    assert codec.loads(token) == expected  # and the same again, from the cache or not
