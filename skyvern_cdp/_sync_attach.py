"""One attach on the sync side: poll in a helper thread while this thread starts the driver,
dial, and hand the caller a Browser whose ``close()`` runs the whole teardown once.

>>> browser = attach(session_id, client, ..., deadline, on_status)  # doctest: +SKIP
>>> session_of(browser).browser_session_id  # doctest: +SKIP
'pbs_123'

Used by :mod:`skyvern_cdp.sync_api`; the decisions come from :mod:`skyvern_cdp.policy` and
:mod:`skyvern_cdp._attachment`.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from typing import Any, cast

from playwright.sync_api import Browser, Playwright
from playwright.sync_api import Error as PlaywrightError

from skyvern_cdp import _attachment as shared
from skyvern_cdp._sessions import close_session_sync as close_session
from skyvern_cdp._sessions import create_sync as create
from skyvern_cdp._sync_driver import Lease
from skyvern_cdp.client import OnStatus, SkyvernClient
from skyvern_cdp.errors import InvalidArgumentTypeError, WrongThreadError
from skyvern_cdp.models import BrowserSessionResponse
from skyvern_cdp.policy import MIN_REQUEST_TIMEOUT, Deadline, Waiter, request_budget

__all__ = ["attach", "close_session", "create", "release", "session_of"]

logger = logging.getLogger("skyvern_cdp.sync_api")


class _Attachment:
    """Everything a Browser of ours holds, and its teardown (:class:`~._attachment.Teardown`):
    each ``close()`` does the steps left, within one ``close_timeout``, and a step an
    interrupt cut short is done by the next ``close()``."""

    def __init__(
        self,
        session: BrowserSessionResponse,
        client: SkyvernClient,
        owns_client: bool,
        owns_session: bool,
        lease: Lease,
        close_timeout: float,
    ) -> None:
        self.session = session
        self.client = client
        self.lease = lease
        self.close_timeout = close_timeout
        self.teardown = shared.Teardown(owns_session=owns_session, owns_client=owns_client)
        self.thread = threading.get_ident()
        self._lock = threading.RLock()

    def close(self, disconnect: Any) -> None:
        """Disconnect, close a launched session, release the driver; an interrupt meanwhile
        does not stop the other steps, and is re-raised after them."""
        with self._lock:
            if threading.get_ident() != self.thread:
                self._close_elsewhere()
            deadline = Deadline(self.close_timeout)
            interrupted: BaseException | None = None
            for step in self.teardown.todo():
                if not self.teardown.may(step):
                    continue
                try:
                    self._run(step, disconnect, deadline)
                except Exception as exc:  # logged; the step is as done as it can be
                    logger.debug("%s of %s: %s", step, self.session.browser_session_id, exc)
                except BaseException as exc:  # an interrupt: this step stays to do
                    interrupted = interrupted or exc
                    continue
                self.teardown.done(step)
            if interrupted is not None:
                raise interrupted

    def _run(self, step: str, disconnect: Any, deadline: Deadline) -> None:
        sid = self.session.browser_session_id
        if step == "disconnect":
            try:
                disconnect()
            except PlaywrightError as exc:
                logger.debug("disconnecting from %s: %s", sid, type(exc).__name__)
        elif step == "close_session":
            close_session(self.client, sid, request_budget(deadline.remaining()))
        elif step == "close_client":
            self.client.close()
        else:
            self.lease.release()

    def _close_elsewhere(self) -> None:
        """``close()`` from another thread: end a launched session (HTTP works from any
        thread), but leave Playwright, which only works in its own thread, to that thread."""
        sid = self.session.browser_session_id
        if "close_session" in self.teardown.todo():
            close_session(self.client, sid, self.close_timeout, " (closed from another thread)")
            self.teardown.done("close_session")
        raise WrongThreadError(
            f"the Browser of session {sid} was closed from another thread: sync Playwright only"
            " works in the thread that attached it; close it there"
            + (" (its session is closed already)" if self.teardown.may("close_client") else "")
        )


_attachments: weakref.WeakKeyDictionary[Browser, _Attachment] = weakref.WeakKeyDictionary()


def session_of(browser: Browser) -> BrowserSessionResponse:
    """The session a Browser from :func:`connect` / :func:`launch` is attached to (as last seen)."""
    attachment = _attachments.get(browser)
    if attachment is None:
        raise InvalidArgumentTypeError("this Browser was not attached by skyvern_cdp")
    return attachment.session


def _adopt(browser: Browser, attachment: _Attachment) -> Browser:
    disconnect = browser.close

    def close(reason: str | None = None) -> None:
        attachment.close(lambda: disconnect(reason=reason))

    close.__doc__ = disconnect.__doc__
    browser.close = close  # type: ignore[method-assign]
    _attachments[browser] = attachment
    return browser


def _dial(
    playwright: Playwright,
    session: BrowserSessionResponse,
    client: SkyvernClient,
    options: shared.AttachOptions,
    deadline: Deadline,
) -> Browser:
    """``connect_over_cdp`` with retries. Sync Playwright must run in this thread, so each
    attempt is bounded by Playwright's own ``timeout`` (set from the deadline)."""
    dialer = shared.Dialer(session, client.settings, options, deadline)
    while True:
        endpoint, kwargs = dialer.next_attempt()
        try:
            return playwright.chromium.connect_over_cdp(endpoint, **kwargs)
        except PlaywrightError as exc:
            pause = dialer.failed(exc)
        dialer.raise_if_final()  # outside the except: Playwright's error is not chained
        if pause > 0:
            threading.Event().wait(pause)


_POLL_DONE = object()


class _Poll:
    """Polls in a helper thread while this thread starts the Playwright driver.

    ``on_status`` is still called in the caller's thread, as everywhere else (the asyncio
    shell calls it on its loop): the helper thread queues each status change, and
    :meth:`result` delivers them once the driver has started, in order. A callback that
    raises stops the helper thread at its next poll.
    """

    def __init__(
        self,
        client: SkyvernClient,
        session_id: str,
        deadline: Deadline,
        on_status: OnStatus | None,
    ) -> None:
        self._on_status = on_status
        self._changes: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._stopped = False
        self._waiter = Waiter(session_id, deadline, self._queue if on_status else None)
        self._client = client
        self._result: BrowserSessionResponse | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="skyvern-cdp-poll", daemon=True)
        self._thread.start()

    def _queue(self, session: BrowserSessionResponse) -> None:
        if self._stopped:
            raise _PollStopped
        self._changes.put(session)

    def _run(self) -> None:
        try:
            self._result = self._client._wait(self._waiter)
        except BaseException as exc:
            self._error = exc
        finally:
            self._changes.put(_POLL_DONE)

    def result(self) -> BrowserSessionResponse:
        ends = time.monotonic() + self._waiter.deadline.remaining() + MIN_REQUEST_TIMEOUT + 0.25
        try:
            while True:
                try:
                    change = self._changes.get(timeout=max(0.0, ends - time.monotonic()))
                except queue.Empty:
                    raise self._waiter.timed_out() from None
                if change is _POLL_DONE:
                    break
                assert self._on_status is not None
                self._on_status(cast(BrowserSessionResponse, change))
        except BaseException:
            self._stopped = True
            raise
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        assert self._result is not None
        return self._result


class _PollStopped(Exception):
    """The caller of a :class:`_Poll` gave up: its helper thread stops polling."""


def attach(
    session_id: str,
    client: SkyvernClient,
    owns_client: bool,
    owns_session: bool,
    lease: Lease,
    options: shared.AttachOptions,
    deadline: Deadline,
    on_status: OnStatus | None,
) -> Browser:
    if lease.needs_start:
        poll = _Poll(client, session_id, deadline, on_status)
        playwright = lease.get()  # starts the driver while the helper thread polls
        session = poll.result()
    else:
        session = client._wait(Waiter(session_id, deadline, on_status))
        playwright = lease.get()
    browser = _dial(playwright, session, client, options, deadline)
    attachment = _Attachment(
        session, client, owns_client, owns_session, lease, options.close_timeout
    )
    return _adopt(browser, attachment)


def release(client: SkyvernClient, owns_client: bool, lease: Lease) -> None:
    try:
        if owns_client:
            client.close()
    finally:
        lease.release()
