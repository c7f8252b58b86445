"""``{prefix}/ready``: whether this gate can serve, for a load balancer or an orchestrator.

Ready means the configuration loaded (the gate would not exist otherwise) and, in proxy mode, the
upstream accepts a TCP connection within ``CONNECT_TIMEOUT``. ``ping`` stays the liveness check:
it never touches the network, so a slow upstream never gets a healthy gate restarted.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

CONNECT_TIMEOUT = 2.0  # seconds: a readiness probe must answer well within its own timeout


def upstream_problem(upstream: str | None, timeout: float = CONNECT_TIMEOUT) -> str | None:
    """Why ``upstream`` cannot be reached, or None when it accepts a connection (or is None)."""
    if upstream is None:
        return None
    parts = urlsplit(upstream)
    host = parts.hostname or ""
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"upstream {host}:{port} did not accept a connection within {timeout:g} s"
    except OSError as exc:
        return (
            f"upstream {host}:{port} refused or unreachable: {exc.strerror or type(exc).__name__}"
        )
