"""Keep a session alive from a background thread (the sync API's keeper).

>>> from skyvern_cdp.keeper_thread import ThreadKeeper
>>> keeper = ThreadKeeper(client.settings, "pbs_123", KeepAlive()).start()  # doctest: +SKIP
>>> keeper.stop()  # doctest: +SKIP

``sync_api.connect(..., keep_alive=True)`` (and ``launch``) start one and stop it when the
Browser is closed. It runs the same decisions as :mod:`skyvern_cdp.keeper` in a daemon thread
with its own :class:`~skyvern_cdp.client.SkyvernClient`, and never touches Playwright objects
(sync Playwright belongs to the thread that started it). Failures are logged and retried,
never raised into your code; the thread ends when the session ends, the 360-minute cap is
reached (one warning), or :meth:`ThreadKeeper.stop` is called.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from skyvern_cdp.config import Settings
from skyvern_cdp.errors import SessionNotFoundError
from skyvern_cdp.keeper import REQUEST_TIMEOUT, describe
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

__all__ = ["STOP_TIMEOUT", "ThreadKeeper", "thread_keeper_of"]

logger = logging.getLogger("skyvern_cdp.keeper_thread")

#: Seconds :meth:`ThreadKeeper.stop` waits for the thread (a request in flight is abandoned).
STOP_TIMEOUT = 5.0

_keepers: weakref.WeakKeyDictionary[Any, ThreadKeeper] = weakref.WeakKeyDictionary()


def thread_keeper_of(browser: Any) -> ThreadKeeper | None:
    """The keeper started for ``browser`` (a sync Playwright Browser), if any."""
    return _keepers.get(browser)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class ThreadKeeper:
    """One session's keep-alive thread. See the module docstring."""

    def __init__(
        self,
        settings: Settings,
        session_id: str,
        policy: KeepAlive,
        *,
        first: BrowserSessionResponse | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] = _utcnow,
    ) -> None:
        self.session_id = session_id
        self.lifetime = Lifetime(policy)
        self._first = first
        self._settings = settings
        self._clock = clock
        self._wall = wall_clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: Why it stopped (``None`` while it runs).
        self.stopped_because: str | None = None

    @classmethod
    def for_browser(
        cls,
        browser: Any,
        settings: Settings,
        session_id: str,
        policy: KeepAlive,
        first: BrowserSessionResponse | None = None,
    ) -> ThreadKeeper:
        """Start a keeper that stops when ``browser`` (sync Playwright) is closed.

        Set up in the caller's thread: ``browser.close()`` stops the keeper first (and the
        ``disconnected`` event, when sync Playwright delivers it); the thread itself never
        touches the Browser.
        """
        keeper = cls(settings, session_id, policy, first=first).start()
        close = browser.close

        def closing(reason: str | None = None) -> None:
            keeper.stop("the Browser was closed")
            close(reason=reason)

        closing.__doc__ = close.__doc__
        browser.close = closing
        browser.once("disconnected", lambda _: keeper.stop("the Browser disconnected", 0.0))
        _keepers[browser] = keeper
        return keeper

    @property
    def extensions(self) -> int:
        """How many extensions the server granted so far."""
        return self.lifetime.extensions

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ThreadKeeper:
        """Start the thread (idempotent); returns ``self``."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"skyvern-keep-alive-{self.session_id}", daemon=True
            )
            self._thread.start()
        return self

    def stop(self, reason: str = "stopped", timeout: float = STOP_TIMEOUT) -> None:
        """Stop and wait (up to ``timeout`` seconds) for the thread to end. Idempotent."""
        if self.stopped_because is None and self.running:
            self.stopped_because = reason
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("the keep-alive thread of %s is still busy", self.session_id)

    def _run(self) -> None:
        from skyvern_cdp.client import SkyvernClient

        s = self._settings
        try:
            with SkyvernClient(
                s.api_key,
                s.base_url,
                trusted_hosts=s.trusted_hosts,
                allow_insecure_http=s.allow_insecure_http,
            ) as client:
                self._loop(client)
        except Exception:  # never let the thread die with a traceback on stderr
            logger.exception("the keep-alive thread of %s failed", self.session_id)

    def _loop(self, client: Any) -> None:
        while not self._stop.is_set():
            first, self._first = self._first, None
            if first is not None:  # the session as the attach saw it: no request needed
                remaining = remaining_lifetime(first, now=self._wall())
                step = self.lifetime.observe(first, remaining=remaining, at=self._clock())
            else:
                step = self._look(client)
            while isinstance(step, Extend) and not self._stop.is_set():
                step = self._extend(client, step.minutes)
            if isinstance(step, Notify):
                step = step.then
            if isinstance(step, (Capped, Stop)):
                self.stopped_because = describe(step, self.session_id)
                log = logger.warning if isinstance(step, Capped) else logger.info
                log("%s", self.stopped_because)
                return
            if isinstance(step, Sleep):
                self._stop.wait(step.seconds)

    def _look(self, client: Any) -> Step:
        at = self._clock()
        try:
            session = client.get_browser_session(self.session_id, timeout=REQUEST_TIMEOUT)
        except SessionNotFoundError:
            return Stop("the session is not found")
        except Exception as exc:
            step = self.lifetime.failed(at=self._clock())
            logger.warning(
                "keep-alive: looking at %s failed (%s); retrying in %.1f s",
                self.session_id, exc, step.seconds,
            )
            return step
        return self.lifetime.observe(
            session, remaining=remaining_lifetime(session, now=self._wall()), at=at
        )

    def _extend(self, client: Any, minutes: int) -> Step:
        at = self._clock()
        try:
            session = client.extend_browser_session(
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
        logger.info(
            "extended session %s by %d min (lifetime now %s min)",
            self.session_id, minutes, session.timeout,
        )
        return self.lifetime.extended(
            session, remaining=remaining_lifetime(session, now=self._wall()), at=at
        )
