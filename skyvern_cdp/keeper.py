"""Keep a session alive from asyncio while its Browser is connected.

>>> from skyvern_cdp.keeper import AsyncKeeper
>>> keeper = AsyncKeeper.for_browser(  # doctest: +SKIP
...     browser, client.settings, "pbs_123", KeepAlive())
>>> keeper.extensions  # doctest: +SKIP
0

You rarely make one yourself: ``async_api.connect(..., keep_alive=True)`` (and ``launch``,
and ``notebook.attach``/``launch``) start one. It looks at the session now and then (sooner
as its end nears), extends it (``POST …/extend``) once less than the margin is left, and stops
when the Browser disconnects, the session ends, or the 360-minute cap is reached (with one
warning). Failures are logged and retried, never raised into your code. Every decision comes
from :class:`skyvern_cdp.lifetime.Lifetime`; this module only does the I/O, with its own
:class:`~skyvern_cdp.client.AsyncSkyvernClient` (closed when the keeper stops).

``first=`` is the session as the attach saw it: the first decision needs no request.
With ``extend=False`` it never extends: ``on_notice(seconds_left)`` is called once when the
end is within the margin (the notebook's "less than 5 minutes left" line).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from skyvern_cdp.config import Settings
from skyvern_cdp.errors import SessionNotFoundError
from skyvern_cdp.lifetime import (
    Capped,
    Extend,
    KeepAlive,
    Lifetime,
    Notify,
    Sleep,
    Step,
    Stop,
    remaining_lifetime,
)

if TYPE_CHECKING:
    from skyvern_cdp.models import BrowserSessionResponse

__all__ = ["REQUEST_TIMEOUT", "AsyncKeeper", "keeper_of"]

logger = logging.getLogger("skyvern_cdp.keeper")

#: Seconds one look or one extension may take (a Skyvern GET can take about a minute).
REQUEST_TIMEOUT = 65.0

_keepers: weakref.WeakKeyDictionary[Any, AsyncKeeper] = weakref.WeakKeyDictionary()


def keeper_of(browser: Any) -> AsyncKeeper | None:
    """The keeper started for ``browser`` (an async Playwright Browser), if any."""
    return _keepers.get(browser)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


def describe(step: Step, session_id: str) -> str:
    """One log line for a step that ends the keeper (shared with the thread keeper)."""
    if isinstance(step, Capped):
        return (
            f"session {session_id} reached the 360-minute cap: it cannot be extended any more"
            f" and ends in {step.remaining:.0f} s"
        )
    if isinstance(step, Stop):
        return f"keep-alive for {session_id} stops: {step.reason}"
    return f"keep-alive for {session_id}: {step}"


class AsyncKeeper:
    """One session's keep-alive task on the running event loop. See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        session_id: str,
        policy: KeepAlive,
        *,
        extend: bool = True,
        on_notice: Callable[[float], None] | None = None,
        first: BrowserSessionResponse | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.session_id = session_id
        self.lifetime = Lifetime(policy, extend=extend)
        self._settings = settings
        self._on_notice = on_notice
        self._first = first
        self._clock = clock
        self._wall = wall_clock
        self._task: asyncio.Task[None] | None = None
        #: Why it stopped (``None`` while it runs).
        self.stopped_because: str | None = None

    @classmethod
    def for_browser(
        cls, browser: Any, settings: Settings, session_id: str, policy: KeepAlive, **kwargs: Any
    ) -> AsyncKeeper:
        """Start a keeper that stops when ``browser`` (async Playwright) disconnects."""
        keeper = cls(settings, session_id, policy, **kwargs)
        keeper.start()
        browser.once("disconnected", lambda _: keeper.cancel("the Browser disconnected"))
        _keepers[browser] = keeper
        return keeper

    @property
    def extensions(self) -> int:
        """How many extensions the server granted so far."""
        return self.lifetime.extensions

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start on the running loop (idempotent)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"skyvern-keep-alive-{self.session_id}"
            )

    def cancel(self, reason: str = "stopped") -> None:
        """Stop soon, from anywhere on the loop (a callback); :meth:`stop` also waits."""
        if self._task is not None and not self._task.done():
            self.stopped_because = self.stopped_because or reason
            self._task.cancel()

    async def stop(self, reason: str = "stopped") -> None:
        """Stop and wait until the keeper and its client are done. Idempotent."""
        self.cancel(reason)
        task = self._task
        if task is not None and task is not asyncio.current_task():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def _run(self) -> None:
        from skyvern_cdp.client import AsyncSkyvernClient

        s = self._settings
        client = AsyncSkyvernClient(
            s.api_key,
            s.base_url,
            trusted_hosts=s.trusted_hosts,
            allow_insecure_http=s.allow_insecure_http,
        )
        try:
            while True:
                step = self._first_look() or await self._look(client)
                while isinstance(step, Extend):
                    step = await self._extend(client, step.minutes)
                if isinstance(step, Notify):
                    if self._on_notice is not None:
                        try:
                            self._on_notice(step.remaining)
                        except Exception:
                            logger.exception("the keep-alive notice failed")
                    step = step.then
                if isinstance(step, (Capped, Stop)):
                    self.stopped_because = describe(step, self.session_id)
                    log = logger.warning if isinstance(step, Capped) else logger.info
                    log("%s", self.stopped_because)
                    return
                assert isinstance(step, Sleep)
                await asyncio.sleep(step.seconds)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(client.aclose())

    def _first_look(self) -> Step | None:
        """The session as the attach just saw it (``first=``): no request needed for it."""
        first, self._first = self._first, None
        if first is None:
            return None
        remaining = remaining_lifetime(first, now=self._wall())
        return self.lifetime.observe(first, remaining=remaining, at=self._clock())

    async def _look(self, client: Any) -> Step:
        at = self._clock()
        try:
            session = await client.get_browser_session(self.session_id, timeout=REQUEST_TIMEOUT)
        except SessionNotFoundError:
            return Stop("the session is not found")
        except Exception as exc:
            step = self.lifetime.failed(at=self._clock())
            logger.warning(
                "keep-alive: looking at %s failed (%s); retrying in %.1f s",
                self.session_id, exc, step.seconds,
            )
            return step
        remaining = remaining_lifetime(session, now=self._wall())
        return self.lifetime.observe(session, remaining=remaining, at=at)

    async def _extend(self, client: Any, minutes: int) -> Step:
        at = self._clock()
        try:
            session = await client.extend_browser_session(
                self.session_id, minutes, timeout=REQUEST_TIMEOUT
            )
        except SessionNotFoundError:
            return Stop("the session is not found")
        except Exception as exc:
            step = self.lifetime.failed(at=self._clock())
            logger.warning(
                "keep-alive: extending %s failed (%s); retrying in %.1f s",
                self.session_id, exc, step.seconds,
            )
            return step
        remaining = remaining_lifetime(session, now=self._wall())
        logger.info(
            "extended session %s by %d min (lifetime now %s min)",
            self.session_id, minutes, session.timeout,
        )
        warning = (session.model_extra or {}).get("warning")
        if warning:
            logger.debug("the server said: %s", warning)
        return self.lifetime.extended(session, remaining=remaining, at=at)
