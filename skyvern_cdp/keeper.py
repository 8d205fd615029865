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
:class:`~skyvern_cdp.client.AsyncSkyvernClient` (closed when the keeper stops). What it
shares with the thread keeper (clocks, handing answers over, the log lines) is :class:`Keeper`.

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
from skyvern_cdp.lifetime import (
    Capped,
    Extend,
    KeepAlive,
    Lifetime,
    Look,
    Notify,
    Sleep,
    Stop,
    describe,
)

if TYPE_CHECKING:
    from skyvern_cdp.models import BrowserSessionResponse

__all__ = ["REQUEST_TIMEOUT", "AsyncKeeper", "Keeper", "describe", "keeper_of"]

logger = logging.getLogger("skyvern_cdp.keeper")

#: Seconds one look or one extension may take (a Skyvern GET can take about a minute).
REQUEST_TIMEOUT = 65.0

_keepers: weakref.WeakKeyDictionary[Any, AsyncKeeper] = weakref.WeakKeyDictionary()


def keeper_of(browser: Any) -> AsyncKeeper | None:
    """The keeper started for ``browser`` (an async Playwright Browser), if any."""
    return _keepers.get(browser)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class Keeper:
    """What both keepers do around their :class:`Lifetime` besides the I/O itself.

    Reading the clocks, handing answers to the lifetime and logging what came of them; the
    subclasses (:class:`AsyncKeeper`, :class:`~skyvern_cdp.keeper_thread.ThreadKeeper`) send
    the requests and wait, each in its own way. ``on_notice`` is for :class:`AsyncKeeper`
    (the thread keeper always extends: it has nothing to tell).
    """

    #: Where the subclass logs.
    log: logging.Logger = logger

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
        #: Why it stopped (``None`` while it runs).
        self.stopped_because: str | None = None

    @property
    def extensions(self) -> int:
        """How many extensions the server granted so far."""
        return self.lifetime.extensions

    def _client(self, cls: Callable[..., Any]) -> Any:
        """A new ``cls`` (the sync or the async client) for these settings."""
        s = self._settings
        return cls(
            s.api_key,
            s.base_url,
            trusted_hosts=s.trusted_hosts,
            allow_insecure_http=s.allow_insecure_http,
        )

    def _first_look(self) -> None:
        """The session as the attach saw it (``first=``): the first decision needs no request."""
        first, self._first = self._first, None
        if first is not None:
            self.lifetime.answered(Look(), first, now=self._wall(), at=self._clock())

    def _request(self, client: Any, action: Look | Extend) -> Any:
        """The client call for ``action`` (a coroutine for the async client)."""
        if isinstance(action, Extend):
            return client.extend_browser_session(
                self.session_id, action.minutes, timeout=REQUEST_TIMEOUT
            )
        return client.get_browser_session(self.session_id, timeout=REQUEST_TIMEOUT)

    def _answered(
        self,
        action: Look | Extend,
        answer: BrowserSessionResponse | Exception,
        *,
        asked_at: float,
    ) -> None:
        """Hand what the request for ``action`` answered to the lifetime, and log it."""
        now, at = self._wall(), self._clock()
        step = self.lifetime.answered(action, answer, now=now, at=at, asked_at=asked_at)
        if isinstance(step, Sleep) and isinstance(answer, Exception):
            self.log.warning(
                "keep-alive: %s %s failed (%s); retrying in %.1f s",
                "extending" if isinstance(action, Extend) else "looking at",
                self.session_id, answer, step.seconds,
            )
        elif isinstance(action, Extend) and not isinstance(answer, Exception):
            self.log.info(
                "extended session %s by %d min (lifetime now %s min)",
                self.session_id, action.minutes, answer.timeout,
            )
            warning = (answer.model_extra or {}).get("warning")
            if warning:
                self.log.debug("the server said: %s", warning)

    def _end(self, step: Capped | Stop) -> None:
        """Log why the keeping ends: the cap is one warning, any other end one info line."""
        self.stopped_because = describe(step, self.session_id)
        log = self.log.warning if isinstance(step, Capped) else self.log.info
        log("%s", self.stopped_because)


class AsyncKeeper(Keeper):
    """One session's keep-alive task on the running event loop. See the module docstring."""

    _task: asyncio.Task[None] | None = None

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

        client = self._client(AsyncSkyvernClient)
        try:
            self._first_look()
            while True:
                action = self.lifetime.next_action()
                if isinstance(action, (Look, Extend)):
                    await self._ask(client, action)
                elif isinstance(action, Notify):
                    self._notice(action.remaining)
                elif isinstance(action, Sleep):
                    await asyncio.sleep(action.seconds)
                else:
                    self._end(action)
                    return
        finally:
            with contextlib.suppress(Exception):
                await asyncio.shield(client.aclose())

    async def _ask(self, client: Any, action: Look | Extend) -> None:
        asked_at = self._clock()
        answer: BrowserSessionResponse | Exception
        try:
            answer = await self._request(client, action)
        except Exception as exc:
            answer = exc
        self._answered(action, answer, asked_at=asked_at)

    def _notice(self, remaining: float) -> None:
        if self._on_notice is not None:
            try:
                self._on_notice(remaining)
            except Exception:
                logger.exception("the keep-alive notice failed")
