"""``VendorClient``: the requests session every connector call goes through.

It owns what connectors must not re-implement: base URL joining (configurable, so tests and the
demo aim at loopback sandboxes), timeouts, a user agent, auth headers and renewal, pacing, retries
with exponential backoff and jitter on idempotent calls, ``Retry-After``, error classification into
:mod:`leadbridge.errors`, exact call counting and redacted debug summaries.
"""

from __future__ import annotations

import json as jsonlib
import logging
import random
import threading
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode, urljoin, urlsplit, urlunsplit

import requests
from urllib3.exceptions import NewConnectionError

from .. import __version__
from .. import clock as clocks
from ..errors import (
    AuthError,
    ConfigError,
    LeadbridgeError,
    QuotaExhausted,
    RateLimited,
    RecordError,
    TokenExpired,
    TransientError,
)
from ..types import RateUsage
from .auth import Auth
from .pacing import Pacer
from .redact import known_secrets, redact_headers, redact_text

log = logging.getLogger(__name__)

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
USER_AGENT = f"leadbridge/{__version__} (+https://github.com/leadbridge/leadbridge)"


@dataclass(slots=True)
class Exchange:
    """A redacted summary of one request/response pair, for the debug log."""

    method: str
    url: str
    status: int | None
    duration_ms: int
    request: str
    response: str


@dataclass(slots=True)
class CallStats:
    """Exact counts of what went over the wire (benchmarks and tests read these)."""

    calls: int = 0
    retries: int = 0
    rate_limited: int = 0
    renewals: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)

    def count(self, method: str, path: str, endpoint: str | None = None) -> None:
        self.calls += 1
        self.by_endpoint[f"{endpoint} {method} {path}" if endpoint else f"{method} {path}"] += 1

    def calls_to(self, endpoint: str | None) -> int:
        """Calls to one named endpoint (``None``: the main API)."""
        if endpoint is None:
            return sum(n for key, n in self.by_endpoint.items() if key.split(" ", 1)[0].isupper())
        return sum(n for key, n in self.by_endpoint.items() if key.startswith(f"{endpoint} "))


ClassifyError = Callable[[requests.Response], LeadbridgeError | None]
ReadRateLimits = Callable[[requests.Response], RateUsage | None]


class VendorClient:
    """HTTP client for one connection's vendor API.

    :param base_url: the vendor's API root; relative paths are joined to it.
    :param auth: renews and supplies credentials; ``None`` for unauthenticated calls (token endpoints).
    :param classify_error: the connector's ``classify_error`` hook, bound to the connection.
    :param read_rate_limits: the connector's ``read_rate_limits`` hook, bound to the connection.
    :param on_exchange: receives a redacted :class:`Exchange` per call (debug mode).
    :param endpoint: the name of the :class:`~leadbridge.metadata.Endpoint` this client talks to
        (calls are counted under it); ``None`` for the connector's main API.
    :param endpoints: builds the client of a named endpoint (the core passes it; see :meth:`endpoint`).
    :param override: the operator's base-URL override (sandboxes, tests, the demo): every request,
        to whichever vendor host the connector names, goes to this origin instead, path kept. The
        connector always builds its real vendor URLs; only the core redirects them.
    """

    def __init__(
        self,
        base_url: str,
        *,
        auth: Auth | None = None,
        pacer: Pacer | None = None,
        classify_error: ClassifyError | None = None,
        read_rate_limits: ReadRateLimits | None = None,
        on_exchange: Callable[[Exchange], None] | None = None,
        timeout: float = 30.0,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        max_retry_after: float = 300.0,
        session: requests.Session | None = None,
        stats: CallStats | None = None,
        sleep: Callable[[float], None] | None = None,
        override: str | None = None,
        endpoint: str | None = None,
        endpoints: Callable[[str], VendorClient] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        #: the named endpoint this client talks to (``None``: the connector's main API)
        self.endpoint_name = endpoint
        self._endpoint_factory = endpoints
        self._endpoint_clients: dict[str, VendorClient] = {}
        self.override = _checked_override(override)
        self.auth = auth
        self.pacer = pacer or Pacer()
        self.classify_error = classify_error
        self.read_rate_limits = read_rate_limits
        self.on_exchange = on_exchange
        self.timeout = timeout
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.max_retry_after = max_retry_after
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.stats = stats or CallStats()
        self._sleep = sleep or clocks.sleep
        self._local = threading.local()
        self._run_caches: dict[str, dict[Any, Any]] = {}
        self._run_caches_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"VendorClient({self.base_url!r})"

    def unauthenticated(self, base_url: str | None = None) -> VendorClient:
        """A client sharing pacing and stats but sending no credentials (for token endpoints).

        ``base_url`` aims it at another host of the same vendor (a login host); the connector must
        have built that URL from validated settings, never from free text.
        """
        return self._derived(base_url or self.base_url, auth=None)

    def with_auth(self, auth: Auth | None) -> VendorClient:
        """The same client (session, pacer, stats, hooks, caches) sending ``auth``'s credentials."""
        return self._derived(self.base_url, auth=auth)

    def _derived(self, base_url: str, *, auth: Auth | None) -> VendorClient:
        derived = VendorClient(
            base_url,
            auth=auth,
            pacer=self.pacer,
            classify_error=self.classify_error,
            read_rate_limits=self.read_rate_limits,
            on_exchange=self.on_exchange,
            timeout=self.timeout,
            max_attempts=self.max_attempts,
            backoff_base=self.backoff_base,
            backoff_cap=self.backoff_cap,
            max_retry_after=self.max_retry_after,
            session=self.session,
            stats=self.stats,
            sleep=self._sleep,
            override=self.override,
            endpoint=self.endpoint_name,
            endpoints=self._endpoint_factory,
        )
        derived._run_caches, derived._run_caches_lock = self._run_caches, self._run_caches_lock
        derived._endpoint_clients = self._endpoint_clients
        return derived

    def endpoint(self, name: str) -> VendorClient:
        """The client of the connection's named endpoint ``name`` (a second vendor API, such as
        Maileon beside Pipedrive): its own base URL, credentials, pacer, error rules and call
        counts, the same run caches, debug log and base-URL override. Built once per client."""
        with self._run_caches_lock:
            found = self._endpoint_clients.get(name)
        if found is not None:
            return found
        if self._endpoint_factory is None:
            raise ConfigError(f"this client has no endpoint {name!r}")
        built = self._endpoint_factory(name)  # outside the lock: it reads the database and the vault
        built._run_caches, built._run_caches_lock = self._run_caches, self._run_caches_lock
        built._endpoint_clients = self._endpoint_clients
        with self._run_caches_lock:
            return self._endpoint_clients.setdefault(name, built)

    def run_cache(self, name: str) -> dict[Any, Any]:
        """A dict named ``name`` that lives exactly as long as this client.

        The core builds one client per run (and per panel request), so this is where a connector
        keeps lookups a run repeats (account ids by name, a schema read once): they never leak into
        the next run, which sees what the admin changed meanwhile. Clients derived from this one
        (:meth:`unauthenticated`, :meth:`with_auth`) share the caches.
        """
        with self._run_caches_lock:
            return self._run_caches.setdefault(name, {})

    # -- convenience verbs -------------------------------------------------------------------

    def get(self, path: str, **kw: Any) -> requests.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, **kw: Any) -> requests.Response:
        return self.request("POST", path, **kw)

    def put(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PUT", path, **kw)

    def patch(self, path: str, **kw: Any) -> requests.Response:
        return self.request("PATCH", path, **kw)

    def delete(self, path: str, **kw: Any) -> requests.Response:
        return self.request("DELETE", path, **kw)

    def url(self, path: str) -> str:
        """Join ``path`` to the base URL; absolute URLs must stay on the base URL's host (no SSRF)."""
        if path.startswith(("http://", "https://")):
            if urlsplit(path).netloc != urlsplit(self.base_url).netloc:
                raise ConfigError(f"refusing to call {urlsplit(path).netloc}: not this connection's host")
            return path
        return urljoin(self.base_url, path.lstrip("/"))

    def destination(self, url: str) -> str:
        """Where ``url`` is really sent: itself, or the same path on the override's origin."""
        if self.override is None:
            return url
        target, parts = urlsplit(self.override), urlsplit(url)
        return urlunsplit(
            (target.scheme, target.netloc, target.path.rstrip("/") + parts.path, parts.query, "")
        )

    # -- the call loop -----------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Any = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        ok_statuses: frozenset[int] = frozenset(),
        timeout: float | None = None,
    ) -> requests.Response:
        """Send a request; return the response when its status is < 400 or in ``ok_statuses``.

        Raises the classified :mod:`leadbridge.errors` error otherwise. Transient failures are
        retried only when the call is idempotent (``idempotent`` overrides the method's default:
        pass ``True`` for an upsert-by-key POST). Rate limits are waited out for every call,
        since a 429 means nothing was applied. A rejected token is renewed once.
        """
        method = method.upper()
        retry_transient = idempotent if idempotent is not None else method in IDEMPOTENT_METHODS
        renewed = False
        attempt = 0
        while True:
            attempt += 1
            sent_headers = self.auth.headers() if self.auth else {}
            # After the headers: a (re)authentication may have moved the base URL (instance_url).
            url = self.destination(self.url(path))
            all_headers = {**sent_headers, **(headers or {})}
            self.pacer.acquire()
            started = clocks.monotonic()
            self.stats.count(method, urlsplit(url).path, self.endpoint_name)
            try:
                response = self.session.request(
                    method,
                    url,
                    params=params,
                    json=json,
                    data=data,
                    headers=all_headers,
                    timeout=timeout or self.timeout,
                )
            except (requests.ConnectionError, requests.Timeout) as exc:
                self._record(method, url, None, started, all_headers, json, data, f"{type(exc).__name__}")
                # (not ``path``: that is the caller's argument, needed again for the next attempt)
                where = urlsplit(url).path
                error: LeadbridgeError = TransientError(f"{method} {where}: {type(exc).__name__}")
                # A request that never reached the vendor (refused, connect timeout) is safe to resend.
                if (retry_transient or _never_sent(exc)) and attempt < self.max_attempts:
                    self._backoff(attempt, None)
                    continue
                raise error from exc
            self._record(method, url, response, started, all_headers, json, data, None)
            if self.read_rate_limits is not None:
                self.pacer.observe(self.read_rate_limits(response))
            if response.status_code < 400 or response.status_code in ok_statuses:
                return response
            error = self._classify(response)
            if isinstance(error, TokenExpired) and self.auth is not None and not renewed:
                renewed = True
                self.stats.renewals += 1
                self.auth.token_rejected(sent_headers)
                continue
            if isinstance(error, RateLimited) and attempt < self.max_attempts:
                self.stats.rate_limited += 1
                self._backoff(attempt, error.retry_after, hold=True, at_least_half=True)
                continue
            if type(error) is TransientError and retry_transient and attempt < self.max_attempts:
                self._backoff(attempt, _retry_after(response))
                continue
            if isinstance(error, TokenExpired):
                raise AuthError(f"credentials still rejected after renewal: {error.message}", code=error.code)
            raise error

    def _classify(self, response: requests.Response) -> LeadbridgeError:
        if self.classify_error is not None:
            custom = self.classify_error(response)
            if custom is not None:
                return custom
        return default_classification(response)

    def _backoff(
        self, attempt: int, retry_after: float | None, *, hold: bool = False, at_least_half: bool = False
    ) -> None:
        self.stats.retries += 1
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                raise RateLimited(f"vendor asked to wait {retry_after:.0f}s", retry_after=retry_after)
            wait = retry_after
        else:
            # Jitter spreads retries of parallel workers instead of synchronising them. A rate limit
            # without Retry-After keeps at least half the backoff, so it is never retried at once.
            ceiling = min(self.backoff_cap, self.backoff_base * 2 ** (attempt - 1))
            floor = ceiling / 2 if at_least_half else 0.0
            wait = random.uniform(floor, ceiling)
        if hold:
            self.pacer.hold(wait)
            return  # the pacer makes this (and every other) caller wait
        self._sleep(wait)

    def _record(
        self,
        method: str,
        url: str,
        response: requests.Response | None,
        started: float,
        headers: Mapping[str, str],
        json_body: Any,
        data: Any,
        failure: str | None,
    ) -> None:
        if self.on_exchange is None:
            return
        secrets = known_secrets.snapshot()
        body = _body_text(json_body, data)
        request_summary = f"{redact_headers(dict(headers))} {body[:2000]}"
        if response is not None:
            response_summary = f"{redact_headers(dict(response.headers))} {response.text[:2000]}"
        else:
            response_summary = failure or ""
        self.on_exchange(
            Exchange(
                method=method,
                url=redact_text(url, secrets),
                status=response.status_code if response is not None else None,
                duration_ms=int((clocks.monotonic() - started) * 1000),
                request=redact_text(request_summary, secrets),
                response=redact_text(response_summary, secrets),
            )
        )


def _never_sent(exc: Exception) -> bool:
    """True when the connection failed before the request went out (so resending cannot duplicate)."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    return isinstance(reason, NewConnectionError)


def _body_text(json_body: Any, data: Any) -> str:
    """The request body as it went out (JSON or form encoded), so the redaction patterns apply to it."""
    if json_body is not None:
        return jsonlib.dumps(json_body, default=str)
    if isinstance(data, Mapping):
        return urlencode(data)
    if isinstance(data, bytes):
        return data.decode("utf-8", "replace")
    return "" if data is None else str(data)


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - clocks.wall_time())


def default_classification(response: requests.Response) -> LeadbridgeError:
    """The rules applied when the connector's ``classify_error`` returns ``None``."""
    status = response.status_code
    path = urlsplit(response.url).path
    if status == 401:
        return TokenExpired(f"{path}: 401 unauthorized", code="401")
    if status == 403:
        return AuthError(f"{path}: 403 forbidden", code="403")
    if status == 429:
        return RateLimited(f"{path}: 429 too many requests", code="429", retry_after=_retry_after(response))
    if status in (408, 425) or status >= 500:
        return TransientError(f"{path}: {status}", code=str(status))
    if status == 404:
        return RecordError(f"{path}: not found", code="404")
    snippet = redact_text(response.text[:300], known_secrets.snapshot())
    return RecordError(f"{path}: {status} {snippet}", code=str(status))


__all__ = ["CallStats", "Exchange", "QuotaExhausted", "VendorClient", "default_classification"]


def _checked_override(value: str | None) -> str | None:
    if not value:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConfigError(f"the base URL override must be an http(s) origin, not {value!r}")
    return value.rstrip("/")
