"""Proxy mode: the gate in front of any HTTP app.

``proxy`` is the WSGI app the gate wraps (``UpstreamProxy``): it frames each request from what it
knows and relays the answer; ``http1`` is its HTTP/1.1 client (the request writer, llhttp for the
answers, reuse rules) and ``pool`` the kept-alive connections; ``bodies`` holds the WSGI iterables
of bodies that must end cleanly or not at all; ``tunnel`` carries WebSockets.
"""

from ..origins import OriginPolicy
from .proxy import UpstreamProxy

__all__ = ["OriginPolicy", "UpstreamProxy"]
