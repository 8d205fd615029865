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

===============================  =================================  ==========================
option                           environment                        ini key
===============================  =================================  ==========================
``--skyvern-session ID``         ``SKYVERN_CDP_SESSION``            ``skyvern_session``
``--skyvern-launch``             ``SKYVERN_CDP_LAUNCH``             ``skyvern_launch``
``--skyvern-base-url URL``       ``SKYVERN_BASE_URL``               ``skyvern_base_url``
``--skyvern-api-key KEY``        ``SKYVERN_API_KEY`` (preferred)    none: keys stay out of files
``--skyvern-timeout S``          ``SKYVERN_CDP_TIMEOUT``            ``skyvern_timeout``
``--skyvern-keep-on-failure``    ``SKYVERN_CDP_KEEP_ON_FAILURE``    ``skyvern_keep_on_failure``
``--skyvern-default-context``    ``SKYVERN_CDP_DEFAULT_CONTEXT``    ``skyvern_default_context``
===============================  =================================  ==========================

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
import logging
import os
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import pytest

from skyvern_cdp.errors import InvalidArgumentError, SkyvernCDPError

if TYPE_CHECKING:
    from playwright.async_api import Browser as AsyncBrowser
    from playwright.async_api import BrowserContext as AsyncBrowserContext
    from playwright.async_api import Page as AsyncPage
    from playwright.sync_api import Browser, BrowserContext, Page

    from skyvern_cdp.client import SkyvernClient
    from skyvern_cdp.config import Settings
    from skyvern_cdp.models import BrowserSessionResponse

__all__ = ["PluginUsageError", "SkyvernPlugin"]

logger = logging.getLogger("skyvern_cdp.pytest_plugin")

SESSION_ENV = "SKYVERN_CDP_SESSION"
LAUNCH_ENV = "SKYVERN_CDP_LAUNCH"
TIMEOUT_ENV = "SKYVERN_CDP_TIMEOUT"
KEEP_ON_FAILURE_ENV = "SKYVERN_CDP_KEEP_ON_FAILURE"
DEFAULT_CONTEXT_ENV = "SKYVERN_CDP_DEFAULT_CONTEXT"

#: The name the active plugin is registered under (``config.pluginmanager.get_plugin``).
PLUGIN_NAME = "skyvern_cdp_session"
#: Where xdist workers find the controller's ledger of launched sessions.
_LEDGER_KEY = "skyvern_cdp_ledger"
#: Seconds the fresh GET behind a failure's report section may take.
REPORT_GET_TIMEOUT = 20.0
#: Fixtures whose use ties a test to the Skyvern session (for the report section).
_SESSION_FIXTURES = frozenset(
    {
        "skyvern_session",
        "skyvern_browser",
        "skyvern_context",
        "skyvern_page",
        "skyvern_async_browser",
        "skyvern_async_context",
        "skyvern_async_page",
    }
)
_PLAYWRIGHT_FIXTURES = frozenset({"browser", "context", "page", "new_context"})
_INACTIVE = (
    "skyvern_cdp: no Skyvern session for this run; pass --skyvern-session pbs_… or"
    f" --skyvern-launch (or set {SESSION_ENV} / {LAUNCH_ENV})"
)
_REPORTED = pytest.StashKey[bool]()


class PluginUsageError(pytest.UsageError, InvalidArgumentError):  # type: ignore[misc]
    """A bad ``--skyvern-*`` option: pytest stops before collecting, with this message."""


# -- options --------------------------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("skyvern", "Skyvern browser sessions (skyvern_cdp)")
    group.addoption(
        "--skyvern-session",
        metavar="ID",
        default=None,
        help=f"attach to this existing session (pbs_…); env {SESSION_ENV}",
    )
    group.addoption(
        "--skyvern-launch",
        action="store_true",
        default=None,
        help=f"create one session per worker and close it at the end; env {LAUNCH_ENV}",
    )
    group.addoption(
        "--skyvern-base-url",
        metavar="URL",
        default=None,
        help="API base URL or cloud/staging/local; env SKYVERN_BASE_URL (default: cloud)",
    )
    group.addoption(
        "--skyvern-api-key",
        metavar="KEY",
        default=None,
        help="API key (prefer the SKYVERN_API_KEY environment variable); never echoed",
    )
    group.addoption(
        "--skyvern-timeout",
        metavar="S",
        default=None,
        help=f"seconds to wait for a session and attach to it (default 120); env {TIMEOUT_ENV}",
    )
    group.addoption(
        "--skyvern-keep-on-failure",
        action="store_true",
        default=None,
        help="leave a launched session open when a test failed, and print its id and app_url;"
        f" env {KEEP_ON_FAILURE_ENV}",
    )
    group.addoption(
        "--skyvern-default-context",
        action="store_true",
        default=None,
        help="use the session's default context instead of a new context per test;"
        f" env {DEFAULT_CONTEXT_ENV}",
    )
    parser.addini("skyvern_session", "session id to attach to (pbs_…)", default=None)
    parser.addini("skyvern_launch", "create a session per worker", type="bool", default=None)
    parser.addini("skyvern_base_url", "Skyvern API base URL or preset name", default=None)
    parser.addini("skyvern_timeout", "seconds to wait for and attach to a session", default=None)
    parser.addini(
        "skyvern_keep_on_failure", "keep a launched session open after a failure",
        type="bool", default=None,
    )
    parser.addini(
        "skyvern_default_context", "use the session's default context",
        type="bool", default=None,
    )


_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


def _env_flag(name: str) -> bool | None:
    raw = os.environ.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise PluginUsageError(f"{name} must be 1/0, true/false, yes/no or on/off, got {raw[:20]!r}")


def _flag(config: pytest.Config, option: str, env: str, ini: str) -> bool:
    """Command line, else environment, else ini."""
    value = config.getoption(option)
    if value:
        return True
    from_env = _env_flag(env)
    if from_env is not None:
        return from_env
    return bool(config.getini(ini))


def _text(config: pytest.Config, option: str, env: str | None, ini: str | None) -> str | None:
    value = config.getoption(option)
    if value is None and env is not None:
        value = os.environ.get(env) or None
    if value is None and ini is not None:
        value = config.getini(ini) or None
    return str(value) if value is not None else None


@dataclass(frozen=True)
class Options:
    """The resolved ``--skyvern-*`` options. The API key lives in ``settings`` (never shown)."""

    session_id: str | None
    launch: bool
    settings: Settings
    timeout: float
    keep_on_failure: bool
    default_context: bool

    @property
    def mode(self) -> str:
        return "launch" if self.launch else "attach"


def resolve_options(config: pytest.Config) -> Options | None:
    """The options of this run, or ``None`` when the plugin is not asked for.

    Raises :class:`PluginUsageError` for a bad or contradictory value.
    """
    session_id = _text(config, "skyvern_session", SESSION_ENV, "skyvern_session")
    launch = _flag(config, "skyvern_launch", LAUNCH_ENV, "skyvern_launch")
    if session_id is None and not launch:
        stray = [
            name
            for name, dest in (
                ("--skyvern-base-url", "skyvern_base_url"),
                ("--skyvern-api-key", "skyvern_api_key"),
                ("--skyvern-timeout", "skyvern_timeout"),
                ("--skyvern-keep-on-failure", "skyvern_keep_on_failure"),
                ("--skyvern-default-context", "skyvern_default_context"),
            )
            if config.getoption(dest) is not None
        ]
        if stray:
            raise PluginUsageError(
                f"{', '.join(stray)} has no effect without --skyvern-session or --skyvern-launch"
            )
        return None
    if session_id is not None and launch:
        raise PluginUsageError(
            "--skyvern-session and --skyvern-launch exclude each other: attach to an existing"
            " session, or launch one per worker"
        )
    from skyvern_cdp.config import BASE_URL_ENV, resolve_settings, validate_timeout
    from skyvern_cdp.policy import validate_session_id

    try:
        if session_id is not None:
            session_id = validate_session_id(session_id.strip())
        raw_timeout = _text(config, "skyvern_timeout", TIMEOUT_ENV, "skyvern_timeout")
        timeout = 120.0
        if raw_timeout is not None:
            try:
                number = float(raw_timeout)
            except ValueError:
                raise PluginUsageError(
                    f"--skyvern-timeout must be a number of seconds, got {raw_timeout[:20]!r}"
                ) from None
            timeout = validate_timeout(number, "--skyvern-timeout")
        settings = resolve_settings(
            api_key=_text(config, "skyvern_api_key", None, None),
            base_url=_text(config, "skyvern_base_url", BASE_URL_ENV, "skyvern_base_url"),
        )
    except PluginUsageError:
        raise
    except SkyvernCDPError as exc:
        # The library's messages never carry the key; say which option it was about.
        raise PluginUsageError(f"skyvern_cdp: {exc}") from None
    return Options(
        session_id=session_id,
        launch=launch,
        settings=settings,
        timeout=timeout,
        keep_on_failure=_flag(
            config, "skyvern_keep_on_failure", KEEP_ON_FAILURE_ENV, "skyvern_keep_on_failure"
        ),
        default_context=_flag(
            config, "skyvern_default_context", DEFAULT_CONTEXT_ENV, "skyvern_default_context"
        ),
    )


def pytest_configure(config: pytest.Config) -> None:
    options = resolve_options(config)
    if options is None:
        return
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


def _plugin(config: pytest.Config) -> SkyvernPlugin | None:
    plugin = config.pluginmanager.get_plugin(PLUGIN_NAME)
    return plugin if isinstance(plugin, SkyvernPlugin) else None


def _require(request: pytest.FixtureRequest) -> SkyvernPlugin:
    plugin = _plugin(request.config)
    if plugin is None:
        pytest.skip(_INACTIVE)
    return plugin


# -- the ledger of launched sessions --------------------------------------------------------


class _Ledger:
    """Which sessions were launched, closed or kept, in files every process can append to.

    The controller (or the only process) owns the directory; xdist workers get its path
    through ``workerinput``. At the end the controller closes every session a worker created
    but never closed or kept: a worker killed by Ctrl-C or a crash leaves nothing open.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file = directory / f"{os.getpid()}.log"

    def record(self, event: str, session_id: str, extra: str = "") -> None:
        line = f"{event} {session_id} {extra}".rstrip() + "\n"
        with open(self._file, "a", encoding="utf-8") as out:
            out.write(line)
            out.flush()

    def read(self) -> tuple[list[str], dict[str, str]]:
        """Sessions still open (created, not closed or kept), and the kept ones → app_url."""
        created: list[str] = []
        done: set[str] = set()
        kept: dict[str, str] = {}
        for path in sorted(self.directory.glob("*.log")):
            with contextlib.suppress(OSError):
                for line in path.read_text(encoding="utf-8").splitlines():
                    event, _, rest = line.partition(" ")
                    sid, _, extra = rest.partition(" ")
                    if event == "created":
                        created.append(sid)
                    elif event == "closed":
                        done.add(sid)
                    elif event == "kept":
                        done.add(sid)
                        kept[sid] = extra
        return [sid for sid in created if sid not in done], kept


# -- the active plugin ----------------------------------------------------------------------


class SkyvernPlugin:
    """What runs when ``--skyvern-session`` or ``--skyvern-launch`` is given."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        import tempfile

        self.config = config
        self.options = options
        self._client: SkyvernClient | None = None
        self._session: BrowserSessionResponse | None = None
        self._launched: str | None = None
        self._failures = 0
        self._kept: dict[str, str] = {}
        self._swept: list[str] = []
        workerinput = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        self._own_ledger = False
        ledger_dir = workerinput.get(_LEDGER_KEY) if workerinput is not None else None
        if ledger_dir is None and options.launch:
            ledger_dir = tempfile.mkdtemp(prefix="skyvern-cdp-ledger-")
            self._own_ledger = True
        self.ledger = _Ledger(Path(ledger_dir)) if ledger_dir else None

    def __repr__(self) -> str:
        return f"SkyvernPlugin(mode={self.options.mode!r}, settings={self.options.settings!r})"

    @property
    def uses_pytest_playwright(self) -> bool:
        return bool(self.config.pluginmanager.hasplugin("playwright"))

    # ---- the API ------------------------------------------------------------------------

    @property
    def client(self) -> SkyvernClient:
        if self._client is None:
            from skyvern_cdp.client import SkyvernClient

            settings = self.options.settings
            self._client = SkyvernClient(settings.api_key, settings.base_url)
        return self._client

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``sync_api.connect`` / ``async_api.connect``."""
        settings = self.options.settings
        kwargs: dict[str, Any] = {
            "api_key": settings.api_key,
            "base_url": settings.base_url,
            "timeout": self.options.timeout,
        }
        if self.uses_pytest_playwright:
            slow_mo = self.config.getoption("slowmo", default=0)
            if slow_mo:
                kwargs["slow_mo"] = slow_mo
        return kwargs

    def session(self) -> BrowserSessionResponse:
        """The ready session of this process: launched once, or the one given, waited for."""
        if self._session is not None:
            return self._session
        timeout = self.options.timeout
        if self.options.launch:
            if self._launched is None:
                created = self.client.create_browser_session(timeout=timeout)
                self._launched = created.browser_session_id
                if self.ledger is not None:
                    self.ledger.record("created", self._launched)
                logger.info("launched session %s", self._launched)
            session_id = self._launched
        else:
            assert self.options.session_id is not None
            session_id = self.options.session_id
        self._session = self.client.wait_for_browser_session(session_id, timeout=timeout)
        return self._session

    # ---- hooks --------------------------------------------------------------------------

    def pytest_report_header(self, config: pytest.Config) -> str:
        options = self.options
        what = (
            "launch a session per worker"
            if options.launch
            else f"attach to session {options.session_id}"
        )
        key = "set" if options.settings.api_key else "none"
        context = "default context" if options.default_context else "a new context per test"
        return f"skyvern_cdp: {what} on {options.settings.base_url} (api key: {key}; {context})"

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.ledger is not None:
            node.workerinput[_LEDGER_KEY] = str(self.ledger.directory)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.failed:
            self._failures += 1

    @pytest.hookimpl(wrapper=True)
    def pytest_fixture_setup(
        self, fixturedef: pytest.FixtureDef[Any], request: pytest.FixtureRequest
    ) -> Generator[None, object, object]:
        result = yield
        if _is_asyncio_runner(result):
            _let_runner_step_past_sync_playwright(result)
        return result

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        report = yield
        if report.failed and not item.stash.get(_REPORTED, False) and self._uses_session(item):
            item.stash[_REPORTED] = True
            report.sections.append(("skyvern session", self.describe()))
        return report

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self._close_launched()
        if not self.is_worker:
            self._sweep()

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        if not (self._kept or self._swept):
            return
        terminalreporter.section("skyvern sessions", sep="-")
        for sid, app_url in self._kept.items():
            terminalreporter.write_line(
                f"kept session {sid} open after a failure; app_url: {app_url or '(none)'}"
            )
        for sid in self._swept:
            terminalreporter.write_line(f"closed session {sid}, left open by a worker that stopped")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._own_ledger and self.ledger is not None:
            import shutil

            shutil.rmtree(self.ledger.directory, ignore_errors=True)

    # ---- the end of a run ---------------------------------------------------------------

    def _uses_session(self, item: pytest.Item) -> bool:
        if self.options.launch and self._launched is None:
            return False
        names = set(getattr(item, "fixturenames", ()))
        if names & _SESSION_FIXTURES:
            return True
        return self.uses_pytest_playwright and bool(names & _PLAYWRIGHT_FIXTURES)

    def session_id(self) -> str | None:
        return self._launched if self.options.launch else self.options.session_id

    def describe(self) -> str:
        """The report section: the session as a fresh GET sees it now."""
        from skyvern_cdp.config import redact_text

        sid = self.session_id()
        assert sid is not None
        try:
            session = self.client.get_browser_session(
                sid, timeout=min(REPORT_GET_TIMEOUT, self.options.timeout)
            )
        except Exception as exc:  # a report must never fail because of its extras
            text = f"session: {sid}\n(could not read it: {type(exc).__name__}: {exc})"
            return redact_text(text, self.options.settings.secrets)
        lines = [
            f"session: {session.browser_session_id}",
            f"status: {session.status}",
            f"app_url: {session.app_url or '(none)'}",
        ]
        for title, files in (
            ("recordings", session.recordings),
            ("downloaded_files", session.downloaded_files),
        ):
            if not files:
                lines.append(f"{title}: (none)")
                continue
            lines.append(f"{title}:")
            for info in files:
                size = f", {info.file_size} bytes" if info.file_size is not None else ""
                lines.append(f"  - {info.filename or '(unnamed)'}{size}: {info.url}")
        return redact_text("\n".join(lines), self.options.settings.secrets)

    def _close_launched(self) -> None:
        sid, self._launched = self._launched, None
        if sid is None:
            return
        if self.options.keep_on_failure and self._failures:
            app_url = self._session.app_url if self._session is not None else None
            with contextlib.suppress(Exception):
                app_url = self.client.get_browser_session(
                    sid, timeout=min(REPORT_GET_TIMEOUT, self.options.timeout)
                ).app_url
            self._kept[sid] = app_url or ""
            if self.ledger is not None:
                self.ledger.record("kept", sid, app_url or "")
            logger.info("keeping session %s open after a failure", sid)
            return
        try:
            self.client.close_browser_session(sid, timeout=self.options.timeout)
            logger.info("closed session %s", sid)
            if self.ledger is not None:
                self.ledger.record("closed", sid)
        except Exception as exc:
            # The ledger still says "created": the controller's sweep tries once more.
            logger.warning("could not close session %s: %s", sid, exc)

    def _sweep(self) -> None:
        if self.ledger is None:
            return
        still_open, kept = self.ledger.read()
        for sid, app_url in kept.items():
            self._kept.setdefault(sid, app_url)
        for sid in still_open:
            try:
                self.client.close_browser_session(sid, timeout=self.options.timeout)
                self.ledger.record("closed", sid)
                self._swept.append(sid)
            except Exception as exc:
                logger.warning("could not close session %s: %s", sid, exc)


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


# -- asyncio next to a running sync Playwright ----------------------------------------------


def _is_asyncio_runner(value: object) -> bool:
    kind = type(value)
    return kind.__name__ == "Runner" and all(
        callable(getattr(value, name, None)) for name in ("run", "close", "get_loop")
    )


def _let_runner_step_past_sync_playwright(runner: Any) -> None:
    """Let pytest-asyncio's loop run while a sync Playwright driver lives in this thread.

    Sync Playwright keeps its own event loop registered as this thread's running loop
    between calls (it is parked in a greenlet), and asyncio refuses to run another loop
    then. Around each run of pytest-asyncio's runner, that registration is set aside and put
    back afterwards, so sync and async tests can share one process.
    """
    import asyncio

    if getattr(runner, "_skyvern_cdp_guarded", False):
        return

    def guarded(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(*args: Any, **kwargs: Any) -> Any:
            parked = asyncio._get_running_loop()
            if parked is None:
                return method(*args, **kwargs)
            asyncio._set_running_loop(None)
            try:
                return method(*args, **kwargs)
            finally:
                asyncio._set_running_loop(parked)

        return call

    runner.run = guarded(runner.run)
    runner.close = guarded(runner.close)
    runner._skyvern_cdp_guarded = True


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
    ``--skyvern-default-context`` the session's default context (pages the test opened there
    are closed after it)."""
    plugin = _require(request)
    if plugin.options.default_context:
        if not skyvern_browser.contexts:
            pytest.fail("skyvern_cdp: the session has no default context", pytrace=False)
        context = skyvern_browser.contexts[0]
        before = set(context.pages)
        yield context
        for page in context.pages:
            if page not in before:
                with contextlib.suppress(Exception):
                    page.close()
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
        if not skyvern_async_browser.contexts:
            pytest.fail("skyvern_cdp: the session has no default context", pytrace=False)
        context = skyvern_async_browser.contexts[0]
        before = set(context.pages)
        yield context
        for page in context.pages:
            if page not in before:
                with contextlib.suppress(Exception):
                    await page.close()
        return
    context = await skyvern_async_browser.new_context()
    yield context
    with contextlib.suppress(Exception):
        await context.close()


@_async_fixture()
async def skyvern_async_page(skyvern_async_context: AsyncBrowserContext) -> AsyncPage:
    """A new page in ``skyvern_async_context``."""
    return await skyvern_async_context.new_page()
