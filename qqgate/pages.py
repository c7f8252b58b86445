"""What the gate answers itself: small HTML pages a person can act on, and JSON for API clients.

Every value put into a page is HTML-escaped here, once; callers pass plain text. Pages carry no
external assets and a strict Content-Security-Policy, and are never cached.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from html import escape
from typing import Any

from webob import Response

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

_LAYOUT = """<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
body{{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei",sans-serif;margin:0;
background:#f5f6f8;color:#1f2329;line-height:1.6}}
main{{max-width:30rem;margin:3rem auto;padding:1.5rem;background:#fff;border-radius:8px;
box-shadow:0 1px 4px rgba(0,0,0,.08)}}
h1{{font-size:1.3rem;margin:0 0 .75rem}}
p{{margin:.5rem 0}}
dl{{margin:1rem 0}} dt{{font-weight:600}} dd{{margin:0 0 .5rem;word-break:break-all}}
a.button{{display:inline-block;margin:.75rem .75rem 0 0;padding:.5rem 1rem;border-radius:4px;
background:#0b6bcb;color:#fff;text-decoration:none}}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
{body}
</main>
</body>
</html>
"""


def html_page(
    status: int,
    title: str,
    message: str,
    *,
    links: Sequence[tuple[str, str]] = (),
    details: Sequence[tuple[str, str]] = (),
) -> Response:
    """An HTML page with a title, a message, optional label/value details and action links."""
    body = [f"<p>{escape(line)}</p>" for line in message.split("\n") if line]
    if details:
        rows = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in details)
        body.append(f"<dl>{rows}</dl>")
    body += [
        f'<a class="button" href="{escape(href)}">{escape(label)}</a>' for href, label in links
    ]
    html = _LAYOUT.format(title=escape(title), body="\n".join(body))
    response = Response(html, status=status, content_type="text/html", charset="utf-8")
    response.headerlist.extend(SECURITY_HEADERS)
    return response


def json_response(status: int, data: dict[str, Any]) -> Response:
    response = Response(
        json.dumps(data, ensure_ascii=False),
        status=status,
        content_type="application/json",
        charset="utf-8",
    )
    response.headerlist.extend(SECURITY_HEADERS)
    return response
