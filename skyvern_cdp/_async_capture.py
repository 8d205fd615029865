"""Capture a browser profile over asyncio: launch a session that saves its state, hand over a
Browser to log in with, then close it, wait for the save, and make the profile.

>>> from skyvern_cdp.async_api import capture_profile, default_page
>>> capture = capture_profile("crm", timeout=600)  # doctest: +SKIP
>>> async with capture as browser:  # doctest: +SKIP
...     page = await default_page(browser)
...     await page.goto("https://crm.example.com/login")  # log in (or by hand: app_url)
>>> capture.profile.browser_profile_id  # doctest: +SKIP
'bp_…'

Or with a function that logs in: ``profile = await capture_profile("crm", login=log_in)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Generator, Iterable
from types import TracebackType
from typing import Any

from playwright.async_api import Browser

from skyvern_cdp._async_attach import session_of
from skyvern_cdp._async_driver import shielded
from skyvern_cdp._capture import CLOSE_TIMEOUT, DEFAULT_CAPTURE_TIMEOUT, CaptureState
from skyvern_cdp.client import AsyncSkyvernClient
from skyvern_cdp.errors import (
    InvalidArgumentTypeError,
    ProfileExistsError,
    ProfileNotFoundError,
    ProfileUploadPendingError,
)
from skyvern_cdp.models import BrowserProfile
from skyvern_cdp.policy import Deadline
from skyvern_cdp.policy.profiles import capture_conflict, capture_failed, capture_not_saved

__all__ = ["AsyncCapture", "capture_profile"]

logger = logging.getLogger("skyvern_cdp.capture")

class AsyncCapture(CaptureState[AsyncSkyvernClient, Browser]):
    """What :func:`skyvern_cdp.async_api.capture_profile` returns."""

    def __init__(
        self,
        name: str,
        *,
        description: str | None,
        replace: bool,
        timeout: float,
        login: Callable[[Browser], Awaitable[object]] | None,
        api_key: str | None,
        base_url: str | None,
        trusted_hosts: Iterable[str] | None,
        allow_insecure_http: bool,
        client: AsyncSkyvernClient | None,
        launch_kwargs: dict[str, Any],
    ) -> None:
        import inspect

        from skyvern_cdp.async_api import launch

        super().__init__(
            name, description=description, replace=replace, timeout=timeout, login=login,
            login_kind="an async function", launch_params=inspect.signature(launch).parameters,
            client_class=AsyncSkyvernClient, client=client, api_key=api_key, base_url=base_url,
            trusted_hosts=trusted_hosts, allow_insecure_http=allow_insecure_http,
            launch_kwargs=launch_kwargs,
        )
        self._login = login

    async def __aenter__(self) -> Browser:
        from skyvern_cdp.async_api import launch

        self._deadline = Deadline(self.timeout)
        try:
            found = await self._client.find_browser_profile(self.name, timeout=self._left())
            conflict = capture_conflict(self.name, found, self.replace)
            if conflict is not None:
                raise conflict
            self._old = found.browser_profile_id if found is not None else None
            self._browser = await launch(
                client=self._client,
                timeout=self._left(),
                generate_browser_profile=True,
                **self._launch_kwargs,
            )
        except BaseException:
            await shielded(asyncio.ensure_future(self._release()))
            raise
        session = session_of(self._browser)
        self.session_id, self.app_url = session.browser_session_id, session.app_url
        logger.info(
            "capturing profile %r from session %s (log in by hand at %s)",
            self.name,
            self.session_id,
            self.app_url or "its live view",
        )
        return self._browser

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            await shielded(asyncio.ensure_future(self._end_session()))
            if exc is None:
                self.profile = await self._save()
        finally:
            await shielded(asyncio.ensure_future(self._release()))

    async def _end_session(self) -> None:
        """Disconnect and close the session (its state is saved when it ends)."""
        browser, self._browser = self._browser, None
        if browser is None or self.session_id is None:
            return
        try:
            await browser.close()
        finally:
            # Idempotent: also when the Browser's own close was cut short.
            try:
                await self._client.close_browser_session(self.session_id, timeout=CLOSE_TIMEOUT)
            except Exception as error:
                logger.warning("could not close session %s: %s", self.session_id, error)

    async def _save(self) -> BrowserProfile:
        assert self.session_id is not None
        ended = await self._client.get_browser_session(self.session_id, timeout=self._left())
        failed = capture_failed(self.name, ended)
        if failed is not None:
            raise failed
        try:
            try:
                made = await self._create()
            except ProfileExistsError:
                if self._old is None:
                    raise
                # The server checks the saved state before the name: this 409 says the new
                # login is saved, so only now is the old profile deleted to free the name.
                with contextlib.suppress(ProfileNotFoundError):
                    await self._client.delete_browser_profile(self._old, timeout=self._left())
                made = await self._create()
        except ProfileUploadPendingError as error:
            raise capture_not_saved(self.name, self.session_id, error) from error
        logger.info("profile %s (%r) captured", made.browser_profile_id, self.name)
        return made

    async def _create(self) -> BrowserProfile:
        assert self.session_id is not None
        return await self._client.create_browser_profile(
            self.name,
            description=self.description,
            browser_session_id=self.session_id,
            timeout=self._left(),
        )

    async def _release(self) -> None:
        if self._owns:
            await self._client.aclose()

    def __await__(self) -> Generator[Any, None, BrowserProfile]:
        return self._run().__await__()

    async def _run(self) -> BrowserProfile:
        if self._login is None:
            raise InvalidArgumentTypeError(
                "await capture_profile(...) needs login=an async function that logs in on the"
                " Browser; or use `async with capture_profile(...) as browser:`"
            )
        async with self as browser:
            await self._login(browser)
        assert self.profile is not None
        return self.profile


def capture_profile(
    name: str,
    *,
    description: str | None = None,
    replace: bool = False,
    timeout: float = DEFAULT_CAPTURE_TIMEOUT,
    login: Callable[[Browser], Awaitable[object]] | None = None,
    api_key: str | None = None,
    base_url: str | None = None,
    trusted_hosts: Iterable[str] | None = None,
    allow_insecure_http: bool = False,
    client: AsyncSkyvernClient | None = None,
    **launch_kwargs: Any,
) -> AsyncCapture:
    """Log in once and keep it: capture a browser profile named ``name``.

    >>> capture = capture_profile("crm")  # doctest: +SKIP
    >>> async with capture as browser:  # doctest: +SKIP
    ...     page = await default_page(browser)
    ...     await page.goto("https://crm.example.com/login")  # log in (or by hand: app_url)
    >>> capture.profile.browser_profile_id  # doctest: +SKIP
    'bp_…'
    >>> profile = await capture_profile("crm", login=log_in, replace=True)  # doctest: +SKIP

    Launches a session with ``generate_browser_profile=True`` and hands over its Browser. On a
    clean exit the session is closed, its saved state awaited (the server saves it seconds
    after the close) and the profile created: ``capture.profile``. ``timeout`` is one deadline
    in seconds over all of it, the login included. On an error or any interrupt the session is
    closed and no profile is made. A ``name`` that exists already is refused before anything
    is launched, unless ``replace=True``: then the old profile is deleted once the new login
    is saved. Other arguments go to :func:`launch` (``url``, ``session_timeout_minutes``...).
    Use the profile with ``launch(browser_profile="crm")``.
    """
    return AsyncCapture(
        name,
        description=description,
        replace=replace,
        timeout=timeout,
        login=login,
        api_key=api_key,
        base_url=base_url,
        trusted_hosts=trusted_hosts,
        allow_insecure_http=allow_insecure_http,
        client=client,
        launch_kwargs=launch_kwargs,
    )
