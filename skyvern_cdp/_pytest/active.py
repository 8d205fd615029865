"""The active plugin: what runs when ``--skyvern-session`` or ``--skyvern-launch`` is given.
It owns this process's session (launched once, or the one given), the failure report
section, the end-of-run close and the controller's sweep of the ledger.

>>> plugin = SkyvernPlugin(config, options)  # doctest: +SKIP
>>> plugin.session().status                  # doctest: +SKIP
'running'
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pytest

if TYPE_CHECKING:
    from skyvern_cdp.client import CreateSessionFields, SkyvernClient
    from skyvern_cdp.keeper_thread import ThreadKeeper
    from skyvern_cdp.models import BrowserSessionResponse

from skyvern_cdp._pytest.ledger import Ledger
from skyvern_cdp._pytest.login import PROFILE_KEY, prepare_profile
from skyvern_cdp._pytest.options import (
    _LEDGER_KEY,
    _PLAYWRIGHT_FIXTURES,
    _REPORTED,
    _SESSION_FIXTURES,
    Options,
)
from skyvern_cdp._pytest.report import (
    LIVE_STATUSES,
    NOT_FETCHED,
    app_url_shown,
    file_lines,
    is_unanswered,
    report_get_timeout,
)
from skyvern_cdp._pytest.signals import SigtermAsInterrupt

__all__ = ["SkyvernPlugin"]

logger = logging.getLogger("skyvern_cdp.pytest_plugin")

#: When a test's setup started (wall clock): where it begins in the session's video.
_STARTED = pytest.StashKey[float]()
#: How long closing a session whose create was interrupted may take.
CREATE_CLOSE_TIMEOUT = 10.0


class SkyvernPlugin:
    """What runs when ``--skyvern-session`` or ``--skyvern-launch`` is given."""

    def __init__(self, config: pytest.Config, options: Options) -> None:
        import tempfile

        self.config = config
        self.options = options
        self._client: SkyvernClient | None = None
        self._session: BrowserSessionResponse | None = None
        self._launched: str | None = None
        self._keeper: ThreadKeeper | None = None
        self._failures = 0
        self._kept: dict[str, str] = {}
        self._swept: list[str] = []
        #: A GET of the session (the wait, or a report's) went unanswered in this run: later
        #: reports do not ask again.
        self._report_unanswered = False
        workerinput = getattr(config, "workerinput", None)
        self.is_worker = workerinput is not None
        self._own_ledger = False
        ledger_dir = workerinput.get(_LEDGER_KEY) if workerinput is not None else None
        if ledger_dir is None and options.launch:
            ledger_dir = tempfile.mkdtemp(prefix="skyvern-cdp-ledger-")
            self._own_ledger = True
        self.ledger = Ledger(Path(ledger_dir)) if ledger_dir else None
        #: The browser profile launched sessions start from (a worker gets it from the
        #: controller), and what the log-in-once step did.
        self.profile_id: str | None = workerinput.get(PROFILE_KEY) if workerinput else None
        self.login_note: str | None = None
        # launched sessions (this process's, or its workers' in the ledger) outlive a plain
        # SIGTERM; taken as Ctrl-C, it ends the run through teardown and the sweep
        self._sigterm = SigtermAsInterrupt()
        if options.launch:
            self._sigterm.install()
        # Loaded as the run starts, so that the --skyvern-timeout of the first fixture is
        # spent on the API, not on importing httpx and pydantic.
        import skyvern_cdp._sessions  # noqa: F401

    def __repr__(self) -> str:
        return f"SkyvernPlugin(mode={self.options.mode!r}, settings={self.options.settings!r})"

    @property
    def uses_pytest_playwright(self) -> bool:
        return bool(self.config.pluginmanager.hasplugin("playwright"))

    @property
    def uses_playwright_fixtures(self) -> bool:
        """pytest-playwright or pytest-playwright-asyncio is installed (their ``browser``,
        ``context`` and ``page`` are the session's)."""
        return self.uses_pytest_playwright or bool(
            self.config.pluginmanager.hasplugin("playwright-asyncio")
        )

    # ---- the API ------------------------------------------------------------------------

    @property
    def client(self) -> SkyvernClient:
        if self._client is None:
            from skyvern_cdp.client import SkyvernClient

            settings = self.options.settings
            self._client = SkyvernClient(
                settings.api_key, settings.base_url, trusted_hosts=settings.trusted_hosts,
                allow_insecure_http=settings.allow_insecure_http,
            )
        return self._client

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``sync_api.connect`` / ``async_api.connect``."""
        settings = self.options.settings
        kwargs: dict[str, Any] = {
            "api_key": settings.api_key,
            "base_url": settings.base_url,
            "timeout": self.options.timeout,
            "trusted_hosts": settings.trusted_hosts,
            "allow_insecure_http": settings.allow_insecure_http,
        }
        if self.uses_playwright_fixtures:
            slow_mo = self.config.getoption("slowmo", default=0)
            if slow_mo:
                kwargs["slow_mo"] = slow_mo
        return kwargs

    def session(self) -> BrowserSessionResponse:
        """The ready session of this process: launched once, or the one given, waited for."""
        if self._session is not None:
            return self._session
        from skyvern_cdp.policy import Deadline

        deadline = Deadline(self.options.timeout)  # one deadline: the create and the wait
        if self.options.launch:
            if self._launched is None:
                from skyvern_cdp._sessions import create_sync

                # SIGTERM (an interrupt here) while the create is in flight: what it makes
                # is closed, since no ledger knows of it yet.
                fields = cast("CreateSessionFields", self._create_fields())
                created = create_sync(self.client, deadline, None, fields, CREATE_CLOSE_TIMEOUT)
                self._launched = created.browser_session_id
                if self.ledger is not None:
                    self.ledger.record("created", self._launched)
                logger.info("launched session %s", self._launched)
                self._keep_alive(self._launched)
            session_id = self._launched
        else:
            assert self.options.session_id is not None
            session_id = self.options.session_id
        try:
            self._session = self.client.wait_for_browser_session(
                session_id, timeout=max(deadline.remaining(), 0.001)
            )
        except Exception as exc:
            self._report_unanswered = self._report_unanswered or is_unanswered(exc)
            raise
        return self._session

    def _create_fields(self) -> dict[str, Any]:
        return {"browser_profile_id": self.profile_id} if self.profile_id else {}

    def _keep_alive(self, session_id: str) -> None:
        """Extend the launched session from a background thread while the run lasts."""
        policy = self.options.keep_alive
        if policy is not None:
            from skyvern_cdp.keeper_thread import ThreadKeeper

            self._keeper = ThreadKeeper(self.options.settings, session_id, policy).start()

    def _stop_keeping(self) -> None:
        keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.stop("the run ended")

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
        line = f"skyvern_cdp: {what} on {options.settings.base_url} (api key: {key}; {context})"
        if self.login_note or self.profile_id:
            line += f"\nskyvern_cdp: {self.login_note or 'from profile ' + str(self.profile_id)}"
        return line

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        """Log in once (or look the profile up) before any test, and before xdist's workers
        start: they get the profile's id."""
        collecting_only = bool(getattr(self.config.option, "collectonly", False))
        if self.options.launch and not self.is_worker and not collecting_only:
            self.profile_id = prepare_profile(self)

    @pytest.hookimpl(optionalhook=True)
    def pytest_configure_node(self, node: Any) -> None:
        if self.ledger is not None:
            node.workerinput[_LEDGER_KEY] = str(self.ledger.directory)
        if self.profile_id is not None:
            node.workerinput[PROFILE_KEY] = self.profile_id

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
        if call.when == "setup":
            item.stash[_STARTED] = call.start
        if report.failed and not item.stash.get(_REPORTED, False) and self._uses_session(item):
            item.stash[_REPORTED] = True
            span = (item.stash.get(_STARTED, call.start), call.stop)
            report.sections.append(("skyvern session", self.describe(span)))
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
                f"kept session {sid} open after a failure; app_url: {app_url_shown(sid, app_url)}"
            )
        for sid in self._swept:
            terminalreporter.write_line(f"closed session {sid}, left open by a worker that stopped")

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        self._stop_keeping()
        self._sigterm.restore()
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
        return self.uses_playwright_fixtures and bool(names & _PLAYWRIGHT_FIXTURES)

    def session_id(self) -> str | None:
        return self._launched if self.options.launch else self.options.session_id

    def describe(self, test_span: tuple[float, float] | None = None) -> str:
        """The report section: the session as a fresh GET sees it now.

        ``test_span``: the test's (start, end), wall-clock seconds, to find it in the video.
        """
        from skyvern_cdp.config import redact_text

        sid = self.session_id()
        assert sid is not None
        try:
            session = self._fresh_get(sid)
        except Exception as exc:  # a report must never fail because of its extras
            text = f"session: {sid}\n(could not read it: {type(exc).__name__}: {exc})"
            return redact_text(text, self.options.settings.secrets)
        if session is None:
            return f"session: {sid}\n{NOT_FETCHED}"
        lines = [
            f"session: {session.browser_session_id}",
            f"status: {session.status}",
            f"app_url: {app_url_shown(sid, session.app_url)}",
        ]
        for title, files in (
            ("recordings", session.recordings),
            ("downloaded_files", session.downloaded_files),
        ):
            lines += file_lines(title, files, session_id=sid, started_at=session.started_at,
                                test_span=test_span, live=session.status in LIVE_STATUSES)
        return redact_text("\n".join(lines), self.options.settings.secrets)

    def _fresh_get(self, sid: str) -> BrowserSessionResponse | None:
        """The session now, within the report's own short budget; ``None``: not asked, since
        an earlier report's GET went unanswered."""
        timeout = report_get_timeout(self.options.timeout, unanswered=self._report_unanswered)
        if timeout is None:
            return None
        try:
            return self.client.get_browser_session(sid, timeout=timeout)
        except Exception as exc:
            self._report_unanswered = self._report_unanswered or is_unanswered(exc)
            raise

    def _close_launched(self) -> None:
        self._stop_keeping()
        sid, self._launched = self._launched, None
        if sid is None:
            return
        if self.options.keep_on_failure and self._failures:
            app_url = self._session.app_url if self._session is not None else None
            with contextlib.suppress(Exception):
                fresh = self._fresh_get(sid)
                app_url = fresh.app_url if fresh is not None else app_url
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
