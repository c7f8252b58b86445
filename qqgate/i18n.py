"""Every sentence a visitor can read on a gate page, in Simplified Chinese and English.

A page is in one language: ``zh`` (served as ``lang="zh-CN"``) or ``en``. With ``language = auto``
the browser's ``Accept-Language`` decides: any ``zh`` tag (zh, zh-CN, zh-Hans, zh-TW, ...) gets the
Simplified Chinese text, everything else English. No header at all means English: API clients and
scripts send none, and an English page is the safer guess for an unknown reader.

Texts are plain text with ``{name}`` placeholders; the page renderer fills them in and escapes the
result, so nothing here is HTML.
"""

from __future__ import annotations

import re

from .wsgiutil import Environ

LANGUAGES = ("zh", "en")
HTML_LANG = {"zh": "zh-CN", "en": "en"}
_TAG = re.compile(r"^([A-Za-z]{1,8})(?:-[A-Za-z0-9]{1,8})*$")

# key: (Simplified Chinese, English)
MESSAGES: dict[str, tuple[str, str]] = {
    # the sign-in page
    "sign_in.title": ("登录", "Sign in"),
    "sign_in.heading": ("登录 {site}", "Sign in to {site}"),
    "sign_in.intro": ("请使用QQ账号登录后继续访问。", "Sign in with your QQ account to continue."),
    "sign_in.button": ("QQ登录", "Sign in with QQ"),
    "sign_in.shared": (
        "QQ只会向本站提供你的 OpenID（仅用于本站的账号标识）、昵称和头像。",
        "QQ shares only your OpenID (an ID used by this site alone), your nickname and your "
        "avatar with this site.",
    ),
    # signed out
    "signed_out.title": ("已退出登录", "Signed out"),
    "signed_out.message": ("你已退出登录。", "You have signed out."),
    "signed_out.again": ("重新登录", "Sign in again"),
    "confirm_sign_out.title": ("退出登录？", "Sign out?"),
    "confirm_sign_out.message": ("确定要退出登录吗？", "Do you want to sign out?"),
    "confirm_sign_out.button": ("退出登录", "Sign out"),
    "confirm_sign_out.cancel": ("取消", "Cancel"),
    "everywhere_unavailable.title": ("无法在所有设备上退出", "Cannot sign out everywhere"),
    "everywhere.message": (
        "此网站未配置会话存储，无法让其他浏览器退出登录。你仍处于登录状态。",
        "This site keeps no session store, so other browsers cannot be signed out. "
        "You are still signed in.",
    ),
    # not on the allow-list
    "forbidden.title": ("无权访问", "Access denied"),
    "forbidden.message": (
        "你的QQ账号不在本站的允许名单中。请把下面的 OpenID 发给网站管理员，申请访问权限。",
        "Your QQ account is not on this site's list of allowed users. Send the OpenID below "
        "to the site's operator to ask for access.",
    ),
    "forbidden.openid": ("OpenID", "OpenID"),
    "forbidden.nickname": ("昵称", "Nickname"),
    "forbidden.sign_out": ("退出登录", "Sign out"),
    # actions on error pages
    "action.start_again": ("重新登录", "Start again"),
    "action.try_again": ("重试", "Try again"),
    "detail.qq_error_code": ("QQ错误码", "QQ error code"),
    # the callback could not complete (400)
    "not_completed.title": ("登录未完成", "Sign-in not completed"),
    "bad_query.message": ("回调地址格式有误，请重新登录。", "The callback URL is malformed."),
    "duplicate_parameter.message": (
        "回调地址中有重复的参数，请重新登录。",
        "The callback URL is malformed.",
    ),
    "bad_code.message": ("授权码无效，请重新登录。", "The authorization code is invalid."),
    "missing_code.message": (
        "回调地址中没有授权码，请重新登录。",
        "The callback has no authorization code.",
    ),
    "state_mismatch.message": (
        "登录已过期，或不是从这个浏览器发起的。请重新登录。",
        "This sign-in has expired or was not started in this browser. Please start again.",
    ),
    "cancelled.message": (
        "QQ登录已取消或被拒绝。如需访问，请重新登录。",
        "The QQ sign-in was cancelled or refused. You can start again.",
    ),
    "sign_in_loop.message": (
        "你已经多次从QQ登录返回，但浏览器没有保存登录状态，所以不会再次跳转到QQ。可能的原因："
        "浏览器禁用了Cookie；网站通过 http 访问，而登录Cookie要求 https（cookie_secure）；"
        "或者网站配置的 cookie_domain 与当前地址不符。请允许Cookie，或联系网站管理员。"
        "两分钟后可以重新登录。",
        "You came back from QQ several times, but this browser did not keep the sign-in, so the "
        "gate is not sending you round again. Likely causes: cookies are blocked in this "
        "browser; the site is opened over plain http while its sign-in cookie requires https "
        "(cookie_secure); or the site's cookie_domain does not match this address. Allow "
        "cookies or tell the site's operator. You can start again in two minutes.",
    ),
    # QQ answered, but not with a sign-in
    "qq_restart.title": ("请重新登录", "Please start again"),
    "qq_restart.message": (
        "授权码已失效或已被使用，或者您已取消了对本站的授权。请重新登录。",
        "The authorization code has expired or was used, or you withdrew this site's "
        "permission. Please start again.",
    ),
    "qq_refused.title": ("QQ登录失败", "QQ sign-in failed"),
    "qq_refused.message": ("QQ拒绝了这次登录。", "QQ refused this sign-in."),
    "qq_not_approved.message": (
        "QQ拒绝了这次登录：本站的应用尚未通过QQ互联审核，目前只有开发者本人的QQ账号可以登录。",
        "QQ refused this sign-in: this site's app has not yet passed QQ Connect review, so only "
        "the developer's own QQ account can sign in for now.",
    ),
    "qq_unionid.message": (
        "QQ拒绝了这次登录：本站请求了UnionID，但应用没有UnionID权限。管理员可在QQ互联申请该权限，"
        "或在 gate.ini 中设置 unionid = false。",
        "QQ refused this sign-in: this site asks for the UnionID, which QQ has not granted to its "
        "app. The site's operator can apply for it at QQ Connect, or set unionid = false in "
        "gate.ini.",
    ),
    "qq_not_approved.note": (
        "如果本站的应用尚未通过QQ互联审核，只有开发者本人的QQ账号可以登录。",
        "If this site's app has not yet passed QQ Connect review, only the developer's own QQ "
        "account can sign in.",
    ),
    "qq_config.message": (
        "QQ拒绝了这次登录：本站的QQ登录配置有误。管理员请检查 gate.ini 的 app_id、app_key 和 "
        "redirect_uri 是否与QQ互联登记的一致（回调地址必须完全相同）。",
        "QQ refused this sign-in: this site's QQ login is misconfigured. The site's operator "
        "should check that app_id, app_key and redirect_uri in gate.ini match the app registered "
        "at QQ Connect (the callback address exactly).",
    ),
    # something did not answer (502/504)
    "qq_unavailable.title": ("QQ登录暂不可用", "QQ sign-in unavailable"),
    "qq_unavailable.message": (
        "暂时无法连接QQ，请稍后重试。",
        "QQ could not be reached. Please try again shortly.",
    ),
    "upstream_unavailable.title": ("网站暂不可用", "Site unavailable"),
    "upstream_unavailable.message": (
        "暂时无法连接本站的服务，请稍后重试。",
        "The site could not be reached. Please try again shortly.",
    ),
    "upstream_timeout.title": ("网站响应超时", "Site not responding"),
    "upstream_timeout.message": (
        "本站的服务没有及时响应，请稍后重试。",
        "The site took too long to answer. Please try again shortly.",
    ),
    "bad_request.title": ("请求无效", "Bad request"),
    "bad_request.message": (
        "这个请求无法原样转发给本站的服务。",
        "This request cannot be passed on to the site as it is.",
    ),
    "upgrade_unsupported.title": ("不支持的协议升级", "Upgrade not supported"),
    "upgrade_unsupported.message": (
        "本站只转发 WebSocket 协议升级，且需要以 qqgate serve 运行。",
        "The gate passes only WebSocket upgrades on, and only when run with qqgate serve.",
    ),
    "cross_site_websocket.title": ("跨站 WebSocket 被拒绝", "Cross-site WebSocket refused"),
    "cross_site_websocket.message": (
        "这个 WebSocket 连接来自其他网站的页面，已被拒绝。",
        "This WebSocket was opened by a page of another site, and was refused.",
    ),
    # the gate's own odds and ends
    "not_found.title": ("页面不存在", "Page not found"),
    "not_found.message": ("没有这个页面。", "No such page."),
    "method_not_allowed.title": ("不支持的请求方式", "Method not allowed"),
    "method_not_allowed.message": ("只支持 GET 或 POST。", "Use GET or POST."),
    "sign_in_method.message": ("只支持 GET。", "Use GET."),
}


def text(language: str, key: str, **values: str) -> str:
    """The message ``key`` in ``language`` ("zh" or "en"), with its placeholders filled in."""
    zh, en = MESSAGES[key]
    template = zh if language == "zh" else en
    return template.format(**values) if values else template


def negotiate(accept_language: str) -> str:
    """ "zh" or "en" from an Accept-Language header: the preferred of the two; English otherwise."""
    best, best_q = "en", 0.0
    for item in accept_language.split(",")[:32]:  # a bound on a header the client controls
        tag, _, params = item.strip().partition(";")
        match = _TAG.match(tag.strip())
        q = _quality(params)
        if not match or q <= 0:
            continue
        primary = match.group(1).lower()
        if primary in LANGUAGES and q > best_q:
            best, best_q = primary, q
    return best


def choose(environ: Environ, setting: str) -> str:
    """The page language for this request: the configured one, or negotiated when "auto"."""
    if setting in LANGUAGES:
        return setting
    return negotiate(environ.get("HTTP_ACCEPT_LANGUAGE", ""))


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.strip().partition("=")
        if name.strip().lower() == "q":
            try:
                q = float(value)
            except ValueError:
                return 0.0
            return q if 0 <= q <= 1 else 0.0
    return 1.0
