"""pytest plugin: Skyvern browser sessions as fixtures, and pytest-playwright suites run remote.

::

    pytest --skyvern-launch                       # one new session per worker, closed at the end
    pytest --skyvern-session pbs_123              # attach every worker to this session
    pytest --skyvern-launch -n 4                  # with pytest-xdist: a session per worker

.. code-block:: python

    def test_title(skyvern_page):                 # a new context and page per test
        skyvern_page.goto("https://example.com")
        assert "Example" in skyvern_page.title()

    async def test_async(skyvern_async_page):     # the same over asyncio (pytest-asyncio)
        await skyvern_async_page.goto("https://example.com")

With pytest-playwright installed, ``--skyvern-launch`` / ``--skyvern-session`` also make its
``browser`` fixture the Skyvern session, so a suite written against ``page``, ``context`` or
``browser`` runs remote unchanged. Without one of these two options the plugin does nothing:
no network, no Playwright, and pytest-playwright is left alone.

Options (command line, else environment, else ini key):

=================================  =================================  =============================
option                             environment                        ini key
=================================  =================================  =============================
``--skyvern-session ID``           ``SKYVERN_CDP_SESSION``            ``skyvern_session``
``--skyvern-launch``               ``SKYVERN_CDP_LAUNCH``             ``skyvern_launch``
``--skyvern-base-url URL``         ``SKYVERN_BASE_URL``               ``skyvern_base_url``
``--skyvern-api-key KEY``          ``SKYVERN_API_KEY`` (preferred)    none: keys stay out of files
``--skyvern-timeout S``            ``SKYVERN_CDP_TIMEOUT``            ``skyvern_timeout``
``--skyvern-keep-on-failure``      ``SKYVERN_CDP_KEEP_ON_FAILURE``    ``skyvern_keep_on_failure``
``--skyvern-default-context``      ``SKYVERN_CDP_DEFAULT_CONTEXT``    ``skyvern_default_context``
``--skyvern-keep-alive-margin S``  ``SKYVERN_CDP_KEEP_ALIVE_MARGIN``  ``skyvern_keep_alive_margin``
``--skyvern-profile NAME|bp_…``    ``SKYVERN_CDP_PROFILE``            ``skyvern_profile``
``--skyvern-login-max-age S``      ``SKYVERN_CDP_LOGIN_MAX_AGE``      ``skyvern_login_max_age``
=================================  =================================  =============================

Log in once per run: define ``pytest_skyvern_login(browser)`` in ``conftest.py``; with
``--skyvern-launch`` (or ``--skyvern-profile NAME``, which implies it) the plugin captures a
browser profile with it before any test (in the xdist controller), and every launched session
starts from that profile, in its default context (see :mod:`skyvern_cdp._pytest.login`).

A launched session is kept alive for the whole run (extended from a background thread once
less than the margin, 300 s by default, is left; 0 turns it off), so a suite that runs longer
than the session's timeout keeps its browser.

Fixtures: ``skyvern_session`` (the ready ``BrowserSessionResponse``), ``skyvern_browser``
(session scope), ``skyvern_context`` and ``skyvern_page`` (per test); and over asyncio
``skyvern_async_browser``, ``skyvern_async_context``, ``skyvern_async_page`` (in the tests'
event loop: the browser is attached per test, or once per run when pytest-asyncio's loops are
session-scoped). A failed test's report gets a "skyvern session" section (id, status,
``app_url``, recordings, downloaded files) from a fresh GET.

This module imports nothing heavy: Playwright and the HTTP client load only once a session
is asked for. (PYTEST_DONT_REWRITE: it has no test asserts, so pytest need not rewrite it.)
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

from skyvern_cdp.errors import SkyvernCDPError

if TYPE_CHECKING:
    from playwright.async_api import Browser as AsyncBrowser
    from playwright.async_api import BrowserContext as AsyncBrowserContext
    from playwright.async_api import Page as AsyncPage
    from playwright.sync_api import Browser, BrowserContext, Page

    from skyvern_cdp.models import BrowserSessionResponse

from skyvern_cdp._pytest.active import SkyvernPlugin
from skyvern_cdp._pytest.login import has_login_hook
from skyvern_cdp._pytest.options import (
    _INACTIVE,
    PLUGIN_NAME,
    PluginUsageError,
    pytest_addoption,
    resolve_options,
)
from skyvern_cdp._pytest.pages import ASYNCIO_PLAYWRIGHT, default_context, default_context_async

__all__ = ["PluginUsageError", "SkyvernPlugin", "pytest_addoption", "pytest_configure"]


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    from skyvern_cdp._pytest import login

    pluginmanager.add_hookspecs(login)


def pytest_configure(config: pytest.Config) -> None:
    options = resolve_options(config)
    if options is None:
        return
    if options.launch and (options.profile is not None or has_login_hook(config)):
        # A profile's logins live in the session's default context (a new one has none).
        options = dataclasses.replace(options, default_context=True)
    browsers = config.getoption("browser", default=None) or []
    others = sorted(set(browsers) - {"chromium"})
    if others:
        raise PluginUsageError(
            f"a Skyvern session is a Chromium: --browser {' '.join(others)} cannot run on it"
        )
    plugin = SkyvernPlugin(config, options)
    config.pluginmanager.register(plugin, PLUGIN_NAME)
    if config.pluginmanager.hasplugin("playwright"):
        # Registered after pytest-playwright, so these fixtures override its own.
        config.pluginmanager.register(_PlaywrightBrowser(), PLUGIN_NAME + "_browser")
        if options.default_context:
            config.pluginmanager.register(_PlaywrightDefaultContext(), PLUGIN_NAME + "_context")
    if config.pluginmanager.hasplugin(ASYNCIO_PLAYWRIGHT):
        # pytest-playwright-asyncio: its async ``browser`` (and ``context``) the same way.
        from skyvern_cdp._pytest.asyncio_playwright import register

        register(config, default_context=options.default_context)


def _plugin(config: pytest.Config) -> SkyvernPlugin | None:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin if isinstance(plugin, SkyvernPlugin) else None


def _require(request: pytest.FixtureRequest) -> SkyvernPlugin:
    plugin = _plugin(request.config)
    if plugin is None:
        pytest.skip(_INACTIVE)
    return plugin


class _PlaywrightBrowser:
    """pytest-playwright's ``browser`` becomes the Skyvern session."""

    @pytest.fixture(scope="session")
    @staticmethod
    def browser(skyvern_browser: Browser) -> Browser:
        """The Skyvern session (skyvern_cdp): pytest-playwright's ``browser``, attached over CDP."""
        return skyvern_browser


class _PlaywrightDefaultContext:
    """With ``--skyvern-default-context``, pytest-playwright's ``context`` is the default one."""

    @pytest.fixture
    @staticmethod
    def context(skyvern_context: BrowserContext) -> BrowserContext:
        """The session's default context (skyvern_cdp, ``--skyvern-default-context``); pages
        the test opens there are closed after it. pytest-playwright's tracing and video, which
        need a context of their own, are off in this mode."""
        return skyvern_context


# -- fixtures -------------------------------------------------------------------------------


@contextlib.contextmanager
def _one_line_errors() -> Iterator[None]:
    """Report the library's own errors (SkyvernCDPError) as one line, without a traceback.

    Their messages say what happened and what to do; a traceback adds only noise, and under
    ``--showlocals`` the frames' locals would show the API key. Other errors propagate.
    """
    try:
        yield
    except SkyvernCDPError as exc:
        hint = " (here: --skyvern-timeout)" if isinstance(exc, TimeoutError) else ""
        failure = f"{type(exc).__name__}: {exc}{hint}"
        raise pytest.fail.Exception(failure, pytrace=False) from None

_F = TypeVar("_F", bound=Callable[..., Any])


def _async_fixture(scope: Any = "function") -> Callable[[_F], _F]:
    """pytest-asyncio's decorator (strict mode needs it), or pytest's when it is missing."""
    try:
        import pytest_asyncio
    except ImportError:  # pragma: no cover - pytest-asyncio is optional
        return cast("Callable[[_F], _F]", pytest.fixture(scope=scope))
    return cast("Callable[[_F], _F]", pytest_asyncio.fixture(scope=scope))




@pytest.fixture(scope="session")
def skyvern_session(request: pytest.FixtureRequest) -> BrowserSessionResponse:
    """The Skyvern session of this run (or worker), ready: a ``BrowserSessionResponse``.

    With ``--skyvern-launch`` it is created on first use and closed at the end of the run;
    with ``--skyvern-session ID`` it is that session. Skips when neither option is given.
    """
    plugin = _require(request)
    with _one_line_errors():
        return plugin.session()
    raise AssertionError("unreachable")  # pragma: no cover - _one_line_errors re-raises


@pytest.fixture(scope="session")
def skyvern_browser(
    request: pytest.FixtureRequest, skyvern_session: BrowserSessionResponse
) -> Iterator[Browser]:
    """A sync Playwright ``Browser`` attached over CDP to the session, for the whole run.

    Built on pytest-playwright's ``playwright`` fixture when it is installed (one sync driver
    per process). Closing it at the end disconnects; the plugin closes a launched session.
    """
    from skyvern_cdp.sync_api import connect

    plugin = _require(request)
    playwright = request.getfixturevalue("playwright") if plugin.uses_pytest_playwright else None
    with _one_line_errors():
        browser = connect(
            skyvern_session.browser_session_id, playwright=playwright, **plugin.connect_kwargs()
        )
    yield browser
    browser.close()


@pytest.fixture
def skyvern_context(
    request: pytest.FixtureRequest, skyvern_browser: Browser
) -> Iterator[BrowserContext]:
    """A new ``BrowserContext`` per test (closed after it), or with
    ``--skyvern-default-context`` the session's default context (the pages this test opened
    there, and their popups, are closed after it; pages of other connections are left alone)."""
    plugin = _require(request)
    if plugin.options.default_context:
        with default_context(skyvern_browser) as context:
            yield context
        return
    context = skyvern_browser.new_context()
    yield context
    with contextlib.suppress(Exception):
        context.close()


@pytest.fixture
def skyvern_page(skyvern_context: BrowserContext) -> Page:
    """A new page in ``skyvern_context``; it goes away with the test."""
    return skyvern_context.new_page()


def _async_browser_scope(fixture_name: str, config: pytest.Config) -> str:
    """``session`` when every async test and fixture shares one session-wide event loop
    (pytest-asyncio's ini), so one attachment serves them all; else one per test."""
    try:
        tests = config.getini("asyncio_default_test_loop_scope")
        fixtures = config.getini("asyncio_default_fixture_loop_scope")
    except ValueError:  # pytest-asyncio is not installed
        return "function"
    if tests == "session" and fixtures in (None, "", "session", "fixture-scope"):
        return "session"
    return "function"


@_async_fixture(scope=_async_browser_scope)
async def skyvern_async_browser(
    request: pytest.FixtureRequest, skyvern_session: BrowserSessionResponse
) -> AsyncIterator[AsyncBrowser]:
    """An asyncio Playwright ``Browser`` attached to the session, in the tests' event loop.

    One per test by default (pytest-asyncio gives each test its own loop, and a Browser
    belongs to one loop). With ``asyncio_default_test_loop_scope = session`` and
    ``asyncio_default_fixture_loop_scope = session`` in the ini, one for the whole run.
    """
    from skyvern_cdp.async_api import connect

    plugin = _require(request)
    with _one_line_errors():
        browser = await connect(skyvern_session.browser_session_id, **plugin.connect_kwargs())
    try:
        yield browser
    finally:
        await browser.close()


@_async_fixture()
async def skyvern_async_context(
    request: pytest.FixtureRequest, skyvern_async_browser: AsyncBrowser
) -> AsyncIterator[AsyncBrowserContext]:
    """The asyncio ``skyvern_context``: a new context per test, or the default one."""
    plugin = _require(request)
    if plugin.options.default_context:
        async with default_context_async(skyvern_async_browser) as context:
            yield context
        return
    context = await skyvern_async_browser.new_context()
    yield context
    with contextlib.suppress(Exception):
        await context.close()


@_async_fixture()
async def skyvern_async_page(skyvern_async_context: AsyncBrowserContext) -> AsyncPage:
    """A new page in ``skyvern_async_context``."""
    return await skyvern_async_context.new_page()
