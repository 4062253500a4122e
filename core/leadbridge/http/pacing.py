"""Client-side pacing: use the vendor's allowance without tripping it.

One :class:`Pacer` per connection, shared by every thread that calls that vendor. It spaces calls
by the tightest declared short-window limit, slows down when the vendor's headers say the window is
nearly spent, and raises :class:`~leadbridge.errors.QuotaExhausted` before a daily allowance (declared
or reported) passes the configured share, so a run pauses instead of hammering.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from datetime import timedelta

from .. import clock as clocks
from ..errors import QuotaExhausted
from ..metadata import RateLimit
from ..types import RateUsage

DAY = 86400.0


class Pacer:
    def __init__(
        self,
        limits: Sequence[RateLimit] = (),
        *,
        daily_stop_share: float = 1.0,
        safety: float = 1.05,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] | None = None,
    ) -> None:
        short = [lim for lim in limits if lim.per_seconds < 3600]
        self.interval = max((lim.interval for lim in short), default=0.0) * safety
        self.daily_limit = min((lim.requests for lim in limits if lim.per_seconds >= 3600), default=None)
        self.daily_stop_share = daily_stop_share
        self._clock = clock or clocks.monotonic
        self._sleep = sleep or clocks.sleep
        self._lock = threading.Lock()
        self._next_at = 0.0
        self._extra_wait_until = 0.0
        self._day_started = clocks.utcnow()
        self.daily_used = 0
        self.waited = 0.0

    def acquire(self) -> None:
        """Block until the next call may go out; count it against the daily allowance."""
        with self._lock:
            self._roll_day()
            if self.daily_limit is not None and self.daily_used >= self.daily_limit * self.daily_stop_share:
                raise QuotaExhausted(
                    f"daily allowance of {self.daily_limit} calls reached ({self.daily_used} used)",
                    code="daily_quota",
                    resets_at=self._day_started + timedelta(days=1),
                )
            now = self._clock()
            at = max(now, self._next_at, self._extra_wait_until)
            self._next_at = at + self.interval
            self.daily_used += 1
        wait = at - now
        if wait > 0:
            self.waited += wait
            self._sleep(wait)

    def observe(self, usage: RateUsage | None) -> None:
        """Adapt to what the vendor reported about its allowance."""
        if usage is None:
            return
        with self._lock:
            if usage.remaining is not None and usage.reset_in is not None and usage.remaining <= 1:
                self._extra_wait_until = max(self._extra_wait_until, self._clock() + usage.reset_in)
            elif (
                usage.remaining is not None
                and usage.reset_in
                and usage.limit
                and usage.remaining < usage.limit / 4
            ):
                # Spread what is left of the window evenly once less than a quarter remains.
                spacing = usage.reset_in / max(usage.remaining, 1)
                self._next_at = max(self._next_at, self._clock() + spacing)
            if usage.daily_used is not None and usage.daily_limit:
                self.daily_limit = usage.daily_limit
                self.daily_used = max(self.daily_used, usage.daily_used)

    def hold(self, seconds: float) -> None:
        """Make every caller wait ``seconds`` (a Retry-After applies to the whole connection)."""
        with self._lock:
            self._extra_wait_until = max(self._extra_wait_until, self._clock() + seconds)

    def _roll_day(self) -> None:
        now = clocks.utcnow()
        if now - self._day_started >= timedelta(days=1):
            self._day_started = now
            self.daily_used = 0
