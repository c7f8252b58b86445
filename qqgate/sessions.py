"""``Sessions``: the one place where a visitor's session and pending logins are read, written and
cleared, and where the allow-list is checked.

Both live in signed cookies (``qqgate.session`` signs, verifies and caches them; ``qqgate.cookies``
reads and writes cookie headers). The middleware asks ``load`` on every request; the routes ask
``identify``, ``issue``, ``clear`` and the pending-login calls. ``load`` keeps the usual signed-in
request cheap: our cookie spelled the usual way, its token verified before and unexpired, costs a
scan of the header and one dict lookup, whatever the number of users; anything else takes the full
path.

Several cookies of our name (another path, a parent domain: cookie tossing from a sibling site)
never let the first one choose who is signed in. The full path verifies every one of them: if
those that verify name different users, nobody is signed in, and the answer clears the copies it
can name (``tossed_cookies``). The same rule holds for the pending-login cookie, where copies that
differ mean no pending login at all, so a tossed state cannot steer a callback. The hot path only
ever answers for a header that holds our name once.

Sessions slide: a signed-in request whose token is ``session_refresh`` old is marked (``REFRESH``)
and its answer gets a fresh cookie (``refreshing``), of the same session. The hot path tells by the
same one comparison as before, against the entry's ``refresh_at`` instead of its expiry, so the
usual signed-in request pays nothing for it.

With a ``session_store`` (``qqgate.sessionstore``), sessions can be revoked on every gate host: the
hot path then also asks whether the user has any revocation (one dict lookup in memory; never the
network), and a cookie of a revoked session is treated as no cookie.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlsplit

from . import logs, metrics, revocations, wsgiutil
from .allowlist import AllowList
from .config import Settings
from .cookies import CookieReader, cookie_place, cookie_values, parent_domains, set_cookie
from .headers import IdentityHeaders
from .session import (
    ROUND_TRIP_LIMIT,
    STATE_MAX_AGE,
    Identity,
    PendingLogin,
    SessionCodec,
    StateCodec,
    VerifiedToken,
    take_pending,
)
from .sessionstore import RedisStore, namespace
from .tokencache import MIB
from .wsgiutil import Environ, StartResponse

CACHE_HIT_BATCH = 100  # cache hits are passed to the metrics this many at a time,
CACHE_HIT_SECONDS = 1.0  # or with the first hit this long after the last time
MAX_STATE_COOKIE = 3800  # bytes of cookie value, leaving room for the name and attributes
# environ keys: which of our cookies came in several verifying copies that disagree
TOSSED_SESSION = "qqgate.tossed_session"
TOSSED_STATE = "qqgate.tossed_state"
# environ key: the session whose cookie this request's answer re-issues (sliding sessions)
REFRESH = "qqgate.refresh_session"

log = logging.getLogger("qqgate")


class Sessions:
    """Sessions and pending logins of the visitors of one gate."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], float] = time.time,
        headers: IdentityHeaders | None = None,
    ) -> None:
        self.settings = settings
        # What an identity becomes (environ entries, request headers), cached with its token.
        headers = headers or IdentityHeaders(settings)
        self.codec = SessionCodec(
            settings.secret_keys,
            settings.session_max_age,
            clock,
            max_lifetime=settings.session_max_lifetime,
            refresh=settings.session_refresh,
            cache_bytes=settings.token_cache_mib * MIB,
            render=headers.environ,
            render_headers=headers.headers,
        )
        self.states = StateCodec(settings.secret_keys, clock)
        self._cookies = CookieReader(settings.cookie_name)
        self._usual = self._cookies.usual
        self.cache = self.codec.cache  # its hits, misses and hit_ratio are the gate's
        self._cached = self.cache.peek
        self.allow_list = AllowList(settings, clock)
        self.restricted = self.allow_list.restricted  # False: everyone signed in is allowed
        self._clock = clock
        self._hits_counted = self._misses_counted = 0  # the cache's counts the metrics have
        self._count_at = 0.0  # when hits are passed on at the latest (with the next hit)
        self.store: RedisStore | None = None
        self._revoked: dict[str, revocations.Revoked] = {}  # openids with revocations
        if settings.session_store:
            self.store = RedisStore(settings.session_store, namespace(settings), clock)
            self._revoked = self.store.revocations.by_openid  # kept current in place
            self.store.start()

    # --- the session --------------------------------------------------------------------------

    def load(self, environ: Environ) -> VerifiedToken | None:
        """This request's verified session (identity and rendered environ), or None."""
        cookie = environ.get("HTTP_COOKIE")
        if cookie is None:
            return None
        token = self._usual(cookie)
        if token is not None:
            session = self._cached(token)  # a cached token has neither spaces nor quotes
            now = self._clock()
            if (
                session is not None
                and session.refresh_at > now  # refresh_at <= expires
                and session.identity.openid not in self._revoked
            ):
                cache = self.cache
                cache.hits += 1
                # Passed to the metrics in batches: a metric update costs more than the rest of
                # this path (prometheus_client, multiprocess mode: about 2.5 µs).
                if now >= self._count_at or cache.hits - self._hits_counted >= CACHE_HIT_BATCH:
                    self._count_cache_lookups()
                return session
        return self._load(environ, cookie)

    def _load(self, environ: Environ, cookie: str) -> VerifiedToken | None:
        try:
            verify = self.codec.verify
            found = map(verify, self._cookies.values(cookie))
            sessions = [s for s in found if s is not None and not self.revoked(s)]
            if len({session.identity.openid for session in sessions}) > 1:
                _tossed(environ, TOSSED_SESSION, "session_cookies_disagree")
                return None
            if not sessions:
                return None
            if sessions[0].refresh_at <= self._clock():
                environ[REFRESH] = sessions[0]
            return sessions[0]
        finally:
            self._count_cache_lookups()  # a miss is rare and costly anyway: passed on at once

    def _count_cache_lookups(self) -> None:
        """Pass the cache's hits and misses since the last time to the metrics."""
        cache = self.cache
        hits, misses = cache.hits - self._hits_counted, cache.misses - self._misses_counted
        self._hits_counted, self._misses_counted = cache.hits, cache.misses
        self._count_at = self._clock() + CACHE_HIT_SECONDS
        counter = metrics.get().token_cache
        if hits:
            counter.labels("hit").inc(hits)
        if misses:
            counter.labels("miss").inc(misses)

    def revoked(self, session: VerifiedToken) -> bool:
        """Whether ``session`` was revoked (always False without a session store)."""
        return self.store is not None and self.store.revocations.refuses(session)

    def revoke(self, session: VerifiedToken, *, everywhere: bool = False) -> bool:
        """Revoke ``session`` (with ``everywhere``, every session of its user signed in until
        now) on every gate host; False if the store could not take it now (this process refuses
        it at once; the store gets it when it is back)."""
        if self.store is None:
            return False
        identity = session.identity
        lifetime = self.settings.session_max_lifetime
        if everywhere:
            now = int(self._clock())
            field, value = revocations.user_field(identity.openid), f"{now} {now + lifetime}"
        else:
            field = revocations.session_field(identity.openid, session.session_id)
            value = str(identity.signed_in_at + lifetime)
        return self.store.revoke(field, value)

    def identify(self, environ: Environ) -> Identity | None:
        """Who is signed in on this request, or None."""
        session = self.load(environ)
        return None if session is None else session.identity

    def allowed(self, identity: Identity) -> bool:
        """Whether ``identity`` may pass: on the allow-list (``qqgate.allowlist``), or there is
        none."""
        return self.allow_list.allows(identity)

    def issue(self, identity: Identity) -> tuple[str, str]:
        """The Set-Cookie header of a new session for ``identity``."""
        return self._session_cookie(self.codec.dumps(identity))

    def refreshing(self, environ: Environ, start_response: StartResponse) -> StartResponse:
        """``start_response`` adding a re-issued session cookie (``REFRESH``) to the answer,
        unless the answer sets our cookie itself."""
        session: VerifiedToken = environ[REFRESH]

        def start(status: str, headers: list[tuple[str, str]], *exc_info: object) -> object:
            name = self.settings.cookie_name + "="
            if not any(k.lower() == "set-cookie" and v.startswith(name) for k, v in headers):
                headers = [*headers, self.reissue(session)]
            return start_response(status, headers, *exc_info)

        return start  # type: ignore[return-value]

    def reissue(self, session: VerifiedToken) -> tuple[str, str]:
        """The Set-Cookie header of a fresh token of ``session``, issued now."""
        token, expires = self.codec.reissue(session)
        return self._session_cookie(token, max_age=max(0, expires - int(self._clock())))

    def clear(self) -> tuple[str, str]:
        """The Set-Cookie header that ends the session in this browser."""
        return self._session_cookie("", max_age=0)

    def tossed_cookies(self, environ: Environ) -> list[tuple[str, str]]:
        """Set-Cookie headers deleting every copy of our cookies that this request found in
        disagreement, at each place we can name: host-only, ``cookie_domain`` and the parent
        domains of ``redirect_uri``'s host; ``Path=/`` and the state cookie's path."""
        s = self.settings
        names = [s.cookie_name] if TOSSED_SESSION in environ else []
        names += [s.state_cookie_name] if TOSSED_STATE in environ else []
        if s.cookie_name.startswith("__Host-"):
            domains: list[str | None] = [None]  # the only place such a cookie can be
        else:
            host = urlsplit(s.redirect_uri).hostname or ""
            domains = [None, *dict.fromkeys([s.cookie_domain or host, *parent_domains(host)])]
        paths = dict.fromkeys(["/", self._state_path])
        return [
            set_cookie(name, "", max_age=0, path=path, domain=domain, secure=s.cookie_secure)
            for name in names
            for path in paths
            for domain in domains
        ]

    def clearing_tossed(self, environ: Environ, start_response: StartResponse) -> StartResponse:
        """``start_response`` adding ``tossed_cookies`` to the answer, if there are any by then."""

        def start(status: str, headers: list[tuple[str, str]], *exc_info: object) -> object:
            if TOSSED_SESSION in environ or TOSSED_STATE in environ:
                # Never delete what this answer sets (a fresh sign-in, a new pending login).
                kept = {cookie_place(v) for k, v in headers if k.lower() == "set-cookie"}
                deletions = self.tossed_cookies(environ)
                headers = [*headers, *(h for h in deletions if cookie_place(h[1]) not in kept)]
            return start_response(status, headers, *exc_info)

        return start  # type: ignore[return-value]

    def _session_cookie(self, value: str, max_age: int | None = None) -> tuple[str, str]:
        s = self.settings
        return set_cookie(
            s.cookie_name,
            value,
            max_age=s.session_max_age if max_age is None else max_age,
            domain=s.cookie_domain,
            secure=s.cookie_secure,
            samesite=s.cookie_samesite,
        )

    # --- pending logins -----------------------------------------------------------------------

    def pending(self, environ: Environ) -> list[PendingLogin]:
        """This browser's pending logins (started, not yet back from QQ)."""
        return self._state(environ)[0]

    def looping(self, environ: Environ) -> bool:
        """Whether this browser came back from QQ ``ROUND_TRIP_LIMIT`` times within
        ``ROUND_TRIP_WINDOW`` and still has no session: it is not keeping the session cookie
        (wrong cookie_domain, Secure over plain http, cookies blocked), and another trip to QQ
        would only go round again. The count lives in the signed pending-login cookie, which such
        a browser does keep (one that keeps no cookie at all fails the state check at once)."""
        returns = self._state(environ)[1]
        return len(returns) >= ROUND_TRIP_LIMIT and self.load(environ) is None

    def forget_returns(self, environ: Environ) -> tuple[str, str] | None:
        """On sign-out: the Set-Cookie header that resets ``looping``'s count (pending logins
        stay), or None when there is nothing to reset. Signing out and in again is no loop."""
        pending, returns = self._state(environ)
        return self._state_cookie(pending) if returns else None

    def _state(self, environ: Environ) -> tuple[list[PendingLogin], list[int]]:
        cookie = environ.get("HTTP_COOKIE", "")
        tokens = cookie_values(cookie, self.settings.state_cookie_name)
        found = [state for state in map(self.states.load, tokens) if state[0] or state[1]]
        if any(state != found[0] for state in found[1:]):
            _tossed(environ, TOSSED_STATE, "state_cookies_disagree")
            return [], []
        return found[0] if found else ([], [])

    def add_pending(self, environ: Environ, state: str, next_url: str) -> tuple[str, str]:
        """The Set-Cookie header that adds a pending login for ``state`` to this browser's."""
        pending, returns = self._state(environ)
        return self._state_cookie([*pending, self.states.new(state, next_url)], returns)

    def take_pending(
        self, environ: Environ, state: str
    ) -> tuple[PendingLogin | None, tuple[str, str]]:
        """The pending login of ``state`` (single use: it is removed), and the Set-Cookie header
        of the ones that remain, with this return from QQ counted for ``looping``."""
        pending, returns = self._state(environ)
        entry = take_pending(pending, state)
        if entry is not None:
            returns = [*returns, int(self._clock())][-ROUND_TRIP_LIMIT:]
        return entry, self._state_cookie([p for p in pending if p is not entry], returns)

    def _state_cookie(
        self, pending: list[PendingLogin], returns: list[int] | None = None
    ) -> tuple[str, str]:
        s = self.settings
        returns = returns or []
        # The return from QQ is a cross-site navigation: a Strict cookie would not come back.
        samesite = "none" if s.cookie_samesite == "none" else "lax"
        value = self.states.dumps(pending, returns) if pending or returns else ""
        # Browsers silently drop a cookie over 4096 bytes: the oldest pending logins go first.
        while len(pending) > 1 and len(value) > MAX_STATE_COOKIE:
            pending = pending[1:]
            value = self.states.dumps(pending, returns)
        return set_cookie(
            s.state_cookie_name,
            value,
            max_age=STATE_MAX_AGE if value else 0,
            path=self._state_path,
            domain=s.cookie_domain,
            secure=s.cookie_secure,
            samesite=samesite,
        )

    @property
    def _state_path(self) -> str:
        # A __Host- cookie must have Path=/ (browsers refuse it otherwise).
        s = self.settings
        return "/" if s.cookie_name.startswith("__Host-") else s.mount + s.prefix


def _tossed(environ: Environ, key: str, reason: str) -> None:
    """Mark ``environ`` as holding copies of our cookie that disagree, once, and log it."""
    if key not in environ:
        environ[key] = True
        client = wsgiutil.client_address(environ)
        logs.event(log, logging.WARNING, "cookies refused", reason=reason, client=client)
