"""Reading one cookie out of a Cookie header, and writing Set-Cookie headers.

We do not use ``http.cookies.SimpleCookie``: it drops *every* cookie when one of them is malformed,
so a stray cookie set by another app on the domain would sign the user out. Here each ``name=value``
pair is looked at on its own, the work is linear in the header's length, and at most a few values
of our name are returned (a client may send several cookies with the same name).
"""

from __future__ import annotations

MAX_VALUES = 4


def cookie_values(header: str, name: str) -> list[str]:
    """Every value of cookie ``name`` in a Cookie header, first ones first, at most MAX_VALUES."""
    if not header or name not in header:
        return []
    values = []
    for pair in header.split(";"):
        key, sep, value = pair.partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            values.append(value)
            if len(values) == MAX_VALUES:
                break
    return values


def set_cookie(
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = "/",
    domain: str | None = None,
    secure: bool = True,
    samesite: str = "lax",
) -> tuple[str, str]:
    """A ``Set-Cookie`` header for an HttpOnly cookie. ``max_age=0`` deletes it."""
    parts = [f"{name}={value}", f"Max-Age={max_age}", f"Path={path}"]
    if max_age == 0:
        parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
    if domain:
        parts.append(f"Domain={domain}")
    if secure:
        parts.append("Secure")
    parts.append("HttpOnly")
    parts.append(f"SameSite={samesite.capitalize()}")
    return ("Set-Cookie", "; ".join(parts))
