"""What QQ Connect answers, and what it means: its error codes, the errors the client raises, the
profile a sign-in yields, and the parser for every shape QQ answers in (``qqgate.qq`` has the list).
Success is decided from the body alone, never from the status code or Content-Type."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

# JSON may escape half a surrogate pair ("\\ud83d"); such a str cannot be encoded as UTF-8 later.
LONE_SURROGATE = re.compile("[\ud800-\udfff]")

CODE_MESSAGES: dict[int, str] = {
    1002: "the user is not signed in",
    21006: "the callback address is invalid",
    100000: "response_type is missing or invalid",
    100001: "client_id is missing",
    100002: "client_secret is missing",
    100005: "the authorization code is missing",
    100008: "the app ID does not exist",
    100009: "the app key is invalid",
    100010: "redirect_uri is invalid",
    100013: "the access token is invalid",
    100014: "the access token has expired",
    100015: "the access token has been revoked",
    100016: "the access token check failed",
    100019: "the authorization code could not be exchanged for a token",
    100020: "the authorization code was already used",
    100011: "the app is not online (not approved)",
    100030: "the user did not authorize this API (permission withdrawn)",
    100031: "the app has no permission for this API",
    100048: "unionid is not enabled for this app",
    100049: "unionid is not enabled for this app",
    100062: "the app is rate-limited",
    100067: "the authorization code has expired",
    100068: "the authorization code is invalid",
    110405: "QQ is throttling logins",
    110406: "the app is not approved for login",
    110407: "the app is not approved for login",
}

# What each error code asks of whom. "restart": the code is spent or wrong, or the user withdrew
# the app's permission (100030): only a fresh login helps, never a retried token call.
# "not_approved": QQ has not put the app online (only the developer's account can sign in).
# "unionid": the app asks for unionid without QQ's permission. "config": app id, key or callback
# do not match what is registered at QQ Connect. Anything else: QQ refused, try again later.
RESTART, NOT_APPROVED, UNIONID, CONFIG = "restart", "not_approved", "unionid", "config"
REMEDIES: dict[int, str] = {
    **dict.fromkeys((100005, 100019, 100020, 100030, 100067, 100068), RESTART),
    **dict.fromkeys((100011, 100031, 110406, 110407), NOT_APPROVED),
    **dict.fromkeys((100048, 100049), UNIONID),
    **dict.fromkeys((21006, 100008, 100009, 100010), CONFIG),
}
RESTART_LOGIN_CODES = frozenset(code for code, remedy in REMEDIES.items() if remedy == RESTART)
# What the operator should do, in the log line of a failed sign-in.
FIXES = {
    NOT_APPROVED: "the app is not approved (online) at QQ Connect: until it is, only the "
    "developer's own QQ account can sign in",
    UNIONID: "the app has no unionid permission: apply for it at QQ Connect or set unionid = false",
    CONFIG: "app_id, app_key and redirect_uri must match the app registered at QQ Connect "
    "(the callback exactly)",
}


class QQError(Exception):
    """QQ answered with an error, or with something we cannot use."""

    def __init__(
        self, message: str, *, endpoint: str = "", code: int | None = None, description: str = ""
    ) -> None:
        super().__init__(message)
        self.message = message
        self.endpoint = endpoint
        self.code = code
        # QQ's own text, unescaped: callers must HTML-escape it.
        self.description = description

    @property
    def restart_login(self) -> bool:
        return self.code in RESTART_LOGIN_CODES

    @property
    def remedy(self) -> str | None:
        """Who must do what (``RESTART``, ``NOT_APPROVED``, ``UNIONID``, ``CONFIG``), if known."""
        return REMEDIES.get(self.code) if self.code is not None else None


class QQUnavailable(QQError):
    """QQ could not be reached, or did not answer in time."""

    def __init__(self, message: str, *, endpoint: str = "", timeout: bool = False) -> None:
        super().__init__(message, endpoint=endpoint)
        self.timeout = timeout


@dataclass(frozen=True, slots=True)
class QQProfile:
    openid: str
    nickname: str
    avatar_url: str
    unionid: str | None


# --- parsing --------------------------------------------------------------------------------------

_JSONP = re.compile(r"[A-Za-z_$][\w$.]*\s*\((.*)\)\s*;?", re.ASCII | re.DOTALL)
_FORM_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_NUMBER = re.compile(r"-?[0-9]{1,12}", re.ASCII)
OPENID_SHAPE = re.compile(r"[0-9A-Za-z_-]{1,64}", re.ASCII)
AVATAR_URL = re.compile(r"https?://[\x21-\x7e]{1,2040}", re.ASCII)


# QQ's avatar hosts (thirdqq.qlogo.cn, q.qlogo.cn, qzapp.qlogo.cn, ...) serve the same images
# over https; QQ hands them out as http, which an https site shows as mixed content.
_QQ_AVATAR_HTTP = re.compile(r"http://(?:[a-z0-9-]+\.)*qlogo\.cn(?=[/?#]|$)", re.ASCII | re.I)


def https_avatar(url: str) -> str:
    """``url`` with https for QQ's own avatar hosts; any other URL unchanged."""
    return "https" + url[4:] if _QQ_AVATAR_HTTP.match(url) else url


def where(endpoint: str) -> str:
    return f"QQ's {endpoint} endpoint" if endpoint else "QQ"


def unparseable(endpoint: str, what: str) -> QQError:
    return QQError(f"{where(endpoint)} answered {what}", endpoint=endpoint)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _json_object(text: str, endpoint: str) -> dict[str, object]:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise unparseable(endpoint, "invalid JSON") from None
    if not isinstance(value, dict):
        raise unparseable(endpoint, "JSON that is not an object")
    return value


def _form(text: str, endpoint: str) -> dict[str, object]:
    try:
        pairs = parse_qsl(text, strict_parsing=True, errors="strict", max_num_fields=100)
    except ValueError:
        raise unparseable(endpoint, "a body that is neither JSON nor url-encoded") from None
    keys = [key for key, _ in pairs]
    if not all(_FORM_KEY.fullmatch(key) for key in keys) or len(set(keys)) != len(keys):
        raise unparseable(endpoint, "a body that is neither JSON nor url-encoded")
    return {key: value for key, value in pairs}


def decode(body: bytes | str, endpoint: str) -> dict[str, object]:
    """Turn any QQ body shape into a dict, without looking at what it says."""
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise unparseable(endpoint, "a body that is not UTF-8") from None
    text = body.lstrip("\ufeff").strip()
    if not text:
        raise unparseable(endpoint, "an empty body")
    if text[0] in "{[":
        return _json_object(text, endpoint)
    jsonp = _JSONP.fullmatch(text)
    if jsonp:
        return _json_object(jsonp.group(1), endpoint)
    return _form(text, endpoint)


def _as_code(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        return int(value)
    return None


def _text(value: object) -> str:
    return "" if value is None else str(value)


def error_for(endpoint: str, code: int | None, description: str) -> QQError:
    if code is None:
        message = f"{where(endpoint)} returned an error"
    else:
        message = f"{where(endpoint)} returned error {code}: "
        message += CODE_MESSAGES.get(code, "unknown error")
    return QQError(message, endpoint=endpoint, code=code, description=description)


def raise_for_error(data: dict[str, object], endpoint: str) -> None:
    if "error" in data:
        error = data["error"]
        code = _as_code(error)
        # OAuth 2.0's own errors are strings ("invalid_request"): keep them as the description.
        text = data.get("error_description") or (error if code is None else None)
        raise error_for(endpoint, code, _text(text))
    if "ret" in data and _as_code(data["ret"]) != 0:
        raise error_for(endpoint, _as_code(data["ret"]), _text(data.get("msg")))
    if "code" in data and "msg" in data and _as_code(data["code"]) != 0:
        raise error_for(endpoint, _as_code(data["code"]), _text(data.get("msg")))


def parse_body(body: bytes | str, endpoint: str = "") -> dict[str, object]:
    """Parse any QQ body shape; raise QQError for error payloads and for anything unparseable."""
    data = decode(body, endpoint)
    raise_for_error(data, endpoint)
    return data
