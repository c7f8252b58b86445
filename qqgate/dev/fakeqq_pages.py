"""The development provider's answers: QQ's API answers in its shapes (JSON, JSONP, text/html),
its faults, and the consent and error pages a browser sees."""

from __future__ import annotations

import html
import json
import re
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from webob import Request, Response

if TYPE_CHECKING:
    from .fakeqq_users import TestUser

ERRORS = {
    100000: "response_type is wrong or lost",
    100001: "client_id is lost",
    100002: "client_secret is lost",
    100004: "grant_type is wrong or lost",
    100005: "code is lost",
    100008: "client id is illegal",
    100009: "client secret is illegal",
    100010: "redirect uri is illegal",
    100014: "access token expired",
    100016: "access token check failed",
    100019: "code to access token error",
    100020: "code is reused error",
    100048: "companyid not set",
    100067: "code is expired",
}


# -- responses --------------------------------------------------------------------------------


def _body_response(body: str, status: int = 200, content_type: str = "text/html") -> Response:
    # QQ labels its API answers text/html whatever they contain; clients must read the body.
    return Response(body=body.encode(), status=status, content_type=content_type, charset="utf-8")


def _text(status: int, message: str) -> Response:
    return _body_response(message + "\n", status, "text/plain")


def _json_response(data: Mapping[str, Any], content_type: str = "text/html") -> Response:
    return _body_response(json.dumps(data, ensure_ascii=False), content_type=content_type)


def _qq_answer(req: Request, data: Mapping[str, Any]) -> Response:
    """JSON with ``fmt=json``, otherwise QQ's JSONP wrapping with its odd spacing."""
    body = json.dumps(data, ensure_ascii=False)
    return _body_response(body if req.params.get("fmt") == "json" else f"callback( {body} );\n")


def _qq_error(req: Request, code: int) -> Response:
    return _qq_answer(req, {"error": code, "error_description": ERRORS.get(code, "fault injected")})


def drip(response: Response, seconds: float, released: threading.Event) -> Response:
    """``response`` with its body sent one byte every ``seconds`` (a slow or hostile upstream that
    keeps every read short); the rest goes at once when ``released`` is set."""
    body = response.body

    def pieces() -> Iterator[bytes]:
        for index in range(len(body)):
            if released.wait(seconds):
                yield body[index:]
                return
            yield body[index : index + 1]

    response.app_iter = pieces()
    response.content_length = len(body)
    return response


def _fault_response(endpoint: str, fault: str, req: Request) -> Response:
    if fault == "http500":
        return _html(_error_body(None, "500 Internal Server Error"), "500", status=500)
    if fault == "html":
        return _html(_error_body(None, "系统繁忙，请稍后再试 / System busy"), "QQ互联")
    if fault == "empty":
        return _body_response("")
    if fault == "garbage":
        return _body_response("callback( {not json ); ")
    if fault == "ret":
        return _json_response({"ret": 1002, "msg": "请先登录"})
    code = int(fault.removeprefix("error:"))
    if endpoint == "user_info":
        return _json_response({"ret": code, "msg": "fault injected"})
    return _qq_error(req, code)


def _avatar(path: str) -> Response:
    match = re.fullmatch(r"/avatar/([0-9A-F]{6,64})/(\d{1,4})", path)
    if not match or not 1 <= int(match[2]) <= 1024:
        return _text(404, "Not Found")
    colour, size = match[1][:6], match[2]
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{size}" height="{size}" '
        f'viewBox="0 0 10 10"><rect width="10" height="10" fill="#{colour}"/>'
        '<circle cx="5" cy="4" r="2" fill="#fff"/><path d="M1.5 10a3.5 3.5 0 0 1 7 0z" '
        'fill="#fff"/></svg>'
    )
    resp = _body_response(svg, content_type="image/svg+xml")
    resp.cache_control.max_age = 86400
    return resp


# -- HTML -------------------------------------------------------------------------------------

_e = html.escape  # quote=True by default: safe in text and in double-quoted attributes

_CSS = (
    "body{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;"
    "color:#222}h1{font-size:1.3rem}form{margin:.5rem 0}button{width:100%;padding:.8rem;"
    "font-size:1rem;border-radius:.4rem;border:1px solid #12b7f5;background:#12b7f5;color:#fff}"
    "button#cancel{background:#fff;color:#555;border-color:#ccc}code{word-break:break-all}"
    ".note{color:#777;font-size:.85rem}"
)


def _html(body: str, title: str, status: int = 200) -> Response:
    page = (
        '<!DOCTYPE html>\n<html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_CSS}</style></head>\n<body>\n{body}\n</body></html>\n"
    )
    resp = _body_response(page, status)
    resp.headers["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
    resp.headers["X-Frame-Options"] = "DENY"  # QQ's login page refuses to be framed too
    resp.cache_control.no_store = True
    return resp


def _error_body(code: int | None, message: str = "", *, hint: str = "") -> str:
    if code is None:
        return f"<h1>{_e(message)}</h1>"
    note = f'\n<p class="note" id="hint">development provider: {_e(hint)}</p>' if hint else ""
    return (
        "<h1>很抱歉，出现错误 / Sorry, something went wrong</h1>\n"
        f'<p>error: <code id="error-code">{code}</code></p>\n'
        f"<p>error_description: {_e(ERRORS[code])}({code})</p>{note}"
    )


def _hidden_fields(params: Mapping[str, str]) -> str:
    names = ("client_id", "redirect_uri", "state", "scope")
    return "".join(
        f'<input type="hidden" name="{n}" value="{_e(params.get(n, ""))}">' for n in names
    )


def _consent_body(params: Mapping[str, str], users: Iterable[TestUser]) -> str:
    hidden = _hidden_fields(params)
    # The user travels only as the pressed button's name=value: approving takes a click.
    forms = [
        f'<form method="post" action="/oauth2.0/authorize" id="form-{_e(u.key)}">{hidden}'
        f'<button type="submit" name="user" value="{_e(u.key)}" id="approve-{_e(u.key)}">'
        f"以 {_e(u.nickname)} 授权登录 / Approve as {_e(u.nickname)}</button></form>"
        for u in users
    ]
    forms.append(
        f'<form method="post" action="/oauth2.0/authorize" id="form-cancel">{hidden}'
        '<button type="submit" name="cancel" value="1" id="cancel">取消 / Cancel</button></form>'
    )
    return (
        "<h1>QQ登录 (development provider)</h1>\n"
        f'<p>应用 <code id="app-id">{_e(params["client_id"])}</code> 请求使用你的 QQ 帐号登录'
        f" / This app asks to sign you in.</p>\n"
        f'<p class="note">回调 / redirect_uri: <code>{_e(params["redirect_uri"])}</code><br>'
        f"scope: <code>{_e(params.get('scope', ''))}</code></p>\n"
        "<p>选择一个测试帐号 / Choose a test user:</p>\n" + "\n".join(forms) + "\n"
        '<p class="note">This is qqgate.dev.fakeqq, a fake graph.qq.com for development.</p>'
    )
