"""Reading one cookie out of a Cookie header, and writing Set-Cookie headers.

We do not use ``http.cookies.SimpleCookie``: it drops *every* cookie when one of them is malformed,
so a stray cookie set by another app on the domain would sign the user out. Here each ``name=value``
pair is looked at on its own, the work is linear in the header's length, and at most a few values
of our name are returned (a client may send several cookies with the same name).
"""

from __future__ import annotations

MAX_VALUES = 4
MEMO_SIZE = 512  # Cookie headers a CookieReader remembers (with the cap below, ~2 MiB at most)
MEMO_MAX_HEADER = 2048


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

    A browser sends the same Cookie header request after request, so ``first`` remembers its
    answer for the last few hundred headers (those up to 2 KiB that hold the name): a header seen
    before costs one dict lookup. Otherwise, in the usual header (one ``name=value`` pair among
    others) only the text around the first occurrence of the name is looked at. Anything unusual
    (the name inside another cookie's value, odd spacing) takes the general path; the answer is
    always ``cookie_values(header, name)[0]``, a pure function of the header.
    """

    __slots__ = ("_memo", "_plain", "name", "remembered")

    def __init__(self, name: str) -> None:
        self.name = name
        # A name such as config allows (no white space, "=" or ";"): then "; name=" or a header
        # that starts with "name=" is certainly our pair.
        self._plain = bool(name) and name.strip() == name and "=" not in name and ";" not in name
        self._memo: dict[str, str] = {}
        # The memo alone: the first value for a header seen before, else None (no parsing).
        self.remembered = self._memo.get

    def first(self, header: str) -> str | None:
        value = self._memo.get(header)
        if value is None:
            value = self._first(header)
            if value is not None and len(header) <= MEMO_MAX_HEADER:
                if len(self._memo) >= MEMO_SIZE:
                    self._memo.clear()  # crude but O(1) per request, and rarely needed
                self._memo[header] = value
        return value

    def _first(self, header: str) -> str | None:
        name = self.name
        start = header.find(name)
        if start < 0:
            return None
        after = start + len(name)
        end = header.find(";", after)
        if end < 0:
            end = len(header)
        # The usual spelling: "name=value" at the start, or after "; ".
        if (
            self._plain
            and header.startswith("=", after)
            and (start == 0 or header.startswith("; ", start - 2))
        ):
            return _unquote(header[after + 1 : end].strip())
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
