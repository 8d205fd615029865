"""Attach sync Playwright to a Skyvern browser session.

>>> from skyvern_cdp.sync_api import connect, launch, default_page
>>> with connect("pbs_123", timeout=120) as browser:  # doctest: +SKIP
...     page = default_page(browser)
...     page.goto("https://example.com")

``connect(id)`` returns a plain Playwright ``Browser``, which is itself a context manager:
``browser = connect(id)`` … ``browser.close()``, or ``with connect(id) as browser:``.
``launch(...)`` creates a session first and closes it when the Browser is closed.

One sync Playwright driver is shared per thread and started while the session is polled
(the poll runs in a helper thread meanwhile). Closing the last Browser stops it.

Inside a running asyncio loop (a notebook cell, an async test) Playwright's sync API cannot
work, so this module raises :class:`~skyvern_cdp.errors.SyncAPIInAsyncLoopError` there,
before any request: use ``await skyvern_cdp.async_api.connect(...)`` instead. A sync
Playwright that is already running in this thread (ours, or one passed as ``playwright=``,
such as pytest-playwright's) is fine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import weakref
from collections.abc import Iterable
from typing import Any

from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from playwright.sync_api import Error as PlaywrightError
from typing_extensions import Unpack

from skyvern_cdp import _attachment as shared
from skyvern_cdp.client import CreateSessionFields, OnStatus, SkyvernClient, build_create_body
from skyvern_cdp.config import conceal
from skyvern_cdp.errors import (
    CDPConnectError,
    InvalidArgumentTypeError,
    SyncAPIInAsyncLoopError,
)
from skyvern_cdp.models import BrowserSessionResponse
from skyvern_cdp.policy import (
    CONNECT_ATTEMPT_TIMEOUT,
    MIN_REQUEST_TIMEOUT,
    Deadline,
    Waiter,
    validate_session_id,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "DriverStats",
    "connect",
    "default_page",
    "driver_stats",
    "launch",
    "session_of",
]

logger = logging.getLogger("skyvern_cdp.sync_api")

DEFAULT_TIMEOUT = shared.DEFAULT_TIMEOUT
DEFAULT_CLOSE_TIMEOUT = shared.DEFAULT_CLOSE_TIMEOUT
DriverStats = shared.DriverStats


# -- the shared driver (one per thread) -----------------------------------------------------


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


def _check_no_foreign_loop(playwright: Playwright | None) -> None:
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


class _Lease:
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


# -- one attachment -------------------------------------------------------------------------


class _Attachment:
    def __init__(
        self,
        session: BrowserSessionResponse,
        client: SkyvernClient,
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
        self.closed = False

    def close(self, disconnect: Any) -> None:
        """Disconnect, close a launched session, release the driver. Idempotent."""
        if self.closed:
            return
        self.closed = True
        sid = self.session.browser_session_id
        try:
            try:
                disconnect()
            except PlaywrightError as exc:
                logger.debug("disconnecting from %s: %s", sid, type(exc).__name__)
            if self.owns_session:
                try:
                    self.client.close_browser_session(sid, timeout=self.close_timeout)
                    logger.info("closed session %s", sid)
                except Exception as exc:
                    logger.warning("could not close session %s: %s", sid, exc)
        finally:
            try:
                if self.owns_client:
                    self.client.close()
            finally:
                self.lease.release()


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


def default_page(browser: Browser) -> Page:
    """The first page of the session's default context, or a new page there when it has none."""
    if not browser.contexts:
        raise CDPConnectError("the browser has no default context; was it attached over CDP?")
    context = browser.contexts[0]
    return context.pages[0] if context.pages else context.new_page()


# -- connecting -----------------------------------------------------------------------------


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
        if pause > 0:
            threading.Event().wait(pause)


class _Poll:
    """Polls in a helper thread while this thread starts the Playwright driver."""

    def __init__(
        self,
        client: SkyvernClient,
        session_id: str,
        deadline: Deadline,
        on_status: OnStatus | None,
    ) -> None:
        self._waiter = Waiter(session_id, deadline, on_status)
        self._client = client
        self._result: BrowserSessionResponse | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="skyvern-cdp-poll", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._result = self._client._wait(self._waiter)
        except BaseException as exc:
            self._error = exc

    def result(self) -> BrowserSessionResponse:
        self._thread.join(self._waiter.deadline.remaining() + MIN_REQUEST_TIMEOUT + 0.25)
        if self._thread.is_alive():
            raise self._waiter.timed_out()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        assert self._result is not None
        return self._result


def _attach(
    session_id: str,
    client: SkyvernClient,
    owns_client: bool,
    owns_session: bool,
    lease: _Lease,
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


def _client_for(
    client: SkyvernClient | None,
    api_key: str | None,
    base_url: str | None,
    trusted_hosts: Iterable[str] | None,
    allow_insecure_http: bool,
) -> tuple[SkyvernClient, bool]:
    if client is not None:
        if not isinstance(client, SkyvernClient):
            raise InvalidArgumentTypeError("client must be a SkyvernClient")
        return client, False
    made = SkyvernClient(
        api_key, base_url, trusted_hosts=trusted_hosts, allow_insecure_http=allow_insecure_http
    )
    return made, True


def _release(client: SkyvernClient, owns_client: bool, lease: _Lease) -> None:
    try:
        if owns_client:
            client.close()
    finally:
        lease.release()


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
    client: SkyvernClient | None = None,
    on_status: OnStatus | None = None,
    **playwright_options: Any,
) -> Browser:
    """Attach to session ``session_id`` once it is ready, and return a Playwright ``Browser``.

    >>> with connect("pbs_123") as browser:  # doctest: +SKIP
    ...     page = default_page(browser)

    The arguments are those of :func:`skyvern_cdp.async_api.connect`. Closing the Browser
    (or leaving ``with``) disconnects and releases the driver; it never ends the session.
    """
    api_key = conceal(api_key)  # a traceback's locals show '<redacted>'
    sid = validate_session_id(session_id)
    options = shared.AttachOptions.check(
        timeout=timeout,
        connect_attempt_timeout=connect_attempt_timeout,
        close_timeout=close_timeout,
        playwright_options=playwright_options,
    )
    http, owns_client = _client_for(client, api_key, base_url, trusted_hosts, allow_insecure_http)
    lease = _Lease(playwright)
    try:
        _check_no_foreign_loop(playwright)
        return _attach(
            sid, http, owns_client, False, lease, options, Deadline(options.timeout), on_status
        )
    except BaseException:
        _release(http, owns_client, lease)
        raise


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
    client: SkyvernClient | None = None,
    on_status: OnStatus | None = None,
    playwright_options: dict[str, Any] | None = None,
    **create_fields: Unpack[CreateSessionFields],
) -> Browser:
    """Create a session, wait until it is ready, attach, and return the ``Browser``.

    >>> with launch(session_timeout_minutes=15) as browser:  # doctest: +SKIP
    ...     default_page(browser).goto("https://example.com")

    See :func:`skyvern_cdp.async_api.launch`. Closing the Browser also closes the session;
    so does a failed wait or connect, and a KeyboardInterrupt.
    """
    api_key = conceal(api_key)  # a traceback's locals show '<redacted>'
    if playwright_options is not None and not isinstance(playwright_options, dict):
        raise InvalidArgumentTypeError("playwright_options must be a dict")
    options = shared.AttachOptions.check(
        timeout=timeout,
        connect_attempt_timeout=connect_attempt_timeout,
        close_timeout=close_timeout,
        playwright_options=playwright_options or {},
    )
    build_create_body(session_timeout_minutes, create_fields)
    http, owns_client = _client_for(client, api_key, base_url, trusted_hosts, allow_insecure_http)
    lease = _Lease(playwright)
    deadline = Deadline(options.timeout)
    session: BrowserSessionResponse | None = None
    try:
        _check_no_foreign_loop(playwright)
        session = http.create_browser_session(
            timeout=max(deadline.remaining(), MIN_REQUEST_TIMEOUT),
            session_timeout_minutes=session_timeout_minutes,
            **create_fields,
        )
        return _attach(
            session.browser_session_id, http, owns_client, True, lease, options, deadline, on_status
        )
    except BaseException:
        try:
            if session is not None:
                try:
                    http.close_browser_session(
                        session.browser_session_id, timeout=options.close_timeout
                    )
                    logger.info(
                        "closed session %s after a failed launch", session.browser_session_id
                    )
                except Exception as exc:
                    logger.warning(
                        "could not close session %s: %s", session.browser_session_id, exc
                    )
        finally:
            _release(http, owns_client, lease)
        raise
