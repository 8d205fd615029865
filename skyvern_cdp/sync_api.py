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

import logging
from collections.abc import Iterable
from typing import Any, cast

from playwright.sync_api import Browser, Page, Playwright
from typing_extensions import Unpack

from skyvern_cdp import _attachment as shared
from skyvern_cdp._sync_attach import attach, close_session, create, release, session_of
from skyvern_cdp._sync_capture import capture_profile
from skyvern_cdp._sync_driver import Lease, check_no_foreign_loop, driver_stats
from skyvern_cdp.client import CreateSessionFields, OnStatus, SkyvernClient, client_for
from skyvern_cdp.config import conceal
from skyvern_cdp.errors import (
    CDPConnectError,
)
from skyvern_cdp.keeper_thread import ThreadKeeper
from skyvern_cdp.lifetime import KeepAlive, keep_alive_policy
from skyvern_cdp.models import BrowserSessionResponse
from skyvern_cdp.policy import (
    CONNECT_ATTEMPT_TIMEOUT,
    Deadline,
    request_budget,
    validate_session_id,
)
from skyvern_cdp.policy.profiles import ProfileRef

__all__ = [
    "DEFAULT_TIMEOUT",
    "DriverStats",
    "capture_profile",
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


def default_page(browser: Browser) -> Page:
    """The first page of the session's default context, or a new page there when it has none."""
    if not browser.contexts:
        raise CDPConnectError("the browser has no default context; was it attached over CDP?")
    context = browser.contexts[0]
    return context.pages[0] if context.pages else context.new_page()


def resolve_profile(http: SkyvernClient, ref: ProfileRef, deadline: Deadline) -> str:
    """The id of a ``browser_profile=``: as given, or its name looked up within ``deadline``."""
    if ref.profile_id is not None:
        return ref.profile_id
    assert ref.name is not None
    return http.resolve_browser_profile(
        ref.name, timeout=request_budget(deadline.remaining())
    )


def _kept(browser: Browser, http: SkyvernClient, keep_alive: KeepAlive | None) -> Browser:
    """Start a background thread that keeps the session alive while ``browser`` is open."""
    if keep_alive is not None:
        seen = session_of(browser)
        ThreadKeeper.for_browser(
            browser, http.settings, seen.browser_session_id, keep_alive, first=seen
        )
    return browser


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
    keep_alive: bool | KeepAlive = False,
    **playwright_options: Any,
) -> Browser:
    """Attach to session ``session_id`` once it is ready, and return a Playwright ``Browser``.

    >>> with connect("pbs_123") as browser:  # doctest: +SKIP
    ...     page = default_page(browser)

    The arguments are those of :func:`skyvern_cdp.async_api.connect`. Closing the Browser
    (or leaving ``with``) disconnects and releases the driver; it never ends the session.
    ``keep_alive=True`` extends the session from a background thread (with its own
    client; it never touches Playwright) while the Browser is open.
    """
    api_key = conceal(api_key)  # a traceback's locals show '<redacted>'
    sid = validate_session_id(session_id)
    policy = keep_alive_policy(keep_alive)
    options = shared.AttachOptions.check(
        timeout=timeout,
        connect_attempt_timeout=connect_attempt_timeout,
        close_timeout=close_timeout,
        playwright_options=playwright_options,
    )
    http, owns_client = client_for(
        SkyvernClient, client, api_key, base_url, trusted_hosts, allow_insecure_http
    )
    lease = Lease(playwright)
    try:
        check_no_foreign_loop(playwright)
        browser = attach(
            sid, http, owns_client, False, lease, options, Deadline(options.timeout), on_status
        )
    except BaseException:
        release(http, owns_client, lease)
        raise
    return _kept(browser, http, policy)


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
    keep_alive: bool | KeepAlive = False,
    browser_profile: str | None = None,
    **create_fields: Unpack[CreateSessionFields],
) -> Browser:
    """Create a session, wait until it is ready, attach, and return the ``Browser``.

    >>> with launch(session_timeout_minutes=15) as browser:  # doctest: +SKIP
    ...     default_page(browser).goto("https://example.com")

    See :func:`skyvern_cdp.async_api.launch`. Closing the Browser also closes the session;
    so does a failed wait or connect, and an interrupt (``KeyboardInterrupt``, or the
    ``SystemExit`` of a SIGTERM handler), also one that lands while the create request is in
    flight: the request finishes in a worker thread and what it made is closed before the
    interrupt is re-raised. ``keep_alive``: see :func:`connect`.
    ``browser_profile``: a ``bp_`` id or a profile's name (looked up once through the list,
    within ``timeout``): the session starts from that saved state.
    """
    api_key = conceal(api_key)  # a traceback's locals show '<redacted>'
    policy = keep_alive_policy(keep_alive)
    options = shared.check_launch(
        timeout=timeout,
        connect_attempt_timeout=connect_attempt_timeout,
        close_timeout=close_timeout,
        playwright_options=playwright_options,
        session_timeout_minutes=session_timeout_minutes,
        create_fields=create_fields,
    )
    profile = shared.check_profile(browser_profile, create_fields)
    http, owns_client = client_for(
        SkyvernClient, client, api_key, base_url, trusted_hosts, allow_insecure_http
    )
    lease = Lease(playwright)
    deadline = Deadline(options.timeout)
    session: BrowserSessionResponse | None = None
    try:
        check_no_foreign_loop(playwright)
        if profile is not None:
            found = resolve_profile(http, profile, deadline)
            create_fields = cast("CreateSessionFields", shared.with_profile(create_fields, found))
        session = create(
            http, deadline, session_timeout_minutes, create_fields, options.close_timeout
        )
        browser = attach(
            session.browser_session_id, http, owns_client, True, lease, options, deadline, on_status
        )
    except BaseException:
        try:
            if session is not None:
                close_session(
                    http,
                    session.browser_session_id,
                    options.close_timeout,
                    " after a failed launch",
                )
        finally:
            release(http, owns_client, lease)
        raise
    return _kept(browser, http, policy)
