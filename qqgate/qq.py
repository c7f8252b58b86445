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

``timeout`` bounds a whole sign-in, the three calls together (:class:`~qqgate.deadline.Deadline`),
not each socket read: a provider that drips its answer a byte at a time is cut off at ``timeout``.

The token call carries the app key and the authorization code in its query string, and the other
calls carry the access token. requests puts that URL in its exception messages and urllib3 logs it
at DEBUG, so this module never shows a requests message and redacts urllib3's log records.
"""

from __future__ import annotations

import http.client
import http.cookiejar
import logging
import re
from urllib.parse import urlencode

import requests
import urllib3.exceptions

from . import metrics
from .deadline import Deadline, DeadlineAdapter, current_deadline
from .qqanswers import (
    AVATAR_URL,
    CODE_MESSAGES,
    LONE_SURROGATE,
    OPENID_SHAPE,
    QQError,
    QQProfile,
    QQUnavailable,
    decode,
    error_for,
    parse_body,
    raise_for_error,
    unparseable,
    where,
)

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
    # requests turns a read timeout while streaming the body into a ConnectionError; a socket the
    # deadline shut down looks like a dropped connection.
    deadline = current_deadline()
    timed_out = (
        (deadline is not None and deadline.expired)
        or isinstance(exc, _TIMEOUTS)
        or (bool(exc.args) and isinstance(exc.args[0], urllib3.exceptions.ReadTimeoutError))
    )
    what = "did not answer in time" if timed_out else "could not be reached"
    return QQUnavailable(f"{where(endpoint)} {what}", endpoint=endpoint, timeout=timed_out)


def _read_capped(response: requests.Response, endpoint: str) -> bytes:
    body = bytearray()
    for chunk in response.iter_content(chunk_size=64 * 1024):
        body += chunk
        if len(body) > MAX_BODY:
            raise unparseable(endpoint, "a body larger than 1 MiB")
    return bytes(body)


def _parse_response(status: int, body: bytes, endpoint: str) -> dict[str, object]:
    if 200 <= status < 300:
        return parse_body(body, endpoint)
    # A QQ error body explains a failure status better than the status does.
    try:
        data = decode(body, endpoint)
    except QQError:
        data = {}
    raise_for_error(data, endpoint)
    raise unparseable(endpoint, f"HTTP {status}")


def _avatar(info: dict[str, object]) -> str:
    for key in ("figureurl_qq_2", "figureurl_qq_1"):
        value = info.get(key)
        if isinstance(value, str) and AVATAR_URL.fullmatch(value):
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
        if session is None:  # a session of the caller's keeps its adapters (and per-read timeouts)
            self.session.mount("http://", DeadlineAdapter())
            self.session.mount("https://", DeadlineAdapter())
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
            raise error_for("token", 100005, "")
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
        if not isinstance(openid, str) or not OPENID_SHAPE.fullmatch(openid):
            raise QQError("QQ's me endpoint answered without a usable openid", endpoint="me")
        return openid, self._unionid(data)

    def _unionid(self, data: dict[str, object]) -> str | None:
        unionid = data.get("unionid") if self.want_unionid else None
        if unionid is None or unionid == "":
            return None
        if not isinstance(unionid, str) or not OPENID_SHAPE.fullmatch(unionid):
            raise QQError("QQ's me endpoint answered an unusable unionid", endpoint="me")
        return unionid

    def fetch_user_info(self, access_token: str, openid: str) -> dict[str, object]:
        params = {"access_token": access_token, "oauth_consumer_key": self.app_id, "openid": openid}
        return self._get("user_info", "/user/get_user_info", params)

    def sign_in(self, code: str) -> QQProfile:
        """The profile of the user who granted ``code``: the three calls, within ``timeout``."""
        with Deadline(self.timeout):
            token = self.exchange_code(code)
            openid, unionid = self.fetch_openid(token)
            info = self.fetch_user_info(token, openid)
        nickname = LONE_SURROGATE.sub("\ufffd", str(info.get("nickname") or "")[:MAX_NICKNAME])
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
        deadline = current_deadline()
        timeout = self.timeout if deadline is None else deadline.left()
        if timeout <= 0:
            raise TimeoutError("the sign-in's deadline has passed")
        with (
            metrics.get().qq_seconds.labels(endpoint).time(),
            self.session.get(
                self.base_url + path,
                params=params,
                timeout=timeout,
                allow_redirects=False,
                stream=True,
            ) as response,
        ):
            answer = response.status_code, _read_capped(response, endpoint)
        if deadline is not None and deadline.expired:
            raise TimeoutError("the answer was cut off at the deadline")
        return answer
