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
from datetime import datetime
from typing import TYPE_CHECKING, Any

from skyvern_cdp.config import Settings
from skyvern_cdp.keeper import REQUEST_TIMEOUT as REQUEST_TIMEOUT
from skyvern_cdp.keeper import Keeper, _utcnow
from skyvern_cdp.keeper import describe as describe
from skyvern_cdp.lifetime import Extend, KeepAlive, Look, Notify, Sleep

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


class ThreadKeeper(Keeper):
    """One session's keep-alive thread. See the module docstring."""

    log = logger

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
        super().__init__(
            settings, session_id, policy, first=first, clock=clock, wall_clock=wall_clock
        )
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

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

        try:
            with self._client(SkyvernClient) as client:
                self._loop(client)
        except Exception:  # never let the thread die with a traceback on stderr
            logger.exception("the keep-alive thread of %s failed", self.session_id)

    def _loop(self, client: Any) -> None:
        if self._stop.is_set():
            return
        self._first_look()
        while True:
            action = self.lifetime.next_action()
            if isinstance(action, (Look, Extend)):
                if self._stop.is_set():
                    return
                self._ask(client, action)
            elif isinstance(action, Sleep):
                self._stop.wait(action.seconds)
            elif not isinstance(action, Notify):  # a thread has no one to notify
                self._end(action)
                return

    def _ask(self, client: Any, action: Look | Extend) -> None:
        asked_at = self._clock()
        answer: BrowserSessionResponse | Exception
        try:
            answer = self._request(client, action)
        except Exception as exc:
            answer = exc
        self._answered(action, answer, asked_at=asked_at)
