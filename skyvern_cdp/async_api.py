"""Attach asyncio Playwright to a Skyvern browser session.

>>> from skyvern_cdp.async_api import connect, launch, default_page
>>> async with connect("pbs_123", timeout=120) as browser:  # doctest: +SKIP
...     page = await default_page(browser)
...     await page.goto("https://example.com")

``connect`` can be awaited (``browser = await connect(id)``; then ``await browser.close()``),
used with ``async with``, or iterated to reattach while the session lives::

    async for browser in connect(id):  # doctest: +SKIP
        ...  # when it disconnects, the loop attaches again; it stops once the session ended

``launch(...)`` creates a session first and closes it again when the Browser is closed.

The value is a plain Playwright ``Browser``. Closing it disconnects and releases the
Playwright driver (one driver is shared by every Browser of an event loop, and started
while the session is still being polled). It never ends a session it did not create.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncIterator, Generator, Iterable
from types import TracebackType
from typing import Any

from playwright.async_api import Browser, Page, Playwright, async_playwright
from playwright.async_api import Error as PlaywrightError
from typing_extensions import Unpack

from skyvern_cdp import _attachment as shared
from skyvern_cdp.client import AsyncSkyvernClient, CreateSessionFields, OnStatus
from skyvern_cdp.config import conceal
from skyvern_cdp.errors import (
    APIError,
    CDPConnectError,
    InvalidArgumentTypeError,
    SessionClosedError,
    SessionEndedError,
    SessionNotReadyError,
)
from skyvern_cdp.models import BrowserSessionResponse
from skyvern_cdp.policy import (
    CONNECT_ATTEMPT_TIMEOUT,
    MIN_REQUEST_TIMEOUT,
    Deadline,
    Waiter,
    build_reconnect_delay,
    validate_session_id,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "Connect",
    "DriverStats",
    "Launch",
    "connect",
    "default_page",
    "driver_stats",
    "launch",
    "session_of",
]

logger = logging.getLogger("skyvern_cdp.async_api")

DEFAULT_TIMEOUT = shared.DEFAULT_TIMEOUT
DEFAULT_CLOSE_TIMEOUT = shared.DEFAULT_CLOSE_TIMEOUT
DriverStats = shared.DriverStats


# -- the shared driver ----------------------------------------------------------------------


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
        return await asyncio.wait_for(asyncio.shield(self._task), timeout)

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
        await _shielded(self._stopping)


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


async def _shielded(awaitable: asyncio.Future[Any]) -> None:
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


class _Lease:
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


# -- one attachment -------------------------------------------------------------------------


class _Attachment:
    """Everything a Browser of ours holds, and its teardown (idempotent, shielded)."""

    def __init__(
        self,
        session: BrowserSessionResponse,
        client: AsyncSkyvernClient,
        owns_client: bool,
        owns_session: bool,
        lease: _Lease,
        close_timeout: float,
    ) -> None:
        self.session = session
        self.client = client
        self.owns_client = owns_client
        self.owns_session = owns_session
        self.lease = lease
        self.close_timeout = close_timeout
        self._closing: asyncio.Future[None] | None = None

    async def close(self, browser: Browser | None, disconnect: Any = None) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._teardown(browser, disconnect))
        await _shielded(self._closing)

    async def _teardown(self, browser: Browser | None, disconnect: Any) -> None:
        sid = self.session.browser_session_id
        try:
            if disconnect is not None:
                try:
                    await asyncio.wait_for(disconnect(), self.close_timeout)
                except (PlaywrightError, asyncio.TimeoutError) as exc:
                    logger.debug("disconnecting from %s: %s", sid, type(exc).__name__)
            if self.owns_session:
                try:
                    await self.client.close_browser_session(sid, timeout=self.close_timeout)
                    logger.info("closed session %s", sid)
                except Exception as exc:
                    logger.warning("could not close session %s: %s", sid, exc)
        finally:
            try:
                if self.owns_client:
                    await self.client.aclose()
            finally:
                await self.lease.release()


_attachments: weakref.WeakKeyDictionary[Browser, _Attachment] = weakref.WeakKeyDictionary()


def session_of(browser: Browser) -> BrowserSessionResponse:
    """The session a Browser from :func:`connect` / :func:`launch` is attached to (as last seen)."""
    attachment = _attachments.get(browser)
    if attachment is None:
        raise InvalidArgumentTypeError("this Browser was not attached by skyvern_cdp")
    return attachment.session


def _adopt(browser: Browser, attachment: _Attachment) -> Browser:
    """Make ``browser.close()`` also run the attachment's teardown; register it."""
    disconnect = browser.close

    async def close(reason: str | None = None) -> None:
        await attachment.close(browser, lambda: disconnect(reason=reason))

    close.__doc__ = disconnect.__doc__
    browser.close = close  # type: ignore[method-assign]
    _attachments[browser] = attachment
    return browser


async def default_page(browser: Browser) -> Page:
    """The first page of the session's default context, or a new page there when it has none.

    >>> page = await default_page(browser)  # doctest: +SKIP
    """
    if not browser.contexts:
        raise CDPConnectError("the browser has no default context; was it attached over CDP?")
    context = browser.contexts[0]
    return context.pages[0] if context.pages else await context.new_page()


# -- connecting -----------------------------------------------------------------------------


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
            return await asyncio.wait_for(
                playwright.chromium.connect_over_cdp(endpoint, **kwargs),
                dialer.budget + MIN_REQUEST_TIMEOUT,
            )
        except asyncio.TimeoutError:
            pause = dialer.failed(None)
        except PlaywrightError as exc:
            pause = dialer.failed(exc)
        if pause > 0:
            await asyncio.sleep(pause)


async def _wait_ready(
    client: AsyncSkyvernClient, session_id: str, deadline: Deadline, on_status: OnStatus | None
) -> BrowserSessionResponse:
    waiter = Waiter(session_id, deadline, on_status)
    try:
        return await asyncio.wait_for(
            client._wait(waiter), deadline.remaining() + MIN_REQUEST_TIMEOUT + 0.25
        )
    except asyncio.TimeoutError:
        # the last poll hung past the deadline: Playwright is not involved yet, but bound it
        raise waiter.timed_out() from None


async def _attach(
    session_id: str,
    client: AsyncSkyvernClient,
    owns_client: bool,
    owns_session: bool,
    lease: _Lease,
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


def _client_for(
    client: AsyncSkyvernClient | None,
    api_key: str | None,
    base_url: str | None,
    trusted_hosts: Iterable[str] | None,
    allow_insecure_http: bool,
) -> tuple[AsyncSkyvernClient, bool]:
    if client is not None:
        if not isinstance(client, AsyncSkyvernClient):
            raise InvalidArgumentTypeError("client must be an AsyncSkyvernClient")
        return client, False
    made = AsyncSkyvernClient(
        api_key, base_url, trusted_hosts=trusted_hosts, allow_insecure_http=allow_insecure_http
    )
    return made, True


class _BrowserContextManager:
    """``await x`` → Browser; ``async with x as browser`` closes it on the way out."""

    _browser: Browser | None = None

    def _keep_client(
        self,
        client: AsyncSkyvernClient | None,
        api_key: str | None,
        base_url: str | None,
        trusted_hosts: Iterable[str] | None,
        allow_insecure_http: bool,
    ) -> None:
        """Resolve the client's settings now, so bad input fails before any request; the
        client made here serves the first attach, later ones (reattaching) make their own."""
        made, owned = _client_for(client, api_key, base_url, trusted_hosts, allow_insecure_http)
        self._client = client
        self._made: AsyncSkyvernClient | None = made if owned else None
        self._client_args = (api_key, base_url, trusted_hosts, allow_insecure_http)

    def _fresh_client(self) -> tuple[AsyncSkyvernClient, bool]:
        """The client of one attach, and whether that attach owns (and so closes) it."""
        if self._made is not None:
            made, self._made = self._made, None
            return made, True
        return _client_for(self._client, *self._client_args)

    async def _open(self) -> Browser:
        raise NotImplementedError

    def __await__(self) -> Generator[Any, None, Browser]:
        return self._open().__await__()

    async def __aenter__(self) -> Browser:
        self._browser = await self._open()
        return self._browser

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        browser, self._browser = self._browser, None
        if browser is not None:
            await browser.close()


class Connect(_BrowserContextManager):
    """What :func:`connect` returns: awaitable, an async context manager, and async-iterable."""

    def __init__(
        self,
        session_id: str,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        connect_attempt_timeout: float,
        close_timeout: float,
        trusted_hosts: Iterable[str] | None,
        allow_insecure_http: bool,
        playwright: Playwright | None,
        client: AsyncSkyvernClient | None,
        on_status: OnStatus | None,
        playwright_options: dict[str, Any],
    ) -> None:
        self.session_id = validate_session_id(session_id)
        self._options = shared.AttachOptions.check(
            timeout=timeout,
            connect_attempt_timeout=connect_attempt_timeout,
            close_timeout=close_timeout,
            playwright_options=playwright_options,
        )
        self._keep_client(client, api_key, base_url, trusted_hosts, allow_insecure_http)
        self._playwright = playwright
        self._on_status = on_status

    async def _open(self) -> Browser:
        deadline = Deadline(self._options.timeout)
        client, owns_client = self._fresh_client()
        lease = _Lease(self._playwright)
        try:
            return await _attach(
                self.session_id,
                client,
                owns_client,
                False,
                lease,
                self._options,
                deadline,
                self._on_status,
            )
        except BaseException:
            await _shielded(asyncio.ensure_future(_release(client, owns_client, lease)))
            raise

    async def __aiter__(self) -> AsyncIterator[Browser]:
        """Attach, yield, and attach again after each use, while the session is alive.

        Stops once the session has ended (or its endpoint said "session closed"); transient
        failures are retried with backoff. The Browser of each round is closed before the next.
        """
        failures = 0
        while True:
            try:
                browser = await self._open()
            except (SessionEndedError, SessionClosedError) as exc:
                logger.info("session %s is over: %s", self.session_id, type(exc).__name__)
                return
            except (SessionNotReadyError, CDPConnectError) as exc:
                failures += 1
                delay = build_reconnect_delay(failures)
                logger.info("reattaching to %s in %.1fs: %s", self.session_id, delay, exc)
                await asyncio.sleep(delay)
                continue
            except APIError as exc:
                if exc.status_code not in (429, 500, 502, 503, 504):
                    raise
                failures += 1
                await asyncio.sleep(build_reconnect_delay(failures))
                continue
            failures = 0
            try:
                yield browser
            finally:
                await browser.close()


async def _release(client: AsyncSkyvernClient, owns_client: bool, lease: _Lease) -> None:
    try:
        if owns_client:
            await client.aclose()
    finally:
        await lease.release()


def connect(
    session_id: str,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    connect_attempt_timeout: float = CONNECT_ATTEMPT_TIMEOUT,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    trusted_hosts: Iterable[str] | None = None,
    allow_insecure_http: bool = False,
    playwright: Playwright | None = None,
    client: AsyncSkyvernClient | None = None,
    on_status: OnStatus | None = None,
    **playwright_options: Any,
) -> Connect:
    """Attach to session ``session_id`` once it is ready, and return a Playwright ``Browser``.

    >>> browser = await connect("pbs_123")  # doctest: +SKIP
    >>> async with connect("pbs_123") as browser: ...  # doctest: +SKIP

    - ``timeout``: one overall deadline in seconds for waiting and connecting. It is enforced
      outside Playwright; the error names the phase that ran out
      (:class:`SessionNotReadyError` while waiting, :class:`CDPConnectTimeoutError` after).
    - ``connect_attempt_timeout``: the first CDP attempt's own limit (later attempts get
      more), so that a hung attempt leaves time for another.
    - ``close_timeout``: how long teardown may take.
    - ``api_key`` / ``base_url``: else ``SKYVERN_API_KEY`` / ``SKYVERN_BASE_URL``; a preset
      name (``cloud``, ``staging``, ``local``) works as a base URL.
    - ``trusted_hosts``: other hosts that may receive the API key on the CDP websocket (it
      always goes to the API's own host and its registrable domain, never elsewhere).
    - ``playwright``: a running ``Playwright`` to use (not stopped by us); by default one
      driver per event loop is shared and started while the session is polled.
    - ``on_status(session)``: called whenever the polled status changes.
    - anything else goes to ``connect_over_cdp`` (``slow_mo``, ``headers``, ...).

    Closing the Browser (or leaving ``async with``) disconnects; it never ends the session.
    """
    api_key = conceal(api_key)  # a traceback's locals show '<redacted>'
    return Connect(
        session_id,
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        connect_attempt_timeout=connect_attempt_timeout,
        close_timeout=close_timeout,
        trusted_hosts=trusted_hosts,
        allow_insecure_http=allow_insecure_http,
        playwright=playwright,
        client=client,
        on_status=on_status,
        playwright_options=playwright_options,
    )


class Launch(_BrowserContextManager):
    """What :func:`launch` returns: awaitable, and an async context manager."""

    def __init__(
        self,
        *,
        api_key: str | None,
        base_url: str | None,
        timeout: float,
        session_timeout_minutes: int | None,
        connect_attempt_timeout: float,
        close_timeout: float,
        trusted_hosts: Iterable[str] | None,
        allow_insecure_http: bool,
        playwright: Playwright | None,
        client: AsyncSkyvernClient | None,
        on_status: OnStatus | None,
        playwright_options: dict[str, Any] | None,
        create_fields: CreateSessionFields,
    ) -> None:
        from skyvern_cdp.client import build_create_body

        if playwright_options is not None and not isinstance(playwright_options, dict):
            raise InvalidArgumentTypeError("playwright_options must be a dict")
        self._options = shared.AttachOptions.check(
            timeout=timeout,
            connect_attempt_timeout=connect_attempt_timeout,
            close_timeout=close_timeout,
            playwright_options=playwright_options or {},
        )
        build_create_body(session_timeout_minutes, create_fields)  # typos fail here, not later
        self._keep_client(client, api_key, base_url, trusted_hosts, allow_insecure_http)
        self._minutes = session_timeout_minutes
        self._fields = create_fields
        self._playwright = playwright
        self._on_status = on_status

    async def _open(self) -> Browser:
        deadline = Deadline(self._options.timeout)
        client, owns_client = self._fresh_client()
        lease = _Lease(self._playwright)  # the driver starts while the session is created
        session: BrowserSessionResponse | None = None
        try:
            session = await _create(client, deadline, self._minutes, self._fields, self._options)
            return await _attach(
                session.browser_session_id,
                client,
                owns_client,
                True,
                lease,
                self._options,
                deadline,
                self._on_status,
            )
        except BaseException:
            await _shielded(
                asyncio.ensure_future(
                    _abandon(client, owns_client, lease, session, self._options.close_timeout)
                )
            )
            raise


async def _create(
    client: AsyncSkyvernClient,
    deadline: Deadline,
    minutes: int | None,
    fields: CreateSessionFields,
    options: shared.AttachOptions,
) -> BrowserSessionResponse:
    """Create a session; if cancelled meanwhile, still learn its id and close it."""
    task = asyncio.ensure_future(
        client.create_browser_session(
            timeout=max(deadline.remaining(), MIN_REQUEST_TIMEOUT),
            session_timeout_minutes=minutes,
            **fields,
        )
    )
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        try:
            made = await asyncio.wait_for(task, options.close_timeout)
        except BaseException:
            raise asyncio.CancelledError from None
        with contextlib.suppress(Exception):
            await client.close_browser_session(
                made.browser_session_id, timeout=options.close_timeout
            )
            logger.info("closed session %s after a cancelled launch", made.browser_session_id)
        raise


async def _abandon(
    client: AsyncSkyvernClient,
    owns_client: bool,
    lease: _Lease,
    session: BrowserSessionResponse | None,
    close_timeout: float,
) -> None:
    """A launch failed or was cancelled: close what it created, release what it held."""
    try:
        if session is not None:
            try:
                await client.close_browser_session(
                    session.browser_session_id, timeout=close_timeout
                )
                logger.info("closed session %s after a failed launch", session.browser_session_id)
            except Exception as exc:
                logger.warning("could not close session %s: %s", session.browser_session_id, exc)
    finally:
        await _release(client, owns_client, lease)


def launch(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    session_timeout_minutes: int | None = None,
    connect_attempt_timeout: float = CONNECT_ATTEMPT_TIMEOUT,
    close_timeout: float = DEFAULT_CLOSE_TIMEOUT,
    trusted_hosts: Iterable[str] | None = None,
    allow_insecure_http: bool = False,
    playwright: Playwright | None = None,
    client: AsyncSkyvernClient | None = None,
    on_status: OnStatus | None = None,
    playwright_options: dict[str, Any] | None = None,
    **create_fields: Unpack[CreateSessionFields],
) -> Launch:
    """Create a session, wait until it is ready, attach, and return the ``Browser``.

    >>> async with launch(session_timeout_minutes=15) as browser:  # doctest: +SKIP
    ...     page = await default_page(browser)

    ``timeout`` is the overall deadline in seconds (create + wait + connect);
    ``session_timeout_minutes`` is the session's lifetime, the create body's ``timeout``.
    Closing the Browser (or leaving ``async with``) also closes the session; so does a
    failed wait or connect, and a cancelled caller. Other arguments: see :func:`connect`;
    ``create_fields`` are the create body's fields (``url``, ``browser_type``, ...).
    """
    api_key = conceal(api_key)  # a traceback's locals show '<redacted>'
    return Launch(
        api_key=api_key,
        base_url=base_url,
        timeout=timeout,
        session_timeout_minutes=session_timeout_minutes,
        connect_attempt_timeout=connect_attempt_timeout,
        close_timeout=close_timeout,
        trusted_hosts=trusted_hosts,
        allow_insecure_http=allow_insecure_http,
        playwright=playwright,
        client=client,
        on_status=on_status,
        playwright_options=playwright_options,
        create_fields=create_fields,
    )
