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
        value = _value_of(pair, name)
        if value is not None:
            values.append(value)
            if len(values) == MAX_VALUES:
                break
    return values


class CookieReader:
    """Reads the cookie ``name`` out of Cookie headers, the first value fast.

    In the usual header (one ``name=value`` pair among others, pairs joined by "; ") only the text
    around the first occurrence of the name is looked at: ``usual`` is that alone, for the hot path.
    Anything unusual (the name inside another cookie's value, odd spacing) takes the general path;
    the answer of ``first`` is always ``cookie_values(header, name)[0]``.

    Nothing is remembered between headers: a memo of headers seen before saved a little while it
    held every active browser's header and cost a little more on every request once it did not.
    """

    __slots__ = ("_plain", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        # A name such as config allows (no white space, "=" or ";"): then "; name=" or a header
        # that starts with "name=" is certainly our pair.
        self._plain = bool(name) and name.strip() == name and "=" not in name and ";" not in name

    def usual(self, header: str) -> str | None:
        """The raw text of the first value (neither stripped nor unquoted) if the header spells our
        pair the usual way: ``name=`` at its start or after "; ", no other occurrence of the name
        before it. Otherwise None, having looked no further."""
        name = self.name
        start = header.find(name)
        if start != 0 and (start < 2 or not header.startswith("; ", start - 2)):
            return None
        after = start + len(name)
        if not (self._plain and header.startswith("=", after)):
            return None
        end = header.find(";", after)
        return header[after + 1 : end] if end >= 0 else header[after + 1 :]

    def first(self, header: str) -> str | None:
        raw = self.usual(header)
        if raw is not None:
            return _unquote(raw.strip())
        name = self.name
        start = header.find(name)
        if start < 0:
            return None
        end = header.find(";", start + len(name))
        if end < 0:
            end = len(header)
        # Any pair named ``name`` holds an occurrence of it, so none comes before this one.
        value = _value_of(header[header.rfind(";", 0, start) + 1 : end], name)
        if value is not None:
            return value
        values = cookie_values(header[end + 1 :], name)
        return values[0] if values else None

    def values(self, header: str) -> list[str]:
        return cookie_values(header, self.name)


def first_cookie_value(header: str, name: str) -> str | None:
    """``cookie_values(header, name)[0]``, or None."""
    return CookieReader(name).first(header) if header else None


def _value_of(pair: str, name: str) -> str | None:
    key, sep, value = pair.partition("=")
    if not sep or key.strip() != name:
        return None
    return _unquote(value.strip())


def _unquote(value: str) -> str:
    return value[1:-1] if len(value) >= 2 and value[0] == value[-1] == '"' else value


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
