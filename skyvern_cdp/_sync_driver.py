"""The sync side's Playwright driver: one per thread, shared and counted, stopped when its
last user lets go; and the guard against running inside a foreign asyncio loop.

>>> lease = Lease(None)           # doctest: +SKIP
>>> playwright = lease.get()      # starts this thread's driver if none runs  # doctest: +SKIP
>>> lease.release()               # the last release stops it  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Playwright, sync_playwright

from skyvern_cdp._attachment import DriverStats
from skyvern_cdp.errors import SyncAPIInAsyncLoopError

__all__ = ["Lease", "check_no_foreign_loop", "driver_stats"]

logger = logging.getLogger("skyvern_cdp.sync_api")


class _SharedDriver(threading.local):
    playwright: Playwright | None = None
    references: int = 0
    started: int = 0


_driver = _SharedDriver()


def driver_stats() -> DriverStats:
    """The shared driver of this thread: how often started, and its users."""
    return DriverStats(
        started=_driver.started,
        running=_driver.playwright is not None,
        references=_driver.references,
    )


def _loop_of(playwright: Playwright | None) -> object:
    return getattr(playwright, "_loop", None)


def check_no_foreign_loop(playwright: Playwright | None) -> None:
    """Refuse to run inside an asyncio loop that is not a sync Playwright's own."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    if loop is _loop_of(playwright) or loop is _loop_of(_driver.playwright):
        return
    raise SyncAPIInAsyncLoopError(
        "skyvern_cdp.sync_api cannot run inside a running asyncio event loop (a notebook cell"
        " or an async test); use `await skyvern_cdp.async_api.connect(...)` there, or pass"
        " playwright= with the sync Playwright that already runs in this thread"
    )


class Lease:
    """This attach's claim on a driver: the thread's shared one, or one the caller passed in."""

    def __init__(self, playwright: Playwright | None) -> None:
        self._external = playwright
        self._held = False
        self._released = False

    @property
    def needs_start(self) -> bool:
        return self._external is None and _driver.playwright is None

    def get(self) -> Playwright:
        if self._external is not None:
            return self._external
        if not self._held:
            if _driver.playwright is None:
                logger.debug("starting the sync Playwright driver")
                try:
                    _driver.playwright = sync_playwright().start()
                except PlaywrightError as exc:
                    if "asyncio loop" in str(exc):
                        raise SyncAPIInAsyncLoopError(
                            "another sync Playwright already runs in this thread: pass it as"
                            " playwright=, or use skyvern_cdp.async_api"
                        ) from None
                    raise
                _driver.started += 1
            _driver.references += 1
            self._held = True
        assert _driver.playwright is not None
        return _driver.playwright

    def release(self) -> None:
        if self._released or not self._held:
            self._released = True
            return
        self._released = True
        _driver.references -= 1
        if _driver.references == 0 and _driver.playwright is not None:
            playwright, _driver.playwright = _driver.playwright, None
            logger.debug("stopping the sync Playwright driver")
            with contextlib.suppress(Exception):
                playwright.stop()
