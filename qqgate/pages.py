"""What the gate answers itself: small HTML pages a person can act on, and JSON for API clients.

Pages are ``string.Template`` files: a shared ``layout.html`` around one template per page
(``sign_in.html``, ``signed_out.html``, ``confirm_sign_out.html``, ``forbidden.html``,
``error.html``). An operator overrides
any of them by putting a file of the same name in ``templates_dir``; all templates are read and
checked once, when the gate is built, so a typo fails at start-up and never on a visitor.

Every value is HTML-escaped here, once, before it is substituted; callers pass plain text. The only
values substituted as they are are ``Markup`` fragments this module builds from escaped parts.
Pages carry no external assets (inline CSS, the QQ logo as inline SVG), a strict
Content-Security-Policy, and are never cached.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from html import escape
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

from webob import Response

from . import i18n
from .config import ConfigError, Settings
from .wsgiutil import Environ

SECURITY_HEADERS = (
    ("Cache-Control", "no-store"),
    ("X-Content-Type-Options", "nosniff"),
    ("X-Frame-Options", "DENY"),
    ("Referrer-Policy", "no-referrer"),
    (
        "Content-Security-Policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data: https:; "
        "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    ),
)


class Markup(str):
    """HTML that this module built from escaped parts: substituted into a template as it is."""

    __slots__ = ()


_COMMON = frozenset({"lang", "site_name"})
#: The variables each template gets. Only these may appear in a template (as $name or ${name}).
TEMPLATE_VARIABLES: dict[str, frozenset[str]] = {
    "layout.html": _COMMON | {"title", "content"},
    "sign_in.html": _COMMON
    | {"heading", "intro", "button_label", "login_url", "shared", "qq_logo"},
    "signed_out.html": _COMMON | {"heading", "message", "sign_in_url", "sign_in_label"},
    "confirm_sign_out.html": _COMMON
    | {"heading", "message", "sign_out_url", "sign_out_label", "cancel_url", "cancel_label"},
    "forbidden.html": _COMMON
    | {"heading", "message", "openid_label", "openid", "nickname_label", "nickname"}
    | {"sign_out_url", "sign_out_label"},
    "error.html": _COMMON
    | {"status", "heading", "message", "details", "actions", "action_url", "action_label"},
}

# The QQ penguin, drawn for qqgate (no image of QQ's is copied or fetched).
QQ_LOGO = Markup(
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 48 48" width="30" height="30" '
    'aria-hidden="true" focusable="false"><circle cx="24" cy="24" r="24" fill="#fff"/>'
    '<ellipse cx="15.5" cy="40.5" rx="6" ry="2.6" fill="#f6a800"/>'
    '<ellipse cx="32.5" cy="40.5" rx="6" ry="2.6" fill="#f6a800"/>'
    '<path d="M24 5c-7 0-11.5 5.6-11.5 13 0 2-.4 3.6-1.6 5.6-2.2 3.6-3.9 7.4-3.9 10.6 0 4.3 '
    "4.6 7.3 17 7.3s17-3 17-7.3c0-3.2-1.7-7-3.9-10.6-1.2-2-1.6-3.6-1.6-5.6C35.5 10.6 31 5 24 5z"
    '" fill="#111"/><path d="M24 21.5c-6 0-10 5.3-10 11.3 0 4.6 4 7.4 10 7.4s10-2.8 10-7.4c0-6'
    '-4-11.3-10-11.3z" fill="#fff"/><ellipse cx="20" cy="14" rx="2.6" ry="3.6" fill="#fff"/>'
    '<ellipse cx="28" cy="14" rx="2.6" ry="3.6" fill="#fff"/>'
    '<ellipse cx="20.7" cy="14.6" rx="1.2" ry="1.8" fill="#111"/>'
    '<ellipse cx="27.3" cy="14.6" rx="1.2" ry="1.8" fill="#111"/>'
    '<path d="M18.5 19.2c1.6-1.5 3.5-2.2 5.5-2.2s3.9.7 5.5 2.2c-1.6 1.5-3.5 2.3-5.5 2.3s-3.9-.8'
    '-5.5-2.3z" fill="#f6a800"/><path d="M12.6 23.6c3.4 2 7.2 2.9 11.4 2.9s8-.9 11.4-2.9l.9 2.8'
    'c-3.6 2-7.7 3-12.3 3s-8.7-1-12.3-3z" fill="#e62129"/>'
    '<path d="M28.5 27.6l4.3-.9 1.3 6.2-3.4.9z" fill="#e62129"/></svg>'
)
MAX_SITE_NAME = 100  # a Host header is the client's to choose: show a bounded amount of it
# A str can hold lone surrogates (JSON's "\ud83d" decodes to one), which UTF-8 cannot encode.
_SURROGATE = re.compile("[\ud800-\udfff]")


# --- templates ------------------------------------------------------------------------------------


def load_templates(directory: str | None = None) -> dict[str, Template]:
    """The built-in templates, each replaced by ``directory/<name>`` when that file exists.

    Raises ConfigError (key ``templates_dir``) naming every file that cannot be used.
    """
    templates: dict[str, Template] = {}
    problems: list[tuple[str, str]] = []
    for name, allowed in TEMPLATE_VARIABLES.items():
        try:
            text, origin = _read_template(name, directory)
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(("templates_dir", f"cannot read {name}: {exc}"))
            continue
        template = Template(text)
        problem = _template_problem(template, allowed)
        if problem:
            problems.append(("templates_dir", f"{origin}: {problem}"))
        templates[name] = template
    if problems:
        raise ConfigError(problems)
    return templates


def _read_template(name: str, directory: str | None) -> tuple[str, str]:
    if directory:
        path = Path(directory) / name
        if path.is_file():
            return path.read_text(encoding="utf-8"), str(path)
    return resources.files(__package__).joinpath("templates", name).read_text("utf-8"), name


def _template_problem(template: Template, allowed: frozenset[str]) -> str | None:
    if not template.is_valid():
        return "has a $ that starts no variable (write $$ for a dollar sign)"
    unknown = sorted(set(template.get_identifiers()) - allowed)
    if unknown:
        known = ", ".join(f"${name}" for name in sorted(allowed))
        return f"unknown variable(s) {', '.join('$' + n for n in unknown)}; it gets {known}"
    return None


def render(template: Template, values: Mapping[str, object]) -> str:
    """Substitute ``values`` into ``template``, escaping every value that is not Markup."""
    return template.substitute(
        {k: v if isinstance(v, Markup) else escape(str(v)) for k, v in values.items()}
    )


@functools.cache
def _builtin_templates() -> dict[str, Template]:
    return load_templates(None)


# --- fragments, built from escaped parts --------------------------------------------------------


def _paragraphs(lines: Sequence[str]) -> Markup:
    return Markup("\n".join(f"<p>{escape(line)}</p>" for line in lines if line))


def _details(pairs: Sequence[tuple[str, str]]) -> Markup:
    if not pairs:
        return Markup("")
    rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in pairs)
    return Markup(f"<dl>{rows}</dl>")


def _actions(links: Sequence[tuple[str, str]]) -> Markup:
    if not links:
        return Markup("")
    buttons = "".join(
        f'<a class="button" href="{escape(href)}">{escape(label)}</a>' for href, label in links
    )
    return Markup(f'<p class="actions">{buttons}</p>')


def _utf8(text: str) -> bytes:
    return _SURROGATE.sub("\ufffd", text).encode("utf-8")


def _html_response(status: int, html: str) -> Response:
    response = Response(_utf8(html), status=status, content_type="text/html", charset="utf-8")
    response.headerlist.extend(SECURITY_HEADERS)
    return response


def _error_values(
    status: int,
    heading: str,
    lines: Sequence[str],
    links: Sequence[tuple[str, str]],
    details: Sequence[tuple[str, str]],
) -> dict[str, object]:
    first_url, first_label = links[0] if links else ("", "")
    return {
        "status": status,
        "heading": heading,
        "message": _paragraphs(lines),
        "details": _details(details),
        "actions": _actions(links),
        "action_url": first_url,
        "action_label": first_label,
    }


# --- the pages ------------------------------------------------------------------------------------


class Pages:
    """The gate's pages for one configuration: language, site name and templates."""

    def __init__(self, settings: Settings) -> None:
        self.templates = load_templates(settings.templates_dir)
        self.language = settings.language
        self.site_name = settings.site_name

    def language_for(self, environ: Environ) -> str:
        return i18n.choose(environ, self.language)

    def sign_in(self, environ: Environ, login_url: str) -> Response:
        lang = self.language_for(environ)
        return self._page(
            environ,
            200,
            "sign_in.html",
            i18n.text(lang, "sign_in.title"),
            heading=i18n.text(lang, "sign_in.heading", site=self.site(environ)),
            intro=i18n.text(lang, "sign_in.intro"),
            button_label=i18n.text(lang, "sign_in.button"),
            login_url=login_url,
            shared=i18n.text(lang, "sign_in.shared"),
            qq_logo=QQ_LOGO,
        )

    def signed_out(self, environ: Environ, sign_in_url: str) -> Response:
        lang = self.language_for(environ)
        return self._page(
            environ,
            200,
            "signed_out.html",
            i18n.text(lang, "signed_out.title"),
            heading=i18n.text(lang, "signed_out.title"),
            message=i18n.text(lang, "signed_out.message"),
            sign_in_url=sign_in_url,
            sign_in_label=i18n.text(lang, "signed_out.again"),
        )

    def confirm_sign_out(self, environ: Environ, sign_out_url: str, cancel_url: str) -> Response:
        """Asks before signing out when another site may have sent the visitor here."""
        lang = self.language_for(environ)
        return self._page(
            environ,
            200,
            "confirm_sign_out.html",
            i18n.text(lang, "confirm_sign_out.title"),
            heading=i18n.text(lang, "confirm_sign_out.title"),
            message=i18n.text(lang, "confirm_sign_out.message"),
            sign_out_url=sign_out_url,
            sign_out_label=i18n.text(lang, "confirm_sign_out.button"),
            cancel_url=cancel_url,
            cancel_label=i18n.text(lang, "confirm_sign_out.cancel"),
        )

    def forbidden(
        self, environ: Environ, openid: str, nickname: str, sign_out_url: str
    ) -> Response:
        lang = self.language_for(environ)
        return self._page(
            environ,
            403,
            "forbidden.html",
            i18n.text(lang, "forbidden.title"),
            heading=i18n.text(lang, "forbidden.title"),
            message=i18n.text(lang, "forbidden.message"),
            openid_label=i18n.text(lang, "forbidden.openid"),
            openid=openid,
            nickname_label=i18n.text(lang, "forbidden.nickname"),
            nickname=nickname,
            sign_out_url=sign_out_url,
            sign_out_label=i18n.text(lang, "forbidden.sign_out"),
        )

    def error(
        self,
        environ: Environ,
        status: int,
        title_key: str,
        message_keys: Sequence[str],
        *,
        action: tuple[str, str] | None = None,
        details: Sequence[tuple[str, str]] = (),
    ) -> Response:
        """An error page: the ``i18n`` keys of its title and message lines, an optional
        ``(url, label key)`` action, and ``(label key, plain value)`` details."""
        lang = self.language_for(environ)
        title = i18n.text(lang, title_key)
        lines = [i18n.text(lang, key) for key in message_keys]
        links = [(action[0], i18n.text(lang, action[1]))] if action else []
        pairs = [(i18n.text(lang, key), value) for key, value in details]
        values = _error_values(status, title, lines, links, pairs)
        return self._page(environ, status, "error.html", title, **values)

    def site(self, environ: Environ) -> str:
        """The configured site_name, or the host the visitor asked for (without the port)."""
        if self.site_name:
            return self.site_name
        host = environ.get("HTTP_HOST") or environ.get("SERVER_NAME", "")
        if host.startswith("["):  # [::1]:8000
            host = host.partition("]")[0] + "]"
        elif host.count(":") == 1:
            host = host.partition(":")[0]
        return str(host)[:MAX_SITE_NAME]

    def _page(
        self, environ: Environ, status: int, name: str, title: str, /, **values: object
    ) -> Response:
        """``name`` inside the layout; ``values`` are that template's variables (one is "status":
        hence the positional-only parameters)."""
        lang = i18n.HTML_LANG[self.language_for(environ)]
        site = self.site(environ)
        content = render(self.templates[name], {"lang": lang, "site_name": site, **values})
        layout = {
            "lang": lang,
            "site_name": site,
            "title": f"{title} · {site}" if site else title,
            "content": Markup(content),
        }
        response = _html_response(status, render(self.templates["layout.html"], layout))
        if self.language == "auto":
            response.headerlist.append(("Vary", "Accept-Language"))
        return response


# --- without a configuration ------------------------------------------------------------------


def html_page(
    status: int,
    title: str,
    message: str,
    *,
    links: Sequence[tuple[str, str]] = (),
    details: Sequence[tuple[str, str]] = (),
    lang: str = "zh-CN",
) -> Response:
    """An HTML page with a title, message lines, optional label/value details and action links,
    in the built-in templates. Prefer :meth:`Pages.error`: it speaks the visitor's language and
    honours ``templates_dir``."""
    values = _error_values(status, title, message.split("\n"), links, details)
    templates = _builtin_templates()
    content = render(templates["error.html"], {"lang": lang, "site_name": "", **values})
    layout = {"lang": lang, "site_name": "", "title": title, "content": Markup(content)}
    return _html_response(status, render(templates["layout.html"], layout))


def json_response(status: int, data: dict[str, Any]) -> Response:
    response = Response(
        _utf8(json.dumps(data, ensure_ascii=False)),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )
    response.headerlist.extend(SECURITY_HEADERS)
    return response
