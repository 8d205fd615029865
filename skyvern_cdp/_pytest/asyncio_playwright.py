"""pytest-playwright-asyncio (plugin ``playwright-asyncio``): its async ``browser`` is the
Skyvern session, as pytest-playwright's sync ``browser`` is.

>>> # pytest --skyvern-launch, with pytest-playwright-asyncio installed:   # doctest: +SKIP
>>> async def test_title(page):       # page -> context -> browser: the Skyvern session
...     await page.goto("https://example.com")

Its ``browser`` is session-scoped on the session-wide event loop (``loop_scope="session"``),
as pytest-playwright-asyncio's own is, built on its ``playwright`` fixture: its ``context``,
``new_context`` and ``page`` then work unchanged. With ``--skyvern-default-context`` its
``context`` is the session's default context, and only the pages a test opened there are
closed after it. Registered after pytest-playwright-asyncio, so these fixtures win.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import pytest

from skyvern_cdp._pytest.pages import default_context_async

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext

__all__ = ["register"]

#: The name these fixtures are registered under.
NAME = "skyvern_cdp_session_asyncio_playwright"


def register(config: pytest.Config, *, default_context: bool) -> None:
    """Register the overriding fixtures (pytest-asyncio is a dependency of the plugin)."""
    import pytest_asyncio

    class _AsyncPlaywrightBrowser:
        @pytest_asyncio.fixture(scope="session", loop_scope="session")
        @staticmethod
        async def browser(
            request: pytest.FixtureRequest, skyvern_session: Any, playwright: Any
        ) -> AsyncIterator[Browser]:
            """The Skyvern session (skyvern_cdp): pytest-playwright-asyncio's ``browser``."""
            from skyvern_cdp.async_api import connect
            from skyvern_cdp.pytest_plugin import _one_line_errors, _require

            plugin = _require(request)
            with _one_line_errors():
                browser = await connect(
                    skyvern_session.browser_session_id, playwright=playwright,
                    **plugin.connect_kwargs(),
                )
            try:
                yield browser
            finally:
                await browser.close()

    class _AsyncPlaywrightDefaultContext:
        @pytest_asyncio.fixture(loop_scope="session")
        @staticmethod
        async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
            """The session's default context (``--skyvern-default-context``)."""
            async with default_context_async(browser) as context:
                yield context

    config.pluginmanager.register(_AsyncPlaywrightBrowser(), NAME)
    if default_context:
        config.pluginmanager.register(_AsyncPlaywrightDefaultContext(), NAME + "_context")
