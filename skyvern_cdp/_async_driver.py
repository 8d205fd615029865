"""The asyncio side's Playwright driver: one per event loop, shared and counted, started in
the background while a session is still polled, stopped when its last user lets go.

>>> lease = Lease(None)            # doctest: +SKIP
>>> playwright = await lease.get(timeout=30.0)  # doctest: +SKIP
>>> await lease.release()          # the last release stops the driver  # doctest: +SKIP

:func:`shielded` is the teardown helper of the asyncio shell: it finishes what it awaits
even when the caller is cancelled meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref

from playwright.async_api import Playwright, async_playwright

from skyvern_cdp._attachment import DriverStats
from skyvern_cdp._sessions import shielded
from skyvern_cdp._wait_within import wait_within

__all__ = ["Lease", "driver_stats", "shielded"]

logger = logging.getLogger("skyvern_cdp.async_api")


class _SharedDriver:
    """One Playwright driver per event loop, counted: it stops when the last user releases it."""

    def __init__(self) -> None:
        self.references = 0
        self.started = 0
        self._task: asyncio.Task[Playwright] | None = None
        self._stopping: asyncio.Future[None] | None = None

    def acquire(self) -> None:
        """Take a reference, starting the driver in the background if none runs."""
        self.references += 1
        if self._task is None:
            self._task = asyncio.ensure_future(self._start(self._stopping))

    async def _start(self, previous_stop: asyncio.Future[None] | None) -> Playwright:
        if previous_stop is not None:
            await asyncio.shield(previous_stop)
        self.started += 1
        logger.debug("starting the Playwright driver")
        return await async_playwright().start()

    async def get(self, timeout: float) -> Playwright:
        assert self._task is not None, "acquire() first"
        return await wait_within(asyncio.shield(self._task), timeout)

    @property
    def running(self) -> bool:
        task = self._task
        return (
            task is not None and task.done() and not task.cancelled() and task.exception() is None
        )

    async def release(self) -> None:
        """Drop a reference; the last one stops the driver (shielded from cancellation)."""
        self.references -= 1
        if self.references > 0 or self._task is None:
            return
        task, self._task = self._task, None
        self._stopping = asyncio.ensure_future(_stop_driver(task))
        await shielded(self._stopping)


async def _stop_driver(task: asyncio.Task[Playwright]) -> None:
    try:
        playwright = await task
    except BaseException:  # it never started: nothing to stop
        return
    logger.debug("stopping the Playwright driver")
    with contextlib.suppress(Exception):
        await playwright.stop()


_drivers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SharedDriver] = (
    weakref.WeakKeyDictionary()
)


def _driver() -> _SharedDriver:
    loop = asyncio.get_running_loop()
    driver = _drivers.get(loop)
    if driver is None:
        driver = _drivers[loop] = _SharedDriver()
    return driver


def driver_stats() -> DriverStats:
    """The shared driver of the running event loop: how often started, and its users."""
    driver = _driver()
    return DriverStats(started=driver.started, running=driver.running, references=driver.references)


class Lease:
    """This attach's claim on a driver: the shared one, or one the caller passed in."""

    def __init__(self, playwright: Playwright | None) -> None:
        self._external = playwright
        self._driver: _SharedDriver | None = None
        self._released = False
        if playwright is None:
            self._driver = _driver()
            self._driver.acquire()

    async def get(self, timeout: float) -> Playwright:
        if self._external is not None:
            return self._external
        assert self._driver is not None
        return await self._driver.get(timeout)

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        if self._driver is not None:
            await self._driver.release()
