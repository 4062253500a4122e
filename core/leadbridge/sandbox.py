"""The base every connector's sandbox builds on: a loopback imitation of a vendor API.

A connector ships a subclass of :class:`Sandbox` that adds the vendor's routes to :attr:`Sandbox.app`
(same paths, auth, paging, errors, rate limits). The base supplies what every sandbox needs:

* a call log (:attr:`Sandbox.calls`) to count API calls exactly;
* JSON answers in the vendor's envelope (:meth:`Sandbox.error_response`) for unknown routes and methods;
* fault knobs: latency, a queue of forced failures (:meth:`fail_next`), token expiry
  (:meth:`expire_tokens`), and a token-bucket rate limiter (:meth:`set_rate_limit`) answering in
  the vendor's own format (:meth:`rate_limit_response`);
* :class:`SandboxServer`, which serves it on 127.0.0.1 in a thread (tests and ``leadbridge demo``).
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from flask import Flask, Response, jsonify, request
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import clock as clocks
from .types import Credentials


@dataclass(slots=True)
class Fault:
    """A forced failure queued by :meth:`Sandbox.fail_next`."""

    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    path_prefix: str | None = None
    #: "respond": answer ``status``; "reset": apply the request, then drop the connection (an
    #: ambiguous write); "rate_limit": answer with :meth:`Sandbox.rate_limit_response`
    mode: str = "respond"
    retry_after: float = 1.0


@dataclass(slots=True)
class CallRecord:
    """One request the sandbox answered (``at``: wall-clock time the answer was ready)."""

    method: str
    path: str
    status: int
    at: float


class Sandbox:
    """Base class of connector sandboxes. Subclasses add routes in :meth:`setup_routes`.

    :attr:`name` is the connector name; :attr:`app` is the Flask app to serve.

    What the connector test kit (:class:`leadbridge.testing.ConnectorConformance`) uses:

    * :meth:`connection_settings` / :meth:`bad_connection_settings` (required);
    * :meth:`connection_credentials` — credentials a new connection starts with (authorization-code
      connectors return a refresh token the sandbox accepts, as if the admin had clicked Connect);
    * :meth:`add_contacts`, :meth:`contact_count` (:meth:`contact_count_for` per object),
      :meth:`company_count` (checks needing them are
      skipped when they raise :class:`NotImplementedError`);
    * :meth:`expire_tokens`, :meth:`fail_next` and :meth:`count_calls` / :attr:`calls`;
    * optional attribute ``page_size`` (int): when present the kit lowers it (to 5) so that a few
      seeded records span several pages; without it the kit seeds
      ``ConnectorConformance.fetch_seed`` records and cannot check that paging happened.
    """

    name = "sandbox"
    #: paths that bypass auth, faults and rate limiting (e.g. the control or health endpoints)
    exempt_prefixes: tuple[str, ...] = ("/__sandbox__",)

    def __init__(self, *, rate_limit: tuple[int, float] | None = None, latency: float = 0.0) -> None:
        self.app = Flask(f"sandbox-{self.name}")
        self.app.config["PROPAGATE_EXCEPTIONS"] = True
        self.lock = threading.RLock()
        self.calls: list[CallRecord] = []
        self.latency = latency
        self.faults: list[Fault] = []
        self.rate_limit = rate_limit
        self._bucket_tokens = float(rate_limit[0]) if rate_limit else 0.0
        self._bucket_at = clocks.monotonic()
        self.rate_limited_count = 0
        self.token_generation = 0
        self.app.before_request(self._before)
        self.app.after_request(self._after)
        # Vendors answer unknown routes and methods in their JSON envelope, not with an HTML page.
        self.app.register_error_handler(
            404, lambda e: self.error_response(404, "NOT_FOUND", f"no resource at {request.path}")
        )
        self.app.register_error_handler(
            405,
            lambda e: self.error_response(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed here"),
        )
        self.setup_routes()

    # -- to implement ----------------------------------------------------------------------

    def setup_routes(self) -> None:
        """Add the vendor's routes to :attr:`app`."""

    def connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        """``(settings, secrets)`` of a connection that works against this sandbox at ``base_url``."""
        raise NotImplementedError

    def bad_connection_settings(self, base_url: str) -> tuple[dict[str, Any], dict[str, str]]:
        """Settings whose credentials the sandbox refuses (for "Test connection" and the kit)."""
        raise NotImplementedError

    def connection_credentials(self, base_url: str) -> Credentials | None:
        """Credentials a new connection starts with (``None``: the connector logs in by itself)."""
        return None

    def seed_demo(self) -> None:
        """Fill the sandbox with believable demo records."""

    def add_contacts(self, count: int, *, with_email: bool = True) -> list[str]:
        """Create ``count`` vendor-side people; return their remote ids (the conformance kit uses it)."""
        raise NotImplementedError

    def contact_count(self) -> int:
        """How many people the vendor side holds (deleted ones excluded)."""
        raise NotImplementedError

    def contact_count_for(self, object_type: str) -> int:
        """How many people the vendor behind ``object_type`` holds (a connector writing to two
        vendors counts each; default: :meth:`contact_count`)."""
        return self.contact_count()

    def company_count(self) -> int:
        """How many companies the vendor side holds."""
        raise NotImplementedError

    def error_response(self, status: int, code: str, message: str) -> Response:
        """An error in the vendor's envelope (override it: ``[{"errorCode", "message"}]`` for
        Salesforce, ``[{"error_key", "error_message"}]`` for Constant Contact). The base answers
        unknown routes (404) and methods (405) with it."""
        resp = jsonify({"error": code, "message": message})
        resp.status_code = status
        return resp

    def rate_limit_response(self, retry_after: float) -> Response:
        """The vendor's answer when the rate limit is hit (override for vendor-specific bodies)."""
        resp = jsonify({"error": "rate_limited"})
        resp.status_code = 429
        resp.headers["Retry-After"] = str(max(1, round(retry_after)))
        return resp

    def set_rate_limit(
        self, capacity: int | None, per: float = 1.0, *, available: float | None = None
    ) -> None:
        """Limit requests to ``capacity`` per ``per`` seconds (``None``: no limit), starting now with
        ``available`` calls left in the bucket (default: a full bucket)."""
        with self.lock:
            self.rate_limit = (capacity, per) if capacity else None
            self._bucket_tokens = float(capacity if available is None else available) if capacity else 0.0
            self._bucket_at = clocks.monotonic()

    def rate_limit_remaining(self) -> int:
        """Calls left in the bucket right now (for vendors that announce it in headers)."""
        with self.lock:
            return max(0, int(self._bucket_tokens))

    def expire_tokens(self) -> None:
        """Make every issued access token invalid from now on (as if it expired)."""
        with self.lock:
            self.token_generation += 1

    # -- fault knobs -------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        body: Any = None,
        headers: dict[str, str] | None = None,
        path_prefix: str | None = None,
        mode: str = "respond",
        retry_after: float = 1.0,
    ) -> None:
        """Force failures on the next ``times`` requests whose path starts with ``path_prefix``.

        ``mode="respond"`` answers ``status`` with ``body`` and ``headers``; ``mode="reset"`` applies
        the request and then drops the connection without any response (an ambiguous write);
        ``mode="rate_limit"`` answers with the vendor's own :meth:`rate_limit_response` asking to
        wait ``retry_after`` seconds. Exempt paths (:attr:`exempt_prefixes`) never fail.
        """
        if mode not in ("respond", "reset", "rate_limit"):
            raise ValueError(f"unknown fault mode {mode!r}")
        with self.lock:
            for _ in range(times):
                self.faults.append(Fault(status, body, dict(headers or {}), path_prefix, mode, retry_after))

    def count_calls(self, method: str | None = None, prefix: str = "") -> int:
        """How many requests (of ``method``, on paths starting with ``prefix``) were answered."""
        with self.lock:
            return sum(
                1 for c in self.calls if (method is None or c.method == method) and c.path.startswith(prefix)
            )

    def reset_calls(self) -> None:
        """Forget the call log and the rate-limit counter."""
        with self.lock:
            self.calls.clear()
            self.rate_limited_count = 0

    # -- request pipeline ---------------------------------------------------------------------

    def _exempt(self) -> bool:
        return request.path.startswith(self.exempt_prefixes)

    def _before(self) -> Response | None:
        if self._exempt():
            return None
        if self.latency:
            clocks.sleep(self.latency)
        with self.lock:
            if self.rate_limit is not None:
                capacity, per = self.rate_limit
                now = clocks.monotonic()
                self._bucket_tokens = min(
                    float(capacity), self._bucket_tokens + (now - self._bucket_at) * capacity / per
                )
                self._bucket_at = now
                if self._bucket_tokens < 1:
                    self.rate_limited_count += 1
                    wait = (1 - self._bucket_tokens) * per / capacity
                    return self.rate_limit_response(wait)
                self._bucket_tokens -= 1
            for i, fault in enumerate(self.faults):
                if fault.path_prefix is None or request.path.startswith(fault.path_prefix):
                    if fault.mode == "reset":
                        # Let the handler apply the request; _after drops the connection.
                        request.environ["sandbox.reset"] = self.faults.pop(i)
                        return None
                    self.faults.pop(i)
                    if fault.mode == "rate_limit":
                        self.rate_limited_count += 1
                        return self.rate_limit_response(fault.retry_after)
                    resp = jsonify(fault.body) if fault.body is not None else Response(status=fault.status)
                    resp.status_code = fault.status
                    resp.headers.update(fault.headers)
                    return resp
        return None

    def _after(self, response: Response) -> Response:
        if not self._exempt():
            with self.lock:
                record = CallRecord(request.method, request.path, response.status_code, clocks.wall_time())
                self.calls.append(record)
        if "sandbox.reset" in request.environ:
            raise ConnectionAbortedError("sandbox: connection reset after applying the request")
        return response


class SandboxServer:
    """Serves a sandbox on a loopback port in a daemon thread."""

    #: How often the serving loop checks for :meth:`stop` (socketserver's default, 0.5 s, made
    #: every stop cost half a second: hundreds of tests pay it). A select wake-up is cheap.
    POLL_SECONDS = 0.02

    def __init__(self, sandbox: Sandbox, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.sandbox = sandbox
        self._server: BaseWSGIServer = make_server(
            host, port, _ResetAware(sandbox.app), threaded=True, request_handler=_QuietHandler
        )
        self.port = self._server.server_port
        self.url = f"http://{host}:{self.port}"
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": self.POLL_SECONDS},
            name=f"sandbox-{sandbox.name}",
            daemon=True,
        )

    def start(self) -> SandboxServer:
        """Start serving in the background; returns ``self`` (``SandboxServer(sb).start().url``)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket."""
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> SandboxServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _QuietHandler(WSGIRequestHandler):
    """No access-log line per sandbox request: the demo's console stays readable (calls are counted
    in :attr:`Sandbox.calls` instead)."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


class _ResetAware:
    """WSGI wrapper turning the sandbox's "reset" fault into a dropped connection."""

    def __init__(self, app: Callable[..., Any]) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        try:
            return self.app(environ, start_response)
        except ConnectionAbortedError:
            sock = environ.get("werkzeug.socket")
            if sock is not None:
                import socket

                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            raise
