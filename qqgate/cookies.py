"""Reading one cookie out of a Cookie header, and writing Set-Cookie headers.

We do not use ``http.cookies.SimpleCookie``: it drops *every* cookie when one of them is malformed,
so a stray cookie set by another app on the domain would sign the user out. Here each ``name=value``
pair is looked at on its own and the work is linear in the header's length (which the server
bounds). Every value of our name is returned, once each: a client may send several cookies of one
name (other paths, parent domains), and junk in front must not hide a valid one behind it.
"""

from __future__ import annotations


def cookie_values(header: str, name: str) -> list[str]:
    """Every distinct value of cookie ``name`` in a Cookie header, first ones first."""
    if not header or name not in header:
        return []
    values: dict[str, None] = {}
    for pair in header.split(";"):
        value = _value_of(pair, name)
        if value is not None:
            values[value] = None
    return list(values)


# What may follow a cookie's name in its pair: "=" (perhaps after blanks), or nothing at the end.
_NAME_ENDS = frozenset({"", "=", " ", "\t"})


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
        """The raw text of our value (neither stripped nor unquoted) if the header spells our pair
        the usual way, ``name=`` at its start or after "; ", and the name occurs nowhere else in
        it (so this is the only cookie of our name). Otherwise None."""
        name = self.name
        start = header.find(name)
        if start != 0 and (start < 2 or not header.startswith("; ", start - 2)):
            return None
        after = start + len(name)
        if not (self._plain and header.startswith("=", after)):
            return None
        end = header.find(";", after)
        if end < 0:
            return header[after + 1 :]
        # A second cookie of our name must not go unseen: the general path weighs them all. An
        # occurrence followed by another name character is a longer name (our own state cookie,
        # sent beside the session for ten minutes after each sign-in), not ours.
        size = len(name)
        again = header.find(name, end)
        while again >= 0:
            follows = header[again + size : again + size + 1]
            if follows in _NAME_ENDS:
                return None
            again = header.find(name, again + size)
        return header[after + 1 : end]

    def first(self, header: str) -> str | None:
        """``cookie_values(header, name)[0]``, or None."""
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


def cookie_place(set_cookie_value: str) -> tuple[str, str, str]:
    """The name, path and domain of a Set-Cookie value: a browser keeps one cookie per place."""
    name, path, domain = set_cookie_value.partition("=")[0].strip(), "/", ""
    for attribute in set_cookie_value.split(";")[1:]:
        key, _, value = attribute.strip().partition("=")
        if key.lower() == "path":
            path = value
        elif key.lower() == "domain":
            domain = value.lower().lstrip(".")
    return name, path, domain


def parent_domains(host: str) -> list[str]:
    """The domains above ``host`` a cookie may be set for (``a.b.example.com``: ``b.example.com``,
    ``example.com``); none for an IP address or a one-label name."""
    labels = host.lower().split(".")
    if len(labels) < 3 or labels[-1].isdigit() or ":" in host:
        return []
    return [".".join(labels[i:]) for i in range(1, len(labels) - 1)]


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
