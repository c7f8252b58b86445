"""A client for QQ Connect (QQ互联), the "Sign in with QQ" OAuth 2.0 provider.

QQ is plain OAuth 2.0 authorization code, not OpenID Connect: there is no discovery document,
no id_token and no e-mail. A sign-in is three server-side calls to graph.qq.com::

    /oauth2.0/token          code         -> access_token
    /oauth2.0/me             access_token -> openid (+ unionid), and the client_id it was minted for
    /user/get_user_info      access_token -> nickname, avatars

QQ answers each of these in several shapes, and usually with HTTP 200 even when it fails:

- url-encoded ``access_token=...&expires_in=...`` (the token default), or ``code=N&msg=...``;
- JSON ``{...}`` (with ``fmt=json``), served as ``text/html`` by get_user_info;
- JSONP ``callback( {...} );`` with varying whitespace and an optional ``;``;
- errors as ``{"error": N, "error_description": ...}`` or ``{"ret": N, "msg": ...}`` (ret may
  be the string "0", which means success).

So success is decided from the body alone, never from the status code or Content-Type, and
everything unusable becomes a :class:`QQError` carrying QQ's code and text.

The token call carries the app key and the authorization code in its query string, and the other
calls carry the access token. requests puts that URL in its exception messages and urllib3 logs it
at DEBUG, so this module never shows a requests message and redacts urllib3's log records.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import json
import logging
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import requests
import urllib3.exceptions

__all__ = [
    "CODE_MESSAGES",
    "QQClient",
    "QQError",
    "QQProfile",
    "QQUnavailable",
    "parse_body",
]

MAX_BODY = 1024 * 1024
MAX_NICKNAME = 256
# JSON may escape half a surrogate pair ("\\ud83d"); such a str cannot be encoded as UTF-8 later.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

CODE_MESSAGES: dict[int, str] = {
    1002: "the user is not signed in",
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
    100030: "the user did not authorize this API",
    100031: "the app has no permission for this API",
    100048: "unionid is not enabled for this app",
    100049: "unionid is not enabled for this app",
    100062: "the app is rate-limited",
    100067: "the authorization code has expired",
    100068: "the authorization code is invalid",
    110405: "QQ is throttling logins",
}

# Codes that mean the authorization code itself is spent or wrong: retrying the token call cannot
# help, only a fresh login can.
RESTART_LOGIN_CODES = frozenset({100005, 100019, 100020, 100067, 100068})


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
_OPENID = re.compile(r"[0-9A-Za-z_-]{1,64}", re.ASCII)
_AVATAR = re.compile(r"https?://[\x21-\x7e]{1,2040}", re.ASCII)


def _where(endpoint: str) -> str:
    return f"QQ's {endpoint} endpoint" if endpoint else "QQ"


def _unparseable(endpoint: str, what: str) -> QQError:
    return QQError(f"{_where(endpoint)} answered {what}", endpoint=endpoint)


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _json_object(text: str, endpoint: str) -> dict[str, object]:
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, RecursionError):
        raise _unparseable(endpoint, "invalid JSON") from None
    if not isinstance(value, dict):
        raise _unparseable(endpoint, "JSON that is not an object")
    return value


def _form(text: str, endpoint: str) -> dict[str, object]:
    try:
        pairs = parse_qsl(text, strict_parsing=True, errors="strict", max_num_fields=100)
    except ValueError:
        raise _unparseable(endpoint, "a body that is neither JSON nor url-encoded") from None
    keys = [key for key, _ in pairs]
    if not all(_FORM_KEY.fullmatch(key) for key in keys) or len(set(keys)) != len(keys):
        raise _unparseable(endpoint, "a body that is neither JSON nor url-encoded")
    return {key: value for key, value in pairs}


def _decode(body: bytes | str, endpoint: str) -> dict[str, object]:
    """Turn any QQ body shape into a dict, without looking at what it says."""
    if isinstance(body, bytes | bytearray):
        try:
            body = bytes(body).decode("utf-8-sig")
        except UnicodeDecodeError:
            raise _unparseable(endpoint, "a body that is not UTF-8") from None
    text = body.lstrip("\ufeff").strip()
    if not text:
        raise _unparseable(endpoint, "an empty body")
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


def _error(endpoint: str, code: int | None, description: str) -> QQError:
    if code is None:
        message = f"{_where(endpoint)} returned an error"
    else:
        message = f"{_where(endpoint)} returned error {code}: "
        message += CODE_MESSAGES.get(code, "unknown error")
    return QQError(message, endpoint=endpoint, code=code, description=description)


def _raise_for_error(data: dict[str, object], endpoint: str) -> None:
    if "error" in data:
        error = data["error"]
        code = _as_code(error)
        # OAuth 2.0's own errors are strings ("invalid_request"): keep them as the description.
        text = data.get("error_description") or (error if code is None else None)
        raise _error(endpoint, code, _text(text))
    if "ret" in data and _as_code(data["ret"]) != 0:
        raise _error(endpoint, _as_code(data["ret"]), _text(data.get("msg")))
    if "code" in data and "msg" in data and _as_code(data["code"]) != 0:
        raise _error(endpoint, _as_code(data["code"]), _text(data.get("msg")))


def parse_body(body: bytes | str, endpoint: str = "") -> dict[str, object]:
    """Parse any QQ body shape; raise QQError for error payloads and for anything unparseable."""
    data = _decode(body, endpoint)
    _raise_for_error(data, endpoint)
    return data


# --- log redaction --------------------------------------------------------------------------------

_SECRET_PARAM = re.compile(
    r"(?<![^?&;\s\"'(])(client_secret|code|access_token|refresh_token)=[^&\s\"';#)]*"
)
# Every urllib3 logger that writes a request URL.
_URL_LOGGERS = (
    "urllib3.connectionpool",
    "urllib3.connection",
    "urllib3.util.retry",
    "urllib3.poolmanager",
)


class RedactSecrets(logging.Filter):
    """Blank the values of secret query parameters in a log record's message."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the handler's problem, not ours
            return True
        redacted = _SECRET_PARAM.sub(r"\1=[redacted]", message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def _install_redaction() -> None:
    for name in _URL_LOGGERS:
        logger = logging.getLogger(name)
        # Compare by name so that reloading this module does not stack filters.
        if not any(type(f).__name__ == "RedactSecrets" for f in logger.filters):
            logger.addFilter(RedactSecrets())


_install_redaction()


# --- the client -----------------------------------------------------------------------------------


# requests.RequestException is an OSError; the others are what urllib3 and http.client have been
# known to let through requests unwrapped.
_NETWORK_ERRORS = (OSError, urllib3.exceptions.HTTPError, http.client.HTTPException)
_TIMEOUTS = (requests.Timeout, urllib3.exceptions.TimeoutError, TimeoutError)


def _unavailable(exc: Exception, endpoint: str) -> QQUnavailable:
    # requests turns a read timeout while streaming the body into a ConnectionError.
    timed_out = isinstance(exc, _TIMEOUTS) or (
        bool(exc.args) and isinstance(exc.args[0], urllib3.exceptions.ReadTimeoutError)
    )
    what = "did not answer in time" if timed_out else "could not be reached"
    return QQUnavailable(f"{_where(endpoint)} {what}", endpoint=endpoint, timeout=timed_out)


def _read_capped(response: requests.Response, endpoint: str) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(chunk_size=64 * 1024):
        body += chunk
        if len(body) > MAX_BODY:
            raise _unparseable(endpoint, "a body larger than 1 MiB")
    return bytes(body)


def _parse_response(status: int, body: bytes, endpoint: str) -> dict[str, object]:
    if 200 <= status < 300:
        return parse_body(body, endpoint)
    # A QQ error body explains a failure status better than the status does.
    try:
        data = _decode(body, endpoint)
    except QQError:
        data = {}
    _raise_for_error(data, endpoint)
    raise _unparseable(endpoint, f"HTTP {status}")


def _avatar(info: dict[str, object]) -> str:
    for key in ("figureurl_qq_2", "figureurl_qq_1"):
        value = info.get(key)
        if isinstance(value, str) and _AVATAR.fullmatch(value):
            return value
    return ""


class QQClient:
    """Talks to graph.qq.com for one QQ Connect app."""

    def __init__(
        self,
        *,
        app_id: str,
        app_key: str,
        redirect_uri: str,
        base_url: str = "https://graph.qq.com",
        timeout: float = 5.0,
        want_unionid: bool = False,
        session: requests.Session | None = None,
    ) -> None:
        if session is not None and session.verify is False:
            raise ValueError("QQClient refuses a session with TLS verification turned off")
        self.app_id = app_id
        self._app_key = app_key
        self.redirect_uri = redirect_uri
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.want_unionid = want_unionid
        self._owns_session = session is None
        self.session = session if session is not None else requests.Session()
        # QQ sets cookies; carrying them from one user's sign-in to the next would mix users.
        self.session.cookies.clear()
        self.session.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))

    def __repr__(self) -> str:  # keeps the app key out of debug output
        return f"QQClient(app_id={self.app_id!r}, base_url={self.base_url!r})"

    def __enter__(self) -> QQClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def authorize_url(
        self, state: str, *, scope: str = "get_user_info", mobile: bool = False
    ) -> str:
        params = {
            "response_type": "code",
            "client_id": self.app_id,
            "redirect_uri": self.redirect_uri,
            "state": state,
            "scope": scope,
        }
        if mobile:
            params["display"] = "mobile"
        return f"{self.base_url}/oauth2.0/authorize?{urlencode(params)}"

    def exchange_code(self, code: str) -> str:
        if not code:
            raise _error("token", 100005, "")
        params = {
            "grant_type": "authorization_code",
            "client_id": self.app_id,
            "client_secret": self._app_key,
            "code": code,
            "redirect_uri": self.redirect_uri,
            "fmt": "json",
        }
        data = self._get("token", "/oauth2.0/token", params)
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise QQError("QQ's token endpoint answered without an access token", endpoint="token")
        return token

    def fetch_openid(self, access_token: str) -> tuple[str, str | None]:
        params = {"access_token": access_token, "fmt": "json"}
        if self.want_unionid:
            params["unionid"] = "1"
        data = self._get("me", "/oauth2.0/me", params)
        client_id = data.get("client_id")
        if isinstance(client_id, bool) or not isinstance(client_id, str | int):
            client_id = None
        if client_id is None or str(client_id) != self.app_id:
            raise QQError("QQ's access token was issued to another app", endpoint="me")
        openid = data.get("openid")
        if not isinstance(openid, str) or not _OPENID.fullmatch(openid):
            raise QQError("QQ's me endpoint answered without a usable openid", endpoint="me")
        return openid, self._unionid(data)

    def _unionid(self, data: dict[str, object]) -> str | None:
        unionid = data.get("unionid") if self.want_unionid else None
        if unionid is None or unionid == "":
            return None
        if not isinstance(unionid, str) or not _OPENID.fullmatch(unionid):
            raise QQError("QQ's me endpoint answered an unusable unionid", endpoint="me")
        return unionid

    def fetch_user_info(self, access_token: str, openid: str) -> dict[str, object]:
        params = {"access_token": access_token, "oauth_consumer_key": self.app_id, "openid": openid}
        return self._get("user_info", "/user/get_user_info", params)

    def sign_in(self, code: str) -> QQProfile:
        token = self.exchange_code(code)
        openid, unionid = self.fetch_openid(token)
        info = self.fetch_user_info(token, openid)
        nickname = _LONE_SURROGATE.sub("\ufffd", str(info.get("nickname") or "")[:MAX_NICKNAME])
        return QQProfile(
            openid=openid, nickname=nickname, avatar_url=_avatar(info), unionid=unionid
        )

    def close(self) -> None:
        if self._owns_session:
            self.session.close()

    def _get(self, endpoint: str, path: str, params: dict[str, str]) -> dict[str, object]:
        try:
            status, body = self._fetch(endpoint, path, params)
        except _NETWORK_ERRORS as exc:
            error = _unavailable(exc, endpoint)
        else:
            return _parse_response(status, body, endpoint)
        # Raised outside the except block so the secret-bearing requests error is not even the
        # __context__ of ours.
        raise error from None

    def _fetch(self, endpoint: str, path: str, params: dict[str, str]) -> tuple[int, bytes]:
        with self.session.get(
            self.base_url + path,
            params=params,
            timeout=self.timeout,
            allow_redirects=False,
            stream=True,
        ) as response:
            return response.status_code, _read_capped(response, endpoint)
