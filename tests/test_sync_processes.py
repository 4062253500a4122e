"""Real processes: one scheduler per install across processes, and `leadbridge sync` against the demo."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import pytest
from flask import Flask

pytestmark = pytest.mark.slow

EXE = str(Path(sys.executable).with_name("leadbridge"))


def _env(app: Flask | None, instance: Path) -> dict[str, str]:
    env = dict(os.environ, LEADBRIDGE_INSTANCE_PATH=str(instance))
    if app is not None:
        env.update(
            LEADBRIDGE_SQLALCHEMY_DATABASE_URI=str(app.config["SQLALCHEMY_DATABASE_URI"]),
            LEADBRIDGE_SECRET_KEYS=str(app.config["SECRET_KEYS"]),
        )
    return env


def _wait_line(stream: IO[str], needle: str, timeout: float = 60.0) -> str:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = stream.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} not printed; got:\n{''.join(seen)[-3000:]}")


def test_second_scheduler_process_refuses_until_the_first_dies(app: Flask, tmp_path: Path) -> None:
    env = _env(app, tmp_path / "instance")
    first = subprocess.Popen(
        [EXE, "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _wait_line(first.stdout, "Scheduler running")  # type: ignore[arg-type]
        second = subprocess.run([EXE, "scheduler"], env=env, capture_output=True, text=True, timeout=60)
        assert second.returncode == 1
        assert "another scheduler is running" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.communicate(timeout=30)
    # The holder died without releasing the lock: the next one takes over at once (dead pid).
    third = subprocess.Popen(
        [EXE, "scheduler"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        _wait_line(third.stdout, "Scheduler running")  # type: ignore[arg-type]
    finally:
        third.send_signal(signal.SIGTERM)
        third.communicate(timeout=30)
    assert third.returncode == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


#: The demo round trip is one subprocess per sync: for one connector by default, every connector in
#: CI (``.ci/run`` sets LEADBRIDGE_TEST_DEMO_ALL=1), so a local run stays quick.
DEMO_ALL = os.environ.get("LEADBRIDGE_TEST_DEMO_ALL") == "1"


def test_sync_and_dry_run_against_the_demo(tmp_path: Path) -> None:
    instance = tmp_path / "demo"
    env = _env(None, instance)
    env.pop("LEADBRIDGE_TEST_DATABASE_URL", None)
    port = _free_port()
    demo = subprocess.Popen(
        [EXE, "demo", "--port", str(port)],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_line(demo.stdout, "leadbridge is running", timeout=120)  # type: ignore[arg-type]
        listed = subprocess.run(
            [EXE, "connections", "--json"], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60
        )
        connections = json.loads(listed.stdout)
        assert connections, listed.stderr
        for conn in connections if DEMO_ALL else connections[:1]:
            dry = subprocess.run(
                [EXE, "sync", str(conn["id"]), "--dry-run", "--json"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert dry.returncode == 0, dry.stderr[-2000:]
            planned = json.loads(dry.stdout)
            assert planned["dry_run"] and planned["status"] == "succeeded"
            real = subprocess.run(
                [EXE, "sync", str(conn["id"]), "--json"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert real.returncode == 0, real.stderr[-2000:]
            done = json.loads(real.stdout)
            assert done["status"] == "succeeded", done
            # the dry run announced what the real run then did, on the CRM side
            assert done["counts"]["crm"]["created"] == planned["counts"]["crm"]["created"], conn["name"]
            again = subprocess.run(
                [EXE, "sync", str(conn["id"]), "--direction", "to_crm", "--json"],
                env=env,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=300,
            )
            counts = json.loads(again.stdout)["counts"]["crm"]
            assert counts["created"] == counts["updated"] == 0, (conn["name"], counts)
    finally:
        demo.send_signal(signal.SIGTERM)
        try:
            demo.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            demo.kill()
            demo.communicate()
