"""The development provider's settings from FAKEQQ_* environment variables, for
``gunicorn 'qqgate.dev.fakeqq:create_app()'``:

- FAKEQQ_APP_ID, FAKEQQ_APP_KEY: the one app it knows;
- FAKEQQ_REDIRECT_URI: the app's registered callback(s), space-separated, matched exactly as QQ
  does (without one, every sign-in stops at "redirect uri is illegal(100010)");
- FAKEQQ_UNIONID: ``true`` if the app was granted unionid (otherwise ``/me?unionid=1`` answers
  100048, as QQ does);
- FAKEQQ_LATENCY_MS (``"0-200"``), FAKEQQ_EXTRA_USERS (a count), FAKEQQ_FAULTS
  (``"token=http500,me=other_client"``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .fakeqq_users import DEFAULT_USERS, numbered_users

DEFAULT_APP_ID = "101000001"
DEFAULT_APP_KEY = "fake-app-key-0123456789abcdef"


def options_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """Keyword arguments for ``FakeQQ``; ValueError naming the variable for a bad value."""
    app_id = env.get("FAKEQQ_APP_ID", DEFAULT_APP_ID)
    unionid = env.get("FAKEQQ_UNIONID", "false").strip().lower()
    if unionid not in ("true", "false", "1", "0", "yes", "no"):
        raise ValueError(f"FAKEQQ_UNIONID must be true or false, not {unionid!r}")
    return {
        "apps": {app_id: env.get("FAKEQQ_APP_KEY", DEFAULT_APP_KEY)},
        "callbacks": {app_id: env.get("FAKEQQ_REDIRECT_URI", "").split()},
        "unionid_apps": [app_id] if unionid in ("true", "1", "yes") else [],
        "users": DEFAULT_USERS + numbered_users(int(env.get("FAKEQQ_EXTRA_USERS", "0"))),
        "latency": parse_latency(env.get("FAKEQQ_LATENCY_MS", "0")),
        "faults": parse_faults(env.get("FAKEQQ_FAULTS", "")),
    }


def parse_latency(value: str) -> tuple[float, float]:
    """``"0-200"`` milliseconds -> ``(0.0, 0.2)`` seconds; ``"50"`` means exactly 50 ms."""
    low, _, high = value.strip().partition("-")
    try:
        bounds = (float(low or 0) / 1000, float(high or low or 0) / 1000)
    except ValueError:
        raise ValueError(f"FAKEQQ_LATENCY_MS must look like '0-200', not {value!r}") from None
    if not 0 <= bounds[0] <= bounds[1]:
        raise ValueError(f"FAKEQQ_LATENCY_MS must be 'min-max' with min <= max, not {value!r}")
    return bounds


def parse_faults(value: str) -> dict[str, str]:
    """``"token=http500,me=other_client"`` -> ``{"token": "http500", "me": "other_client"}``."""
    faults = {}
    for item in filter(None, (part.strip() for part in value.split(","))):
        endpoint, sep, fault = item.partition("=")
        if not sep:
            raise ValueError(f"FAKEQQ_FAULTS items must be endpoint=fault, not {item!r}")
        faults[endpoint.strip()] = fault.strip()
    return faults
