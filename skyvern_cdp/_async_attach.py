"""One attach on the asyncio side: wait until the session is ready, dial it while the driver
starts, and hand the caller a Browser whose ``close()`` runs the whole teardown (disconnect,
close a launched session, close an owned client, release the driver), once, shielded.

>>> browser = await attach(session_id, client, ..., deadline, on_status)  # doctest: +SKIP
>>> session_of(browser).browser_session_id  # doctest: +SKIP
'pbs_123'

Used by :mod:`skyvern_cdp.async_api`; every decision it makes comes from
:mod:`skyvern_cdp.policy` and :mod:`skyvern_cdp._attachment`.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from typing import Any

from playwright.async_api import Browser, Playwright
from playwright.async_api import Error as PlaywrightError

from skyvern_cdp import _attachment as shared
from skyvern_cdp._async_driver import Lease
from skyvern_cdp._sessions import close_session, create, shielded
from skyvern_cdp._wait_within import wait_within
from skyvern_cdp.client import AsyncSkyvernClient, OnStatus
from skyvern_cdp.errors import InvalidArgumentTypeError
from skyvern_cdp.models import BrowserSessionResponse
from skyvern_cdp.policy import MIN_REQUEST_TIMEOUT, Deadline, Waiter, request_budget

__all__ = [
    "abandon", "api_base_url_of", "attach", "close_session", "create", "release", "session_of",
]

logger = logging.getLogger("skyvern_cdp.async_api")


class _Attachment:
    """Everything a Browser of ours holds, and its teardown (:class:`~._attachment.Teardown`),
    run in a task of its own and awaited shielded: a cancelled caller (anyio cancels again at
    every await) cannot cut it short. Steps a cancellation of that task itself cut short
    (the loop closing) are done by the next ``close()``."""

    def __init__(
        self,
        session: BrowserSessionResponse,
        client: AsyncSkyvernClient,
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
        self._closing: asyncio.Future[None] | None = None

    async def close(self, browser: Browser | None, disconnect: Any = None) -> None:
        if self._closing is None or (self._closing.done() and not self.teardown.finished):
            self._closing = asyncio.ensure_future(self._teardown(disconnect))
        await shielded(self._closing)

    async def _teardown(self, disconnect: Any) -> None:
        deadline = Deadline(self.close_timeout)
        interrupted: BaseException | None = None
        for step in self.teardown.todo():
            if not self.teardown.may(step):
                continue
            try:
                await self._run(step, disconnect, deadline)
            except Exception as exc:  # logged; the step is as done as it can be
                logger.debug("%s of %s: %s", step, self.session.browser_session_id, exc)
            except BaseException as exc:  # cancelled: this step stays to do
                interrupted = interrupted or exc
                continue
            self.teardown.done(step)
        if interrupted is not None:
            raise interrupted

    async def _run(self, step: str, disconnect: Any, deadline: Deadline) -> None:
        sid = self.session.browser_session_id
        if step == "disconnect":
            if disconnect is not None:
                try:
                    await wait_within(disconnect(), deadline.remaining())
                except (PlaywrightError, asyncio.TimeoutError) as exc:
                    logger.debug("disconnecting from %s: %s", sid, type(exc).__name__)
        elif step == "close_session":
            await close_session(self.client, sid, request_budget(deadline.remaining()))
        elif step == "close_client":
            await self.client.aclose()
        else:
            await self.lease.release()


_attachments: weakref.WeakKeyDictionary[Browser, _Attachment] = weakref.WeakKeyDictionary()


def session_of(browser: Browser) -> BrowserSessionResponse:
    """The session a Browser from :func:`connect` / :func:`launch` is attached to (as last seen)."""
    attachment = _attachments.get(browser)
    if attachment is None:
        raise InvalidArgumentTypeError("this Browser was not attached by skyvern_cdp")
    return attachment.session


def api_base_url_of(browser: Browser) -> str:
    """The base URL of the API that a Browser from :func:`connect` / :func:`launch` came from."""
    attachment = _attachments.get(browser)
    if attachment is None:
        raise InvalidArgumentTypeError("this Browser was not attached by skyvern_cdp")
    return attachment.client.settings.base_url


def _adopt(browser: Browser, attachment: _Attachment) -> Browser:
    """Make ``browser.close()`` also run the attachment's teardown; register it."""
    disconnect = browser.close

    async def close(reason: str | None = None) -> None:
        await attachment.close(browser, lambda: disconnect(reason=reason))

    close.__doc__ = disconnect.__doc__
    browser.close = close  # type: ignore[method-assign]
    _attachments[browser] = attachment
    return browser


async def _dial(
    playwright: Playwright,
    session: BrowserSessionResponse,
    client: AsyncSkyvernClient,
    options: shared.AttachOptions,
    deadline: Deadline,
) -> Browser:
    """``connect_over_cdp`` with retries; each attempt bounded outside Playwright too."""
    dialer = shared.Dialer(session, client.settings, options, deadline)
    while True:
        endpoint, kwargs = dialer.next_attempt()
        try:
            return await wait_within(
                playwright.chromium.connect_over_cdp(endpoint, **kwargs),
                dialer.budget + MIN_REQUEST_TIMEOUT,
            )
        except asyncio.TimeoutError:
            pause = dialer.failed(None)
        except PlaywrightError as exc:
            pause = dialer.failed(exc)
        dialer.raise_if_final()  # outside the except: Playwright's error is not chained
        if pause > 0:
            await asyncio.sleep(pause)


async def _wait_ready(
    client: AsyncSkyvernClient, session_id: str, deadline: Deadline, on_status: OnStatus | None
) -> BrowserSessionResponse:
    waiter = Waiter(session_id, deadline, on_status)
    try:
        return await wait_within(
            client._wait(waiter), deadline.remaining() + MIN_REQUEST_TIMEOUT + 0.25
        )
    except asyncio.TimeoutError:
        # the last poll hung past the deadline: Playwright is not involved yet, but bound it
        raise waiter.timed_out() from None


async def attach(
    session_id: str,
    client: AsyncSkyvernClient,
    owns_client: bool,
    owns_session: bool,
    lease: Lease,
    options: shared.AttachOptions,
    deadline: Deadline,
    on_status: OnStatus | None,
) -> Browser:
    """Wait, then dial; the lease's driver has been starting meanwhile. Hands every resource to
    the Browser on success, and releases it on failure (the caller closes what it created)."""
    session = await _wait_ready(client, session_id, deadline, on_status)
    try:
        playwright = await lease.get(deadline.remaining())
    except asyncio.TimeoutError:
        raise shared.connect_timed_out(
            session, deadline, 0, "", "starting the Playwright driver"
        ) from None
    browser = await _dial(playwright, session, client, options, deadline)
    attachment = _Attachment(
        session, client, owns_client, owns_session, lease, options.close_timeout
    )
    return _adopt(browser, attachment)


async def release(client: AsyncSkyvernClient, owns_client: bool, lease: Lease) -> None:
    try:
        if owns_client:
            await client.aclose()
    finally:
        await lease.release()


async def abandon(
    client: AsyncSkyvernClient,
    owns_client: bool,
    lease: Lease,
    session: BrowserSessionResponse | None,
    close_timeout: float,
) -> None:
    """A launch failed or was cancelled: close what it created, release what it held."""
    try:
        if session is not None:
            await close_session(
                client, session.browser_session_id, close_timeout, " after a failed launch"
            )
    finally:
        await release(client, owns_client, lease)
