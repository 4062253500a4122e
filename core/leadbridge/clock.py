"""The one clock everything that waits or stamps time reads: real in production, virtual in tests.

Pacing, back-off and ``Retry-After`` waits, token expiry, the hub's timestamps and every sandbox's
rate limiter and call log ask :func:`get_clock` instead of :mod:`time` and :mod:`datetime`. The test
kit (:mod:`leadbridge.testing`) installs a :class:`VirtualClock` around each test, so a paced burst
or a 30 s ``Retry-After`` costs no real time while the client and the sandbox still agree on how
much time passed.

The clock is process-wide rather than per app on purpose: a sandbox serving in a thread and the
client calling it must share one notion of time, and neither owns a Flask app of leadbridge's.

Waits for *another thread or process* (a run lock held by someone else, a subprocess starting) are
not clock waits: nothing virtual can hurry them, so they use real time and say so.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    """What the code asks of a clock."""

    def now(self) -> datetime:
        """The current time, timezone-aware UTC."""

    def time(self) -> float:
        """Seconds since the epoch (as :func:`time.time`)."""

    def monotonic(self) -> float:
        """A clock that never goes back, for intervals (as :func:`time.monotonic`)."""

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a negative or zero wait returns at once)."""


class SystemClock:
    """Real time: what production runs on."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def time(self) -> float:
        return time.time()

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class VirtualClock:
    """Time that jumps instead of waiting.

    ``sleep(s)`` returns at once and moves this clock ``s`` seconds ahead, for every thread. Real
    time keeps counting too (the clock is real time plus the sum of all sleeps), so it never runs
    slower than the wall: timestamps taken in order stay in order, and work that genuinely takes
    time still shows. :attr:`slept` is the total virtual wait, for tests that assert on it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._offset = 0.0

    @property
    def slept(self) -> float:
        """Seconds of sleep skipped so far."""
        with self._lock:
            return self._offset

    def advance(self, seconds: float) -> None:
        """Move the clock forward without anyone sleeping (a test skipping ahead, e.g. past an expiry)."""
        if seconds < 0:
            raise ValueError("a clock does not go back")
        with self._lock:
            self._offset += seconds

    def now(self) -> datetime:
        return datetime.now(UTC) + timedelta(seconds=self.slept)

    def time(self) -> float:
        return time.time() + self.slept

    def monotonic(self) -> float:
        return time.monotonic() + self.slept

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.advance(seconds)
        time.sleep(0)  # still let other threads run, as a real sleep would


_current: Clock = SystemClock()


def get_clock() -> Clock:
    """The clock in force (the system clock unless a test installed another)."""
    return _current


def set_clock(clock: Clock) -> Clock:
    """Install ``clock`` process-wide; returns the one it replaced."""
    global _current
    previous, _current = _current, clock
    return previous


@contextmanager
def using(clock: Clock) -> Iterator[Clock]:
    """Install ``clock`` for the duration of a ``with`` block."""
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        set_clock(previous)


def utcnow() -> datetime:
    """Timezone-aware "now" in UTC from the clock in force."""
    return _current.now()


def sleep(seconds: float) -> None:
    """Sleep on the clock in force."""
    _current.sleep(seconds)


def monotonic() -> float:
    """The clock in force's monotonic reading."""
    return _current.monotonic()


def wall_time() -> float:
    """The clock in force's epoch seconds."""
    return _current.time()
