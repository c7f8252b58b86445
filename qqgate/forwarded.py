"""The visitor's address behind reverse proxies: ``trusted_proxies`` and ``X-Forwarded-For``.

Behind nginx every request comes from nginx's address; the visitor's is the one nginx appended to
``X-Forwarded-For``. That header is client-written text, though: a visitor can put any address in
it, and every proxy on the way only appends. So the header is read only when the request came from
a trusted proxy, and then walked from the right past every trusted hop (as nginx's
``real_ip_recursive`` and werkzeug's ``ProxyFix`` do): the first address that is not a trusted
proxy is the visitor. From any other source the header is ignored.

The address is used for log lines only (the gate's events and the access log): it never decides
access.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
MAX_HOPS = 32  # a longer header is walked only this far from the right


class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` the gate believes."""

    def __init__(self, networks: Iterable[IPNetwork]) -> None:
        self.networks = tuple(networks)

    def __bool__(self) -> bool:
        return bool(self.networks)

    def trusts(self, address: str) -> bool:
        return address_in(address, self.networks)

    def client(self, environ: Mapping[str, Any]) -> str:
        """The visitor's address: the peer, or past trusted hops in ``X-Forwarded-For``."""
        address = str(environ.get("REMOTE_ADDR") or "-")
        if not self.trusts(address):
            return address
        hops = str(environ.get("HTTP_X_FORWARDED_FOR", "")).split(",")
        for hop in reversed(hops[-MAX_HOPS:]):
            ip = _ip(hop.strip())
            if ip is None:
                break  # garbage: the last proxy that passed it on is all we know
            address = str(ip)
            if not any(ip in network for network in self.networks):
                break
        return address


def address_in(address: str, networks: Iterable[IPNetwork]) -> bool:
    ip = _ip(address)
    return ip is not None and any(ip in network for network in networks)


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip("[]"))
    except ValueError:
        return None
