"""The gate's pages in-process: the sign-in page and its route, languages, escaping, templates."""

from __future__ import annotations

import re
from html import escape
from string import Template
from urllib.parse import quote

import pytest

from qqgate.config import ConfigError
from qqgate.pages import (
    TEMPLATE_VARIABLES,
    Markup,
    Pages,
    html_page,
    json_response,
    load_templates,
    render,
)

from .conftest import make_settings
from .rig import Rig
from .test_middleware import CODE, HTML, NICK, OPENID, harness

CJK = re.compile(r"[\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]")


def zh(**headers: str) -> dict[str, str]:
    return {**HTML, "Accept-Language": "zh-CN,zh;q=0.9", **headers}


def lang_of(html: str) -> str:
    match = re.search(r'<html lang="([^"]+)">', html)
    assert match, html[:200]
    return match.group(1)


# --- the challenge and the sign-in route ---------------------------------------------------------


def test_sign_in_page_setting_sends_browsers_to_the_sign_in_page() -> None:
    h = harness(sign_in_page="true")
    response = h.get("/admin/x?a=1", headers=dict(HTML))
    assert response.status_int == 302
    assert response.location.endswith("/_qqgate/sign_in?next=" + quote("/admin/x?a=1", safe=""))
    api = h.get("/admin/x?a=1", headers={"Accept": "application/json"})
    assert api.status_int == 401
    assert api.json["login_url"] == "/_qqgate/login?next=" + quote("/admin/x?a=1", safe="")


@pytest.mark.parametrize(("setting", "route"), [("true", "sign_in"), ("false", "login")])
def test_nginx_auth_names_the_same_start_as_the_challenge(setting, route) -> None:
    response = harness(sign_in_page=setting).get(
        "/_qqgate/auth", headers={**HTML, "X-Original-URI": "/app?x=1"}
    )
    assert response.status_int == 401
    assert response.headers["X-QQGate-Login"] == f"/_qqgate/{route}?next=%2Fapp%3Fx%3D1"


def test_default_sends_browsers_straight_to_qq() -> None:
    response = harness().get("/admin", headers=dict(HTML))
    assert response.location.endswith("/_qqgate/login?next=%2Fadmin")


def test_sign_in_page_has_the_qq_button_and_says_what_is_shared() -> None:
    h = harness(sign_in_page="true")
    response = h.get("/_qqgate/sign_in?next=/dash%3Fa%3D1", headers=dict(HTML))
    assert response.status_int == 200
    assert response.content_type == "text/html"
    assert 'class="qq-button" href="/_qqgate/login?next=%2Fdash%3Fa%3D1"' in response.text
    assert "<svg" in response.text and 'aria-hidden="true"' in response.text
    assert "Sign in with QQ" in response.text
    assert "OpenID" in response.text and "nickname" in response.text and "avatar" in response.text
    assert "Sign in to localhost" in response.text  # no site_name: the request's host
    assert response.headers["Cache-Control"] == "no-store"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


@pytest.mark.parametrize(
    "next_url", ["//evil.example/", "https://evil.example/", "/\\evil.example", "javascript:x"]
)
def test_sign_in_page_never_links_off_site(next_url) -> None:
    response = harness().get(f"/_qqgate/sign_in?next={quote(next_url, safe='')}")
    assert 'href="/_qqgate/login?next=%2F"' in response.text


def test_sign_in_page_sends_a_signed_in_visitor_on() -> None:
    h = harness()
    response = h.get("/_qqgate/sign_in?next=/dash", cookie=f"qqgate={h.session_for()}")
    assert response.status_int == 302 and response.location.endswith("/dash")


def test_sign_in_page_is_get_only() -> None:
    assert harness().browser.post("/_qqgate/sign_in", expect_errors=True).status_int == 405


def test_site_name_and_host_are_escaped() -> None:
    h = harness(site_name='<b>"Shop" & co</b>')
    text = h.get("/_qqgate/sign_in").text
    assert "<b>" not in text and "&lt;b&gt;&quot;Shop&quot; &amp; co&lt;/b&gt;" in text
    evil_host = harness().get("/_qqgate/sign_in", headers={"Host": '"><script>x</script>'}).text
    assert "<script>" not in evil_host and "&lt;script&gt;" in evil_host


def test_site_name_defaults_to_the_host_without_port() -> None:
    text = harness().get("/_qqgate/sign_in", headers={"Host": "shop.example.cn:8443"}).text
    assert "Sign in to shop.example.cn<" in text


def test_signed_out_page_links_to_the_sign_in_page_when_enabled() -> None:
    text = harness(sign_in_page="true").get("/_qqgate/logout").text
    assert 'href="/_qqgate/sign_in"' in text
    assert 'href="/_qqgate/login"' in harness().get("/_qqgate/logout").text


# --- one language per page ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("accept_language", "lang"),
    [
        pytest.param(None, "en", id="no-header"),
        pytest.param("zh-CN,zh;q=0.9", "zh-CN", id="zh-CN"),
        pytest.param("zh", "zh-CN", id="zh"),
        pytest.param("zh-Hans-CN", "zh-CN", id="zh-Hans"),
        pytest.param("zh-TW,zh;q=0.8", "zh-CN", id="zh-TW"),
        pytest.param("en-US,en;q=0.9,zh-CN;q=0.8", "en", id="english-first"),
        pytest.param("fr-FR,zh;q=0.5", "zh-CN", id="french-then-chinese"),
        pytest.param("ja,de;q=0.8", "en", id="neither"),
        pytest.param("zh;q=0, en", "en", id="chinese-refused"),
        pytest.param("*", "en", id="wildcard"),
    ],
)
def test_language_follows_accept_language(accept_language, lang) -> None:
    headers = {"Accept-Language": accept_language} if accept_language else {}
    response = harness().get("/_qqgate/sign_in", headers=headers)
    assert lang_of(response.text) == lang
    assert ("QQ登录" in response.text) == (lang == "zh-CN")
    assert response.headers["Vary"] == "Accept-Language"


@pytest.mark.parametrize(("setting", "lang"), [("zh", "zh-CN"), ("en", "en")])
def test_language_setting_overrides_the_browser(setting, lang) -> None:
    h = harness(language=setting)
    for accept in ("zh-CN", "en-US"):
        response = h.get("/_qqgate/logout", headers={"Accept-Language": accept})
        assert lang_of(response.text) == lang and "Vary" not in response.headers


def _every_page(h: Rig, headers: dict[str, str]) -> dict[str, str]:
    """The text of each page the gate can show a visitor."""
    state, _ = h.login()
    pages = {
        "sign_in": h.get("/_qqgate/sign_in", headers=dict(headers)),
        "signed_out": h.get("/_qqgate/logout", headers=dict(headers)),
        "not_found": h.get("/_qqgate/nope", headers=dict(headers)),
        "bad_callback": h.get(f"/_qqgate/callback?state={state}&usercancel=1", headers=headers),
        "forbidden": h.get("/admin", cookie=f"qqgate={h.session_for()}", headers=dict(headers)),
    }
    return {name: response.text for name, response in pages.items()}


def test_english_pages_have_no_chinese_and_chinese_pages_no_english_sentences() -> None:
    h = harness(allowed_openids="F" * 32)
    for name, text in _every_page(h, {}).items():
        assert lang_of(text) == "en", name
        assert not CJK.search(text.replace(escape(NICK), "")), name
    for name, text in _every_page(h, {"Accept-Language": "zh-CN"}).items():
        assert lang_of(text) == "zh-CN", name
        assert CJK.search(text), name
        assert not re.search(r"\b(the|your|this|Please|again)\b", text), name


@pytest.mark.parametrize("accept", ["en", "zh-CN"])
def test_every_page_has_the_accessible_basics(accept) -> None:
    h = harness(allowed_openids="F" * 32)
    for name, text in _every_page(h, {"Accept-Language": accept}).items():
        assert text.count("<main>") == 1 and text.count("<h1>") == 1, name
        assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
        assert not re.search(r"<(script|link|img|iframe)\b", text), name
        assert not re.search(r"(src|href)=\"(https?:)?//", text), name


@pytest.mark.parametrize(
    ("query", "fragment"),
    [
        pytest.param("code=C&state=wrong", "登录已过期", id="expired"),
        pytest.param("state={state}&usercancel=1", "已取消", id="cancelled"),
        pytest.param("state={state}", "没有授权码", id="missing-code"),
    ],
)
def test_callback_errors_in_chinese(query, fragment) -> None:
    h = harness()
    state, cookie = h.login()
    response = h.get(
        f"/_qqgate/callback?{query.format(state=state)}",
        cookie=f"qqgate_state={cookie}",
        headers=zh(),
    )
    assert response.status_int == 400 and fragment in response.text
    assert "<h1>登录未完成</h1>" in response.text and ">重新登录</a>" in response.text


def test_forbidden_page_in_chinese_shows_openid_and_escaped_nickname() -> None:
    h = harness(allowed_openids="F" * 32)
    response = h.get("/admin", cookie=f"qqgate={h.session_for()}", headers=zh())
    assert response.status_int == 403
    assert "<h1>无权访问</h1>" in response.text and f"<code>{OPENID}</code>" in response.text
    assert "&lt;b&gt;&amp;&quot;&#x27;" in response.text and "<b>" not in response.text
    assert 'href="/_qqgate/logout"' in response.text and "退出登录" in response.text


def test_qq_unavailable_in_chinese() -> None:
    from qqgate.qq import QQUnavailable

    h = harness()
    h.qq.result = QQUnavailable("t", endpoint="token", timeout=True)
    state, cookie = h.login("/after")
    response = h.get(
        f"/_qqgate/callback?code={CODE}&state={state}",
        cookie=f"qqgate_state={cookie}",
        headers=zh(),
    )
    assert response.status_int == 504 and "QQ登录暂不可用" in response.text
    assert 'href="/_qqgate/login?next=%2Fafter">重试</a>' in response.text


# --- templates ----------------------------------------------------------------------------------


def _all_variables_template(name: str) -> str:
    return " ".join(f"[{var}=${var}]" for var in sorted(TEMPLATE_VARIABLES[name]))


@pytest.mark.parametrize("name", sorted(TEMPLATE_VARIABLES))
def test_builtin_templates_use_only_their_variables(name) -> None:
    template = load_templates()[name]
    assert set(template.get_identifiers()) <= TEMPLATE_VARIABLES[name]


def test_every_page_passes_every_variable_its_template_may_use(tmp_path) -> None:
    for name in TEMPLATE_VARIABLES:
        (tmp_path / name).write_text(_all_variables_template(name), encoding="utf-8")
    h = harness(templates_dir=str(tmp_path), allowed_openids="F" * 32)
    for page, text in _every_page(h, {}).items():
        for var in TEMPLATE_VARIABLES["layout.html"]:
            assert f"[{var}=" in text, (page, var)
    texts = _every_page(h, {})
    assert "[openid=" + OPENID + "]" in texts["forbidden"]
    assert "[login_url=/_qqgate/login?next=%2F]" in texts["sign_in"]
    assert "[status=400]" in texts["bad_callback"]


def test_override_replaces_one_page_and_escapes_its_values(tmp_path) -> None:
    (tmp_path / "forbidden.html").write_text(
        "<h1>Nope</h1><p>Ask Ops, quoting <code>${openid}</code> ($nickname), costs $$0.</p>",
        encoding="utf-8",
    )
    (tmp_path / "unrelated.txt").write_text("$whatever", encoding="utf-8")
    h = harness(templates_dir=str(tmp_path), allowed_openids="F" * 32)
    text = h.get("/admin", cookie=f"qqgate={h.session_for()}").text
    assert f"<code>{OPENID}</code>" in text and "costs $0." in text
    assert "<b>" not in text and "&lt;b&gt;" in text
    assert '<html lang="en">' in text  # the built-in layout is kept
    assert "Sign in with QQ" in h.get("/_qqgate/sign_in").text  # and the other pages


def test_templates_are_read_once_at_start_up(tmp_path) -> None:
    override = tmp_path / "signed_out.html"
    override.write_text("<h1>first</h1>", encoding="utf-8")
    h = harness(templates_dir=str(tmp_path))
    override.write_text("<h1>second</h1>", encoding="utf-8")
    assert "<h1>first</h1>" in h.get("/_qqgate/logout").text


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        pytest.param("<h1>$heading $colour</h1>", "unknown variable(s) $colour", id="unknown"),
        pytest.param("<p>costs $5</p>", "write $$ for a dollar sign", id="stray-dollar"),
    ],
)
def test_a_bad_override_fails_at_start_up_naming_the_file(tmp_path, text, fragment) -> None:
    (tmp_path / "sign_in.html").write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        Pages(make_settings(templates_dir=str(tmp_path)))
    [(key, message)] = caught.value.problems
    assert key == "templates_dir" and "sign_in.html" in message and fragment in message


def test_an_unreadable_override_fails_at_start_up(tmp_path) -> None:
    (tmp_path / "error.html").write_bytes(b"\xff\xfe not utf-8")
    with pytest.raises(ConfigError) as caught:
        load_templates(str(tmp_path))
    assert caught.value.keys == ["templates_dir"] and "error.html" in str(caught.value)


def test_render_escapes_all_but_markup() -> None:
    template = Template('<p title="$a">$b $c</p>')
    out = render(template, {"a": '"><x>', "b": "<i>", "c": Markup("<em>ok</em>")})
    assert out == '<p title="&quot;&gt;&lt;x&gt;">&lt;i&gt; <em>ok</em></p>'


# --- the functions the proxy uses -----------------------------------------------------------------


def test_html_page_keeps_its_meaning() -> None:
    response = html_page(
        502,
        "应用暂不可用 / <Unavailable>",
        "line one\nline <two>",
        links=[("/retry?a=1&b=2", "Try <again>")],
        details=[("Code", "<42>")],
    )
    assert response.status_int == 502 and response.content_type == "text/html"
    text = response.text
    assert "<title>应用暂不可用 / &lt;Unavailable&gt;</title>" in text
    assert "<p>line one</p>" in text and "<p>line &lt;two&gt;</p>" in text
    assert 'href="/retry?a=1&amp;b=2">Try &lt;again&gt;</a>' in text
    assert "<dt>Code</dt><dd>&lt;42&gt;</dd>" in text
    assert response.headers["X-Frame-Options"] == "DENY"
    assert lang_of(html_page(504, "t", "m", lang="en").text) == "en"


def test_json_response_keeps_its_meaning() -> None:
    response = json_response(401, {"error": "login_required", "nick": "小明🐧"})
    assert response.status_int == 401 and response.json == {
        "error": "login_required",
        "nick": "小明🐧",
    }
    assert "小明" in response.text and response.headers["Cache-Control"] == "no-store"


def test_pages_error_speaks_the_visitors_language() -> None:
    pages = Pages(make_settings())
    environ = {"HTTP_ACCEPT_LANGUAGE": "zh-CN", "HTTP_HOST": "app.example.com"}
    response = pages.error(
        environ,
        502,
        "upstream_unavailable.title",
        ["upstream_unavailable.message"],
        action=("/x", "action.try_again"),
    )
    assert response.status_int == 502 and "<h1>网站暂不可用</h1>" in response.text
    assert '<a class="button" href="/x">重试</a>' in response.text
    assert "<title>网站暂不可用 · app.example.com</title>" in response.text


def test_a_lone_surrogate_in_a_nickname_is_shown_as_a_replacement_character() -> None:
    pages = Pages(make_settings())
    response = pages.forbidden({}, OPENID, "a\ud83db", "/_qqgate/logout")
    assert response.status_int == 403 and "a\ufffdb" in response.body.decode("utf-8")
    data = json_response(200, {"nickname": "\udc27"})
    assert data.json == {"nickname": "\ufffd"}
