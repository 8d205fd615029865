"""Attach asyncio Playwright to a Skyvern browser session.

>>> from skyvern_cdp.async_api import connect, launch, default_page
>>> async with connect("pbs_123", timeout=120) as browser:  # doctest: +SKIP
...     page = await default_page(browser)
...     await page.goto("https://example.com")

``connect`` can be awaited (``browser = await connect(id)``; then ``await browser.close()``),
used with ``async with``, or iterated to reattach while the session lives::

    async for browser in connect(id):  # doctest: +SKIP
        ...  # when this body is done (it disconnected), the loop attaches again, until the
        ...  # session ends; an attach that fails (a refused key, ...) raises

``launch(...)`` creates a session first and closes it again when the Browser is closed.

The value is a plain Playwright ``Browser``. Closing it disconnects and releases the
Playwright driver (one driver is shared by every Browser of an event loop, and started
while the session is still being polled). It never ends a session it did not create.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Generator, Iterable
from types import TracebackType
from typing import Any, cast

from playwright.async_api import Browser, Page, Playwright
from typing_extensions import Unpack

from skyvern_cdp import _attachment as shared
from skyvern_cdp._async_attach import abandon, attach, create, release, session_of
from skyvern_cdp._async_capture import capture_profile
from skyvern_cdp._async_driver import Lease, driver_stats, shielded
from skyvern_cdp.client import AsyncSkyvernClient, CreateSessionFields, OnStatus, client_for
from skyvern_cdp.config import conceal
from skyvern_cdp.errors import CDPConnectError, SessionClosedError, SessionEndedError
from skyvern_cdp.keeper import AsyncKeeper
from skyvern_cdp.lifetime import KeepAlive, keep_alive_policy
from skyvern_cdp.models import BrowserSessionResponse
from skyvern_cdp.policy import (
    CONNECT_ATTEMPT_TIMEOUT,
    MIN_REQUEST_TIMEOUT,
    Deadline,
    validate_session_id,
)
from skyvern_cdp.policy.profiles import ProfileRef

__all__ = [
    "DEFAULT_TIMEOUT",
    "Connect",
    "DriverStats",
    "Launch",
    "capture_profile",
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


async def resolve_profile(
    client: AsyncSkyvernClient, ref: ProfileRef, deadline: Deadline
) -> str:
    """The id of a ``browser_profile=``: as given, or its name looked up within ``deadline``."""
    if ref.profile_id is not None:
        return ref.profile_id
    assert ref.name is not None
    return await client.resolve_browser_profile(
        ref.name, timeout=max(deadline.remaining(), MIN_REQUEST_TIMEOUT)
    )


async def default_page(browser: Browser) -> Page:
    """The first page of the session's default context, or a new page there when it has none.

    >>> page = await default_page(browser)  # doctest: +SKIP
    """
    if not browser.contexts:
        raise CDPConnectError("the browser has no default context; was it attached over CDP?")
    context = browser.contexts[0]
    return context.pages[0] if context.pages else await context.new_page()


class _BrowserContextManager:
    """``await x`` → Browser; ``async with x as browser`` closes it on the way out."""

    _browser: Browser | None = None
    _keep_alive: KeepAlive | None = None

    def _kept(self, browser: Browser, client: AsyncSkyvernClient) -> Browser:
        """Start keeping the session alive while ``browser`` is connected, if asked to."""
        if self._keep_alive is not None:
            seen = session_of(browser)
            AsyncKeeper.for_browser(
                browser, client.settings, seen.browser_session_id, self._keep_alive, first=seen
            )
        return browser

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
        made, owned = client_for(
            AsyncSkyvernClient, client, api_key, base_url, trusted_hosts, allow_insecure_http
        )
        self._client = client
        self._made: AsyncSkyvernClient | None = made if owned else None
        self._client_args = (api_key, base_url, trusted_hosts, allow_insecure_http)

    def _fresh_client(self) -> tuple[AsyncSkyvernClient, bool]:
        """The client of one attach, and whether that attach owns (and so closes) it."""
        if self._made is not None:
            made, self._made = self._made, None
            return made, True
        return client_for(AsyncSkyvernClient, self._client, *self._client_args)

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
        keep_alive: bool | KeepAlive = False,
    ) -> None:
        self.session_id = validate_session_id(session_id)
        self._keep_alive = keep_alive_policy(keep_alive)
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
        lease = Lease(self._playwright)
        try:
            browser = await attach(
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
            await shielded(asyncio.ensure_future(release(client, owns_client, lease)))
            raise
        return self._kept(browser, client)

    async def __aiter__(self) -> AsyncIterator[Browser]:
        """Attach and yield a Browser; once the loop's body is done with it (typically after
        it disconnected), close it and attach again, until the session ends.

        Each attach has the whole ``timeout`` and retries what is transient within it. An
        attach that still fails raises its error: a refused key, a server that never gives
        an address (:class:`SessionNotReadyError`), a bad argument. It is never retried
        silently. Once the session has ended (a final status, or its endpoint's 4410
        "session closed") after a first attach, the loop ends; before one, that is raised.
        """
        attached = False
        while True:
            try:
                browser = await self._open()
            except (SessionEndedError, SessionClosedError) as exc:
                if not attached:
                    raise
                logger.info("session %s is over: %s", self.session_id, type(exc).__name__)
                return
            attached = True
            try:
                yield browser
            finally:
                await browser.close()


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
    keep_alive: bool | KeepAlive = False,
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
    - ``keep_alive``: ``True`` (or a :class:`~skyvern_cdp.lifetime.KeepAlive`) extends the
      session while the Browser is connected, once less than ``margin`` is left (360 minutes
      in all). Off by default: an extended session costs money.
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
        keep_alive=keep_alive,
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
        keep_alive: bool | KeepAlive = False,
        browser_profile: str | None = None,
    ) -> None:
        self._keep_alive = keep_alive_policy(keep_alive)
        self._profile = shared.check_profile(browser_profile, create_fields)
        self._options = shared.check_launch(
            timeout=timeout,
            connect_attempt_timeout=connect_attempt_timeout,
            close_timeout=close_timeout,
            playwright_options=playwright_options,
            session_timeout_minutes=session_timeout_minutes,
            create_fields=create_fields,
        )
        self._keep_client(client, api_key, base_url, trusted_hosts, allow_insecure_http)
        self._minutes = session_timeout_minutes
        self._fields = create_fields
        self._playwright = playwright
        self._on_status = on_status

    async def _open(self) -> Browser:
        deadline = Deadline(self._options.timeout)
        client, owns_client = self._fresh_client()
        lease = Lease(self._playwright)  # the driver starts while the session is created
        session: BrowserSessionResponse | None = None
        try:
            fields = self._fields
            if self._profile is not None:
                found = await resolve_profile(client, self._profile, deadline)
                fields = cast("CreateSessionFields", shared.with_profile(fields, found))
            session = await create(
                client, deadline, self._minutes, fields, self._options.close_timeout
            )
            browser = await attach(
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
            await shielded(
                asyncio.ensure_future(
                    abandon(client, owns_client, lease, session, self._options.close_timeout)
                )
            )
            raise
        return self._kept(browser, client)


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
    keep_alive: bool | KeepAlive = False,
    browser_profile: str | None = None,
    **create_fields: Unpack[CreateSessionFields],
) -> Launch:
    """Create a session, wait until it is ready, attach, and return the ``Browser``.

    >>> async with launch(session_timeout_minutes=15) as browser:  # doctest: +SKIP
    ...     page = await default_page(browser)

    ``timeout`` is the overall deadline in seconds (create + wait + connect);
    ``session_timeout_minutes`` is the session's lifetime, the create body's ``timeout``.
    Closing the Browser (or leaving ``async with``) also closes the session; so does a
    failed wait or connect, and a cancelled caller. ``keep_alive=True`` extends the session
    while the Browser is connected. Other arguments: see :func:`connect`;
    ``create_fields`` are the create body's fields (``url``, ``browser_type``, ...).
    ``browser_profile``: a ``bp_`` id or a profile's name (looked up once through the list,
    within ``timeout``): the session starts from that saved state (logged in).
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
        keep_alive=keep_alive,
        browser_profile=browser_profile,
    )

