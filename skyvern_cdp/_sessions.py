"""Creating and closing the sessions this process makes, for both shells and the CLI, the
pytest plugin, the relay and the notebook: no Playwright here.

>>> session = await create(client, Deadline(60), 15, {}, close_timeout=10)  # doctest: +SKIP
>>> session = create_sync(client, Deadline(60), 15, {}, close_timeout=10)  # doctest: +SKIP

A create is protected the same way on both sides: the request runs apart from its caller
(a task, a thread), and :class:`~skyvern_cdp._attachment.CreateGuard` decides which side
closes a session that the request made after the caller gave up (Ctrl-C, a ``SystemExit``
from a SIGTERM handler, a cancellation). :func:`shielded` is how the asyncio side awaits
what must finish even when its caller is cancelled, again and again as anyio does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from concurrent.futures import Future
from typing import Any

from skyvern_cdp import _attachment as shared
from skyvern_cdp._wait_within import wait_within
from skyvern_cdp.client import AsyncSkyvernClient, CreateSessionFields, SkyvernClient
from skyvern_cdp.models import BrowserSessionResponse
from skyvern_cdp.policy import Deadline, request_budget

__all__ = ["close_session", "close_session_sync", "create", "create_sync", "shielded"]

logger = logging.getLogger("skyvern_cdp.sessions")

_CANCELLED = " after a cancelled launch"


async def shielded(awaitable: asyncio.Future[Any]) -> None:
    """Await to the end even if cancelled meanwhile; re-raise the cancellation afterwards."""
    cancelled = False
    while not awaitable.done():
        try:
            await asyncio.shield(awaitable)
        except asyncio.CancelledError:
            if awaitable.done():
                break
            cancelled = True
    with contextlib.suppress(BaseException):
        awaitable.result()
    if cancelled:
        raise asyncio.CancelledError


async def close_session(
    client: AsyncSkyvernClient, session_id: str, timeout: float, why: str = ""
) -> bool:
    """Close a session this process created and log the outcome; whether it closed. Never
    raises, so the rest of a teardown still runs."""
    try:
        await client.close_browser_session(session_id, timeout=timeout)
    except Exception as exc:
        logger.warning("could not close session %s: %s", session_id, exc)
        return False
    logger.info("closed session %s%s", session_id, why)
    return True


async def create(
    client: AsyncSkyvernClient,
    deadline: Deadline,
    minutes: int | None,
    fields: CreateSessionFields,
    close_timeout: float,
) -> BrowserSessionResponse:
    """Create a session within ``deadline``; if the caller is cancelled meanwhile, the session
    the request makes is still closed (:class:`~._attachment.CreateGuard`). Nothing after the
    cancellation is awaited unshielded: anyio cancels again at every await."""
    guard = shared.CreateGuard()

    async def request() -> BrowserSessionResponse:
        made = await client.create_browser_session(
            timeout=request_budget(deadline.remaining()), session_timeout_minutes=minutes, **fields
        )
        if guard.made(made):
            await close_session(client, made.browser_session_id, close_timeout, _CANCELLED)
        return made

    task = asyncio.ensure_future(request())
    try:
        return await asyncio.shield(task)
    except BaseException:
        if not (task.done() and not task.cancelled() and task.exception() is not None):
            # the caller gave up (the create itself did not fail): close what it makes
            await shielded(
                asyncio.ensure_future(_abandon_create(task, guard, client, close_timeout))
            )
        raise


async def _abandon_create(
    task: asyncio.Future[BrowserSessionResponse],
    guard: shared.CreateGuard,
    client: AsyncSkyvernClient,
    close_timeout: float,
) -> None:
    made = guard.abandon()
    if isinstance(made, BrowserSessionResponse):
        await close_session(client, made.browser_session_id, close_timeout, _CANCELLED)
        return
    try:  # the request side closes it once it answers; wait for that (bounded)
        await wait_within(asyncio.shield(task), shared.CreateGuard.wait_for(close_timeout))
    except BaseException as exc:
        logger.debug("the cancelled create did not finish: %s", type(exc).__name__)


def close_session_sync(
    client: SkyvernClient, session_id: str, timeout: float, why: str = ""
) -> bool:
    """:func:`close_session` for the blocking client."""
    try:
        client.close_browser_session(session_id, timeout=timeout)
    except Exception as exc:
        logger.warning("could not close session %s: %s", session_id, exc)
        return False
    logger.info("closed session %s%s", session_id, why)
    return True


class _Create:
    """A create request run in a worker thread, so that an interrupt in the caller's thread
    (``KeyboardInterrupt``, a ``SystemExit`` from a SIGTERM handler) does not lose its
    answer; :class:`~._attachment.CreateGuard` decides which side closes what it made."""

    def __init__(
        self,
        http: SkyvernClient,
        deadline: Deadline,
        minutes: int | None,
        fields: CreateSessionFields,
        close_timeout: float,
    ) -> None:
        self._http, self._close_timeout = http, close_timeout
        self._guard = shared.CreateGuard()
        self.future: Future[BrowserSessionResponse] = Future()
        self.thread = threading.Thread(
            target=self._run,
            args=(request_budget(deadline.remaining()), minutes, fields),
            name="skyvern-cdp-create",
            daemon=True,
        )
        self.thread.start()

    def _run(self, timeout: float, minutes: int | None, fields: CreateSessionFields) -> None:
        try:
            made = self._http.create_browser_session(
                timeout=timeout, session_timeout_minutes=minutes, **fields
            )
        except BaseException as exc:
            self.future.set_exception(exc)
            return
        if self._guard.made(made):
            close_session_sync(self._http, made.browser_session_id, self._close_timeout, _CANCELLED)
        self.future.set_result(made)

    def abandon(self) -> None:
        """The caller gave up: close the session now, or as soon as it exists (waiting for
        that a bounded time, so that the close is sent before the process ends)."""
        made = self._guard.abandon()
        if isinstance(made, BrowserSessionResponse):
            close_session_sync(self._http, made.browser_session_id, self._close_timeout, _CANCELLED)
        else:
            self.thread.join(shared.CreateGuard.wait_for(self._close_timeout))


def create_sync(
    http: SkyvernClient,
    deadline: Deadline,
    minutes: int | None,
    fields: CreateSessionFields,
    close_timeout: float,
) -> BrowserSessionResponse:
    """Create a session within ``deadline``; whatever interrupts the caller meanwhile, the
    session the request makes is closed (the sync twin of the asyncio shell's ``create``).

    >>> session = create(client, Deadline(60), 15, {}, close_timeout=10)  # doctest: +SKIP
    """
    request = _Create(http, deadline, minutes, fields, close_timeout)
    try:
        return request.future.result()
    except BaseException:
        if not (request.future.done() and request.future.exception() is not None):
            request.abandon()  # the caller gave up (the create itself did not fail)
        raise
