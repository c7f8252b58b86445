"""What visitors see, in a real browser: Debian's headless Chromium driven by Playwright.

The demo stack runs on loopback: the development provider on ``localhost`` and the gate with the
sample app on ``127.0.0.1``, two sites, so the return from the provider's page to the callback is a
real cross-site navigation and a state cookie a browser would not send back (SameSite=Strict, a
wrong Path, Secure on plain http) fails here as it would in production.

Every page is photographed at desktop (1280x800) and phone (360x740) size into ``test-artifacts/``.
``make screenshots`` (``UPDATE_DOCS_SCREENSHOTS=1``) also copies the README's pictures to ``docs/``.
Chinese and emoji need fonts (Debian's fonts-noto-cjk and fonts-noto-color-emoji; ``.ci/run``
installs them): without them the screenshots show empty boxes, so look at them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import warnings
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from qqgate.dev.demo import DEMO_APP_ID, build_demo
from qqgate.dev.fakeqq import openid_for

from .conftest import LoopbackServer
from .servers import ROOT

sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright for Python is not installed: pip install -e '.[test]'"
)

ARTIFACTS = ROOT / "test-artifacts"
DOCS = ROOT / "docs"
# test-artifacts name -> docs name, copied when UPDATE_DOCS_SCREENSHOTS is set (make screenshots)
DOCS_SCREENSHOTS = {
    "sign-in-desktop.png": "sign-in.png",
    "sign-in-phone.png": "sign-in-phone.png",
    "403-desktop.png": "forbidden.png",
    "403-phone.png": "forbidden-phone.png",
}
# As the machine notes ask for Chromium run as root in a sandboxed, offline container.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE_UA = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/156.0.0.0 Mobile Safari/537.36"
)
VIEWPORTS = {
    "desktop": {"viewport": {"width": 1280, "height": 800}},
    "phone": {
        "viewport": {"width": 360, "height": 740},
        "is_mobile": True,
        "has_touch": True,
        "user_agent": PHONE_UA,
    },
}
FONTS = {"Noto Sans CJK SC": "fonts-noto-cjk", "Noto Color Emoji": "fonts-noto-color-emoji"}
OPENID = openid_for(DEMO_APP_ID, "xiaoming")
NOT_XIAOMING = "F" * 32

# The worst text/background contrast ratio among the text in <main> (WCAG's formula).
WORST_CONTRAST_JS = """() => {
  const rgba = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const lin = v => (v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
  const lum = ([r, g, b]) => 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  let worst = [99, ""];
  for (const el of document.querySelectorAll("main *")) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const [hi, lo] = [lum(rgba(getComputedStyle(el).color)), lum(background(el))].sort((a, b) => b - a);
    const ratio = (hi + 0.05) / (lo + 0.05);
    if (ratio < worst[0]) worst = [ratio, el.tagName + "." + el.className];
  }
  return worst;
}"""


def find_chromium() -> str | None:
    for candidate in (
        os.environ.get("CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        "/usr/bin/chromium",
    ):
        if candidate and os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def missing_font_packages() -> list[str]:
    fc_list = shutil.which("fc-list")
    if fc_list is None:
        return ["fontconfig"]
    families = subprocess.run([fc_list, ":", "family"], capture_output=True, text=True).stdout
    return [package for family, package in FONTS.items() if family not in families]


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    chromium = find_chromium()
    if chromium is None:
        pytest.skip("no Chromium found: install Debian's chromium (.ci/run does) or set CHROMIUM")
    missing = missing_font_packages()
    if missing:
        message = f"screenshots will show boxes for Chinese or emoji: install {' '.join(missing)}"
        if os.environ.get("UPDATE_DOCS_SCREENSHOTS"):
            pytest.fail(message)
        warnings.warn(message, stacklevel=1)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Stack:
    """The demo's provider (reached as ``localhost``) and gated sample app (``127.0.0.1``), each
    served on its own loopback port in this process."""

    def __init__(self, **settings: str) -> None:
        self.provider_site = LoopbackServer(None)
        self.gate_site = LoopbackServer(None)
        gate, provider = build_demo(self.gate_site.port, self.provider_site.port, **settings)
        self.provider_site.server.set_app(provider)
        self.gate_site.server.set_app(gate)
        self.url = self.gate_site.url
        self.provider_url = f"http://localhost:{self.provider_site.port}"
        self._running = [self.provider_site, self.gate_site]

    def stop_provider(self) -> None:
        """Stop the provider and close its port: the next call to it is refused."""
        if self.provider_site in self._running:
            self._running.remove(self.provider_site)
            self.provider_site.__exit__()

    def __enter__(self) -> Stack:
        for site in self._running:
            site.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for site in self._running:
            site.__exit__()


@pytest.fixture(scope="module")
def demo() -> Iterator[Stack]:
    with Stack(sign_in_page="true") as stack:
        yield stack


@pytest.fixture(scope="module")
def allow_list_demo() -> Iterator[Stack]:
    with Stack(sign_in_page="true", allowed_openids=NOT_XIAOMING) as stack:
        yield stack


class Visitor:
    """One browser tab at one size, which photographs what it sees."""

    def __init__(self, page: sync_api.Page, size: str) -> None:
        self.page = page
        self.size = size

    def screenshot(self, name: str) -> Path:
        self.page.evaluate("document.fonts.ready.then(() => true)")
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"{name}-{self.size}.png"
        self.page.screenshot(path=path, full_page=True)
        if os.environ.get("UPDATE_DOCS_SCREENSHOTS") and path.name in DOCS_SCREENSHOTS:
            DOCS.mkdir(exist_ok=True)
            shutil.copyfile(path, DOCS / DOCS_SCREENSHOTS[path.name])
        return path

    def wait_for(self, url_start: str) -> None:
        self.page.wait_for_url(lambda url: url.startswith(url_start))

    @property
    def path(self) -> str:
        return urlsplit(self.page.url).path

    def heading(self) -> str:
        return self.page.locator("h1").inner_text()

    def check_gate_page(self, lang: str) -> None:
        """The basics every gate page must pass, in any language, at any size."""
        page = self.page
        assert page.get_attribute("html", "lang") == lang
        assert page.get_by_role("main").count() == 1
        assert page.locator("h1").count() == 1 and self.heading().strip()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), (
            "the page scrolls sideways"
        )
        ratio, element = page.evaluate(WORST_CONTRAST_JS)
        assert ratio >= 4.5, f"text contrast {ratio:.2f} < 4.5 in {element}"
        assert not page.locator("img[src^='http'], link[href], script").count(), "external assets"


def open_visitor(
    browser: sync_api.Browser, size: str, locale: str
) -> tuple[sync_api.BrowserContext, Visitor]:
    context = browser.new_context(locale=locale, **VIEWPORTS[size])
    context.set_default_timeout(15_000)
    return context, Visitor(context.new_page(), size)


@pytest.fixture(params=list(VIEWPORTS))
def visitor(request, browser) -> Iterator[Visitor]:
    """A visitor whose browser asks for Chinese, as most of qqgate's visitors do."""
    context, visitor = open_visitor(browser, request.param, "zh-CN")
    yield visitor
    context.close()


def to_consent_page(visitor: Visitor, stack: Stack, path: str = "/private?x=1") -> None:
    """From a protected page, through the sign-in page, to the provider's consent page."""
    visitor.page.goto(stack.url + path)
    assert visitor.path == "/_qqgate/sign_in"
    visitor.page.get_by_role("link", name="QQ登录").click()
    visitor.wait_for(f"{stack.provider_url}/oauth2.0/authorize?")


# --- the journey --------------------------------------------------------------------------------


def test_sign_in_with_qq_then_sign_out(visitor: Visitor, demo: Stack) -> None:
    page = visitor.page
    page.goto(demo.url + "/private?x=1")
    assert visitor.path == "/_qqgate/sign_in"
    visitor.check_gate_page("zh-CN")
    assert visitor.heading() == "登录 127.0.0.1"
    assert "OpenID" in page.locator("main").inner_text()
    visitor.screenshot("sign-in")

    page.get_by_role("link", name="QQ登录").click()
    visitor.wait_for(f"{demo.provider_url}/oauth2.0/authorize?")
    assert ("display=mobile" in page.url) == (visitor.size == "phone")
    visitor.screenshot("provider-consent")

    page.click("#approve-xiaoming")  # a click on the provider's page, as on graph.qq.com
    visitor.wait_for(demo.url + "/private?x=1")
    greeting = page.locator("#greeting").inner_text()
    assert "小明🐧" in greeting and OPENID in greeting
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    visitor.screenshot("app")

    page.get_by_role("link", name="Sign out / 退出登录").click()
    visitor.wait_for(demo.url + "/_qqgate/logout")
    visitor.check_gate_page("zh-CN")
    assert visitor.heading() == "已退出登录"
    visitor.screenshot("signed-out")

    page.get_by_role("link", name="重新登录").click()
    assert visitor.path == "/_qqgate/sign_in", "signed out means signed out"


def test_sign_in_with_the_host_prefixed_cookie(browser) -> None:
    """The default where it is legal (cookie_secure, no cookie_domain): __Host-qqgate, and its
    state cookie at Path=/, which Chromium accepts (loopback http counts as secure)."""
    with Stack(cookie_secure="true") as stack:
        context, visitor = open_visitor(browser, "desktop", "zh-CN")
        try:
            page = visitor.page
            page.goto(stack.url + "/private?x=1")
            visitor.wait_for(f"{stack.provider_url}/oauth2.0/authorize?")
            state = [c for c in context.cookies() if c["name"] == "__Host-qqgate_state"]
            assert state and state[0]["path"] == "/" and state[0]["secure"]
            page.click("#approve-xiaoming")
            visitor.wait_for(stack.url + "/private?x=1")
            assert OPENID in page.locator("#greeting").inner_text()
            names = {c["name"] for c in context.cookies(stack.url)}
            assert "__Host-qqgate" in names and "qqgate" not in names
            page.get_by_role("link", name="Sign out / 退出登录").click()
            visitor.wait_for(stack.url + "/_qqgate/logout")
            assert visitor.heading() == "已退出登录"
            assert "__Host-qqgate" not in {c["name"] for c in context.cookies(stack.url)}
        finally:
            context.close()


def test_a_link_on_another_site_only_asks_to_sign_out(browser, demo: Stack) -> None:
    """A cross-site link to logout shows a page that asks; its button (a POST from the gate's own
    page) signs out."""
    logout = f"{demo.url}/_qqgate/logout?next=/private"

    def other_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [f'<a id="out" href="{logout}">out</a>'.encode()]

    context, visitor = open_visitor(browser, "desktop", "zh-CN")
    try:
        to_consent_page(visitor, demo, "/private")
        visitor.page.click("#approve-xiaoming")
        visitor.wait_for(demo.url + "/private")
        with LoopbackServer(other_app) as other:
            visitor.page.goto(f"http://localhost:{other.port}/")  # another site than 127.0.0.1
            visitor.page.click("#out")
            visitor.wait_for(demo.url + "/_qqgate/logout")
        assert visitor.heading() == "退出登录？"
        visitor.check_gate_page("zh-CN")
        visitor.screenshot("confirm-sign-out")
        other_tab = context.new_page()
        other_tab.goto(demo.url + "/private")
        assert urlsplit(other_tab.url).path == "/private", "still signed in after the foreign link"
        visitor.page.get_by_role("button", name="退出登录").click()
        visitor.wait_for(demo.url + "/_qqgate/sign_in")
    finally:
        context.close()


def test_cancel_at_qq_offers_to_start_again(visitor: Visitor, demo: Stack) -> None:
    to_consent_page(visitor, demo)
    visitor.page.click("#cancel")
    visitor.wait_for(demo.url + "/_qqgate/callback?")
    visitor.check_gate_page("zh-CN")
    assert visitor.heading() == "登录未完成"
    assert "取消" in visitor.page.locator("main").inner_text()
    visitor.screenshot("400")
    visitor.page.get_by_role("link", name="重新登录").click()
    assert visitor.path == "/_qqgate/sign_in"


def test_user_not_on_the_allow_list_sees_their_openid(
    visitor: Visitor, allow_list_demo: Stack
) -> None:
    to_consent_page(visitor, allow_list_demo)
    visitor.page.click("#approve-xiaoming")
    visitor.wait_for(allow_list_demo.url + "/_qqgate/callback?")
    visitor.check_gate_page("zh-CN")
    assert visitor.heading() == "无权访问"
    details = visitor.page.locator("dl").inner_text()
    assert OPENID in details and "小明🐧" in details
    visitor.screenshot("403")
    visitor.page.get_by_role("link", name="退出登录").click()
    assert visitor.heading() == "已退出登录"


def test_qq_unreachable_says_try_again(visitor: Visitor) -> None:
    with Stack(sign_in_page="true") as stack:
        to_consent_page(visitor, stack)

        def approve_then_stop_provider(route: sync_api.Route) -> None:
            # The provider answers the approval (its 302 to the callback) and then goes away,
            # before the gate calls its token endpoint. (A route sees the first request of a
            # redirect chain only, so the approval is held here, not the callback.)
            answer = route.fetch(max_redirects=0)
            stack.stop_provider()
            route.fulfill(response=answer)

        visitor.page.route(f"{stack.provider_url}/oauth2.0/authorize", approve_then_stop_provider)
        visitor.page.click("#approve-xiaoming")
        visitor.wait_for(stack.url + "/_qqgate/callback?")
        visitor.check_gate_page("zh-CN")
        assert visitor.heading() == "QQ登录暂不可用"
        assert visitor.page.get_by_role("link", name="重试").count() == 1
        visitor.screenshot("502")


@pytest.mark.parametrize("size", list(VIEWPORTS))
def test_english_speaking_browsers_get_english_pages(browser, demo: Stack, size: str) -> None:
    context, visitor = open_visitor(browser, size, "en-US")
    try:
        visitor.page.goto(demo.url + "/private")
        visitor.check_gate_page("en")
        assert visitor.heading() == "Sign in to 127.0.0.1"
        assert visitor.page.get_by_role("link", name="Sign in with QQ").count() == 1
        visitor.screenshot("sign-in-en")
    finally:
        context.close()


# --- WebSockets through proxy mode ----------------------------------------------------------------


@pytest.fixture(scope="module")
def websocket_gate(tmp_path_factory):
    from .edge import serve_gate
    from .test_websocket import EchoUpstream

    upstream = EchoUpstream()
    gate = serve_gate(tmp_path_factory.mktemp("ws-browser"), upstream.url)
    yield gate, upstream
    gate.stop()
    upstream.close()


def signed_in_context(browser: sync_api.Browser, gate_url: str) -> sync_api.BrowserContext:
    from .live import session_token
    from .security.test_request_smuggling import ALICE

    context = browser.new_context()
    context.set_default_timeout(15_000)
    token = session_token(ALICE)
    context.add_cookies([{"name": "qqgate", "value": token, "url": gate_url, "httpOnly": True}])
    return context


def test_websocket_echo_through_the_gate_in_chromium(browser, websocket_gate) -> None:
    gate, upstream = websocket_gate
    context = signed_in_context(browser, gate.url)
    try:
        page = context.new_page()
        page.goto(f"{gate.url}/page")
        page.wait_for_function("document.title !== 'waiting'")
        assert page.title() == "echoed 100"
        assert upstream.handshakes[-1]["x-qq-openid"] == "A" * 32
    finally:
        context.close()


def test_websocket_from_another_origin_on_the_same_host_is_refused(browser, websocket_gate) -> None:
    """A page of another app on the same host (another port: the same site, so the browser
    sends the gate's cookie with the handshake) cannot open the gate's WebSockets."""
    from .test_websocket import ECHO_PAGE

    def other_app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
        return [ECHO_PAGE]

    gate, upstream = websocket_gate
    other_site = LoopbackServer(other_app)
    context = signed_in_context(browser, gate.url)
    before = len(upstream.handshakes)
    try:
        with other_site:
            page = context.new_page()
            page.goto(f"{other_site.url}/?ws=ws://127.0.0.1:{gate.port}/chat")
            page.wait_for_function("document.title !== 'waiting'")
            assert page.title() == "refused"
        assert len(upstream.handshakes) == before, "the handshake never reached the upstream"
        assert "cross-site WebSocket" in gate.output(), "refused for its Origin (403), not a 401"
    finally:
        context.close()
