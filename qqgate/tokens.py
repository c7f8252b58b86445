"""Checking an itsdangerous token without itsdangerous's ``loads()``: the same keys, the same HMAC
and the same payload, in a fraction of the time.

itsdangerous stays the token format and signs every token (``dumps``). To verify one, its
``loads()`` builds a signer, derives every key, runs ``hmac.new`` (OpenSSL 3 sets up a new HMAC
context on every call: most of the HMAC's time) and decodes the payload through several layers:
about 20 times the hash itself. :class:`TokenVerifier` derives each key once, with itsdangerous's
own ``Signer.derive_key``, and keeps HMAC's two padded-key hash states (RFC 2104:
``H(key ^ opad || H(key ^ ipad || message))``), so a check costs two copied hash states and the
hashing itself; the payload is decoded with the same functions itsdangerous calls, minus the layers.

What it accepts is what ``loads()`` accepts, less every token with a second spelling: the signature
is compared, in constant time (``hmac.compare_digest``), as *text* with the one we compute, so the
unused low bits of its last character, padding, or characters base64 decoding skips make a token
fail here that ``loads()`` lets through. Tokens over ``MAX_TOKEN_LENGTH`` characters or not ASCII
fail too. tests/test_tokens.py checks this against itsdangerous on valid, tampered, truncated,
extended and foreign-key tokens.
"""

from __future__ import annotations

import binascii
import hmac
import json
import zlib
from collections.abc import Callable
from json.scanner import make_scanner
from typing import Any

from itsdangerous import BadPayload, BadSignature, URLSafeSerializer
from itsdangerous.signer import HMACAlgorithm

MAX_TOKEN_LENGTH = 4096
_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")
_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")
# json.loads() without its two regular-expression passes for white space: the C scanner alone.
# (typeshed declares make_scanner's argument as its own type; it takes the decoder)
_scan_json: Callable[[str, int], tuple[Any, int]]
_scan_json = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]

Hash = Any  # a hashlib hash object: what ``digest_method()`` returns


class TokenVerifier:
    """Verifies the tokens of one itsdangerous ``URLSafeSerializer`` (its keys, salt, digest)."""

    __slots__ = ("_pads",)

    def __init__(self, serializer: URLSafeSerializer) -> None:
        signer = serializer.make_signer()
        if not isinstance(signer.algorithm, HMACAlgorithm) or signer.sep != b".":
            raise TypeError("TokenVerifier checks HMAC signatures after a '.' only")
        if serializer.fallback_signers:
            raise TypeError("TokenVerifier does not try fallback signers")
        digest = signer.algorithm.digest_method
        # Newest key first, as itsdangerous tries them (which key matched is not a secret).
        keys = [signer.derive_key(key) for key in reversed(signer.secret_keys)]
        self._pads: tuple[tuple[Hash, Hash], ...] = tuple(_pads(digest, key) for key in keys)

    def value(self, token: str) -> bytes | None:
        """The signed part of ``token`` if its signature is, character for character, the one
        itsdangerous makes for it with one of our keys; else None."""
        if len(token) > MAX_TOKEN_LENGTH or not token.isascii():
            return None
        value, sep, signature = token.rpartition(".")
        if not sep:
            return None
        data = value.encode("ascii")
        expected = signature.encode("ascii")
        for inner, outer in self._pads:
            digest = inner.copy()
            digest.update(data)
            mac = outer.copy()
            mac.update(digest.digest())
            if hmac.compare_digest(_base64_encode(mac.digest()), expected):
                return data
        return None

    def loads(self, token: str) -> Any:
        """The payload of ``token``, as ``URLSafeSerializer.loads`` returns it; raises
        ``BadSignature`` or ``BadPayload`` (itsdangerous's) as it would."""
        value = self.value(token)
        if value is None:
            raise BadSignature("Signature does not match")
        return load_payload(value)


def _pads(digest_method: Callable[..., Hash], key: bytes) -> tuple[Hash, Hash]:
    """HMAC's inner and outer hash states for ``key`` (RFC 2104, as ``hmac`` computes them)."""
    inner, outer = digest_method(), digest_method()
    if len(key) > inner.block_size:
        key = digest_method(key).digest()
    key = key.ljust(inner.block_size, b"\0")
    inner.update(bytes(b ^ 0x36 for b in key))
    outer.update(bytes(b ^ 0x5C for b in key))
    return inner, outer


def _base64_encode(data: bytes) -> bytes:
    """itsdangerous's ``base64_encode``: URL-safe base64 without padding."""
    return binascii.b2a_base64(data, newline=False).rstrip(b"=").translate(_TO_URLSAFE)


def load_payload(value: bytes) -> Any:
    """What ``URLSafeSerializer.load_payload`` makes of a signed value: base64, zlib if it starts
    with ".", UTF-8, JSON, through the same functions; raises ``BadPayload`` where it would."""
    compressed = value.startswith(b".")
    if compressed:
        value = value[1:]
    try:
        # urlsafe_b64decode is this translation and a2b_base64 (lenient, as itsdangerous calls it)
        data = binascii.a2b_base64(value.translate(_FROM_URLSAFE) + b"=" * (-len(value) % 4))
        if compressed:
            data = zlib.decompress(data)
        return _json_loads(data.decode("utf-8"))
    except Exception as exc:  # as itsdangerous: whatever the decoders raise is a bad payload
        raise BadPayload("Could not load the payload", original_error=exc) from exc


def _json_loads(text: str) -> Any:
    """``json.loads(text)``: the scanner alone when the text is one JSON value and nothing else
    (as we sign it), else ``json.loads`` itself (white space around it, or an error)."""
    try:
        value, end = _scan_json(text, 0)
    except (StopIteration, ValueError):
        return json.loads(text)
    return value if end == len(text) else json.loads(text)
