"""Shared fixtures: leak checks for every test, and the local backend for end-to-end tests."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import psutil
import pytest

#: Child processes that session-scoped fixtures own on purpose (never reported as leaks).
LONG_LIVED_PIDS: set[int] = set()


def _descendants() -> dict[int, str]:
    found: dict[int, str] = {}
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            found[child.pid] = " ".join(child.cmdline())[:200]
        except psutil.Error:
            continue
    return found


def wait_for(predicate: object, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` passes; return its last value."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


def leaked_processes(before: set[int], timeout: float = 10.0) -> dict[int, str]:
    """Processes started since ``before`` that are still running after ``timeout``."""

    def new() -> dict[int, str]:
        return {
            pid: cmd
            for pid, cmd in _descendants().items()
            if pid not in before and pid not in LONG_LIVED_PIDS
        }

    wait_for(lambda: not new(), timeout)
    return new()


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Every test must stop the drivers, browsers and servers it started."""
    before = set(_descendants())
    yield
    leaks = leaked_processes(before)
    assert not leaks, f"processes left running by this test: {leaks}"
