"""The virtual clock the test kit runs every test on, and the real one production runs on.

What must hold for the virtual clock to be trusted in place of real time: waits skip but are
counted to the second, the client and a sandbox in another thread read the same time, and a test
that needs real time gets it.
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from leadbridge import clock as clocks
from leadbridge.clock import SystemClock, VirtualClock
from leadbridge.connections import client_for
from leadbridge.http import Pacer
from leadbridge.metadata import RateLimit
from leadbridge.models import Connection
from leadbridge_example.sandbox import ExampleSandbox


def test_the_kit_runs_each_test_on_a_fresh_virtual_clock(leadbridge_clock: clocks.Clock) -> None:
    assert isinstance(leadbridge_clock, VirtualClock)
    assert clocks.get_clock() is leadbridge_clock
    assert leadbridge_clock.slept == 0.0


@pytest.mark.real_clock("checks the opt-out itself")
def test_a_test_can_opt_in_to_real_time(leadbridge_clock: clocks.Clock) -> None:
    assert isinstance(leadbridge_clock, SystemClock)
    assert isinstance(clocks.get_clock(), SystemClock)


def test_a_virtual_sleep_moves_every_reading_forward_by_exactly_the_wait() -> None:
    clock = VirtualClock()
    before_now, before_mono, before_wall = clock.now(), clock.monotonic(), clock.time()
    clock.sleep(3600)  # an hour: pytest-timeout (300 s) would stop the test if this really slept
    assert clock.slept == 3600
    assert clock.now() - before_now >= timedelta(seconds=3600)
    assert clock.now() - before_now < timedelta(seconds=3601)
    assert 3600 <= clock.monotonic() - before_mono < 3601
    assert 3600 <= clock.time() - before_wall < 3601
    clock.sleep(-5)
    clock.sleep(0)
    assert clock.slept == 3600  # nothing waits backwards
    with pytest.raises(ValueError):
        clock.advance(-1)


def test_virtual_sleeps_from_many_threads_all_count() -> None:
    clock = VirtualClock()
    threads = [threading.Thread(target=lambda: [clock.sleep(0.5) for _ in range(100)]) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.slept == pytest.approx(200.0)


def test_using_restores_the_previous_clock() -> None:
    outer = clocks.get_clock()
    inner = VirtualClock()
    with clocks.using(inner):
        assert clocks.get_clock() is inner
        assert clocks.utcnow() >= inner.now() - timedelta(seconds=1)
    assert clocks.get_clock() is outer


def test_the_system_clock_really_waits() -> None:
    clock = SystemClock()
    start = time.monotonic()
    clock.sleep(0.05)
    assert time.monotonic() - start >= 0.05
    assert abs(clock.time() - time.time()) < 1


def test_a_paced_burst_takes_the_declared_virtual_time(leadbridge_clock: VirtualClock) -> None:
    pacer = Pacer([RateLimit(5, 1.0)], safety=1.0)  # 5 calls a second: one every 0.2 s
    start = clocks.monotonic()
    for _ in range(11):
        pacer.acquire()
    elapsed = clocks.monotonic() - start
    assert 2.0 <= elapsed < 2.5  # ten intervals after the first call
    assert pacer.waited == pytest.approx(2.0, abs=0.05)
    assert leadbridge_clock.slept == pytest.approx(pacer.waited, abs=0.05)


def test_a_retry_after_is_honoured_to_the_virtual_second(
    connection: Connection, sandbox: ExampleSandbox, leadbridge_clock: VirtualClock
) -> None:
    client = client_for(connection)
    assert client.auth is not None
    client.auth.headers()
    sandbox.fail_next(429, headers={"Retry-After": "7"}, path_prefix="/api/fields")
    assert client.get("api/fields").status_code == 200
    refused, served = [c for c in sandbox.calls if c.path == "/api/fields"]
    assert refused.status == 429 and served.status == 200
    # The sandbox's call log (another thread) reads the same clock the client slept on.
    assert 7.0 <= served.at - refused.at < 8.0
    # The client waited the rest of the 7 s (less the real time the answer took to arrive).
    assert leadbridge_clock.slept == pytest.approx(7.0, abs=0.5)


def test_the_sandbox_token_bucket_refills_on_virtual_time(
    connection: Connection, sandbox: ExampleSandbox
) -> None:
    client = client_for(connection)
    assert client.auth is not None
    client.auth.headers()
    sandbox.set_rate_limit(2, 10.0, available=0)  # two calls per ten seconds, none left now
    assert client.get("api/fields").status_code == 200
    assert sandbox.rate_limited_count == 1
    refused, served = [c for c in sandbox.calls if c.path == "/api/fields"]
    assert served.at - refused.at >= 4.9  # one call's worth of refill: 10 s / 2
