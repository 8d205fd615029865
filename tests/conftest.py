"""Shared fixtures: leak checks for every test, and the local backend for end-to-end tests."""

from __future__ import annotations

import importlib.util
import os
import signal
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import psutil
import pytest

# tests/asyncio_plugin needs pytest-playwright-asyncio (scripts/test runs it in its own venv).
# Ignored here, its conftest.py is never imported: imported, it would shadow this module as
# ``conftest`` for every test module that does ``from conftest import ...``.
collect_ignore = [] if importlib.util.find_spec("pytest_playwright_asyncio") else ["asyncio_plugin"]


def headless_shell() -> str | None:
    """Chromium's headless shell (``chrome-headless-shell``), if this machine has one.

    Playwright's own build (``playwright install chromium`` brings it beside the full browser)
    first, then Debian's ``chromium-headless-shell`` package. It is the Chromium that
    Playwright itself runs for headless automation: the same engine and the same DevTools
    protocol as the full browser, without the browser's UI layer, so it starts and stops for
    about a third of the CPU (measured: 0.28 against 0.76 CPU-seconds a start here).
    """
    from skyvern_cdp.local.chromium import _playwright_builds

    candidates = _playwright_builds("chromium_headless_shell", "chrome-*",
                                    ("chrome-headless-shell", "headless_shell"))
    # Debian's /usr/bin/chromium-headless-shell is a shell script that does not exec: the
    # binary itself, so that a signal to the browser's pid reaches the browser.
    candidates.append("/usr/lib/chromium/chromium-headless-shell")
    return next((path for path in candidates if os.access(path, os.X_OK)), None)


#: The Chromium every test starts, unless the caller chose one with SKYVERN_CDP_CHROMIUM (the
#: first place the package looks: ``skyvern_cdp.local.chromium.find_chromium``): the headless
#: shell where there is one. The full browser, which a user's machine finds, still runs where a
#: test drops SKYVERN_* from a child's environment as a user's shell has it: ``skyvern-cdp demo``
#: (tests/test_local_demo.py) and the example that needs no configuration (tests/test_examples.py).
#: Set beside SKYVERN_CDP_CHROMIUM when this file chose it, so that an xdist worker (which
#: inherits both) knows the choice was the suite's and not the caller's.
_SUITE_CHOICE = "SKYVERN_CDP_TESTS_CHOSE_CHROMIUM"
_CHOSEN_CHROMIUM = os.environ.get("SKYVERN_CDP_CHROMIUM")
if _CHOSEN_CHROMIUM and os.environ.get(_SUITE_CHOICE) == _CHOSEN_CHROMIUM:
    _CHOSEN_CHROMIUM = None
SUITE_CHROMIUM = _CHOSEN_CHROMIUM or headless_shell()
if SUITE_CHROMIUM and not _CHOSEN_CHROMIUM:
    os.environ["SKYVERN_CDP_CHROMIUM"] = os.environ[_SUITE_CHOICE] = SUITE_CHROMIUM


def full_chromium() -> str:
    """The Chromium this machine finds for a user (the full browser), or the caller's choice.

    For what the headless shell does not do as the browser does: a person's browser looking at
    the live view (Chrome's own error pages), a download the browser saves by its preferences.
    """
    from skyvern_cdp.local.chromium import find_chromium

    if _CHOSEN_CHROMIUM:
        return find_chromium()
    os.environ.pop("SKYVERN_CDP_CHROMIUM", None)
    try:
        return find_chromium()
    finally:
        if SUITE_CHROMIUM:
            os.environ["SKYVERN_CDP_CHROMIUM"] = SUITE_CHROMIUM

#: Child processes that session-scoped fixtures own on purpose (never reported as leaks).
LONG_LIVED_PIDS: set[int] = set()


def _descendants() -> dict[int, str]:
    found: dict[int, str] = {}
    for child in psutil.Process(os.getpid()).children(recursive=True):
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                continue
            found[child.pid] = " ".join(child.cmdline())[:200]
        except psutil.Error:
            continue
    return found


def wait_for(predicate: object, timeout: float = 10.0, interval: float = 0.02) -> bool:
    """Poll ``predicate()`` until it is true or ``timeout`` passes; return its last value."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() >= deadline:
            return bool(predicate())
        time.sleep(interval)


def _started_by_an_older_chromium(pid: int, cmd: str, older: set[int]) -> bool:
    """Whether ``pid`` is a Chromium helper (``--type=...``) below a process of ``older``.

    A Chromium that outlives one test (a session-scoped backend's, a module's) starts helper
    processes when it likes (a utility process for on-device models, a renderer): they belong
    to that Chromium, not to the test that happens to be running.
    """
    if " --type=" not in f" {cmd}":
        return False
    try:
        return any(parent.pid in older for parent in psutil.Process(pid).parents())
    except psutil.Error:
        return False


def leaked_processes(before: set[int], timeout: float = 10.0) -> dict[int, str]:
    """Processes started since ``before`` that are still running after ``timeout``."""

    def new() -> dict[int, str]:
        older = before | LONG_LIVED_PIDS
        return {
            pid: cmd
            for pid, cmd in _descendants().items()
            if pid not in older and not _started_by_an_older_chromium(pid, cmd, older)
        }

    wait_for(lambda: not new(), timeout)
    return new()


def _interruptible(sig: signal.Signals) -> Any:
    """``sig``'s handling as this process started, unless it started ignoring it.

    A shell without job control starts a background job (``scripts/test &``, a CI step run
    that way) with SIGINT ignored: Python then installs no KeyboardInterrupt, and every child
    inherits the ignored signal. The interrupt tests need a process that Ctrl-C reaches.
    """
    handler = signal.getsignal(sig)
    if handler is signal.SIG_IGN:
        return signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
    return handler


#: SIGINT/SIGTERM handling for every test (a child inherits an ignored signal).
_START_HANDLERS = {sig: _interruptible(sig) for sig in (signal.SIGINT, signal.SIGTERM)}


@pytest.fixture(autouse=True)
def signal_handling_as_started() -> None:
    """Every test starts with this process's own SIGINT/SIGTERM handling (made interruptible
    if it started ignoring them: ``_interruptible``), unblocked.

    A child process inherits an ignored or blocked signal, so a disposition left behind by an
    earlier test in the same worker would make the interrupt tests' children deaf to SIGINT.
    """
    for sig, handler in _START_HANDLERS.items():
        if handler is not None and signal.getsignal(sig) is not handler:
            signal.signal(sig, handler)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, set(_START_HANDLERS))


@pytest.fixture(autouse=True)
def no_leaked_processes() -> Iterator[None]:
    """Every test must stop the drivers, browsers and servers it started."""
    before = set(_descendants())
    yield
    leaks = leaked_processes(before)
    assert not leaks, f"processes left running by this test: {leaks}"


# ---- the local backend ------------------------------------------------------------------

if TYPE_CHECKING:
    from collections.abc import Callable

    from skyvern_cdp.local import LocalBackend

#: The key the shared ``backend`` fixture requires (``backend.api_key``).
LOCAL_API_KEY = "sk-local-test-key"


@pytest.fixture(scope="session")
def backend() -> Iterator[LocalBackend]:
    """One local backend for the whole run: real Chromium sessions, closed network, a key.

    Tests must close the sessions they create (the leak check sees their Chromiums).
    """
    from skyvern_cdp.local import LocalBackend
    from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

    server = LocalBackend(api_key=LOCAL_API_KEY, chromium_args=CLOSED_NETWORK_ARGS)
    with server:
        pid = server.watchdog_pid
        if pid is not None:
            LONG_LIVED_PIDS.add(pid)
        try:
            yield server
        finally:
            LONG_LIVED_PIDS.discard(pid or -1)


def _live_sessions(server: LocalBackend) -> list[str]:
    import httpx

    answer = httpx.get(f"{server.base_url}/v1/browser_sessions", trust_env=False, timeout=30,
                       headers={"x-api-key": server.api_key or ""})
    answer.raise_for_status()
    return [body["browser_session_id"] for body in answer.json()
            if body.get("status") in ("created", "running")]


@pytest.fixture(autouse=True)
def backend_left_clean(
    request: pytest.FixtureRequest, no_leaked_processes: None
) -> Iterator[None]:
    """A test that used the shared ``backend`` leaves no session of its own running on it.

    What it left (a test that failed half way, one that forgot) is closed here and reported
    as an error of that test, so the next test of the worker starts on a clean backend
    instead of failing on another test's Chromium. It ends before the leak check looks.
    """
    if "backend" not in request.fixturenames:
        yield
        return
    server = request.getfixturevalue("backend")
    before = set(_live_sessions(server))
    yield
    left = [sid for sid in _live_sessions(server) if sid not in before]
    if left:
        import httpx

        for sid in left:
            httpx.post(f"{server.base_url}/v1/browser_sessions/{sid}/close", trust_env=False,
                       timeout=30, headers={"x-api-key": server.api_key or ""})
        assert wait_for(lambda: not set(left) & set(_live_sessions(server)), 30)
        raise AssertionError(f"sessions left running on the shared backend: {left}")


@pytest.fixture(scope="session")
def spec_document() -> dict[str, object]:
    """``tests/data/get-browser-session.openapi.yaml``: Skyvern's spec, copied from ../shared."""
    import pathlib

    import yaml

    path = pathlib.Path(__file__).with_name("data") / "get-browser-session.openapi.yaml"
    loaded: dict[str, object] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return loaded


def _is_rfc3339_datetime(value: object) -> bool:
    import re
    from datetime import datetime

    if not isinstance(value, str):
        return True
    pattern = r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})"
    if not re.fullmatch(pattern, value):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return False
    return True


@pytest.fixture(scope="session")
def check_session(spec_document: dict[str, object]) -> Callable[[Any], Any]:
    """``check_session(body)``: assert ``body`` is a valid ``BrowserSessionResponse``.

    Validates with jsonschema against the spec, with a format checker that enforces RFC 3339
    ``date-time`` (a zone is required), and returns the body.
    """
    import jsonschema

    components = spec_document["components"]
    assert isinstance(components, dict)
    schema = {
        "$ref": "#/components/schemas/BrowserSessionResponse",
        "components": components,
    }
    checker = jsonschema.FormatChecker()
    checker.checks("date-time")(_is_rfc3339_datetime)
    validator = jsonschema.Draft202012Validator(schema, format_checker=checker)

    def check(body: Any) -> Any:
        errors = sorted(validator.iter_errors(body), key=lambda e: list(e.path))
        assert not errors, "not a valid BrowserSessionResponse: " + "; ".join(
            f"{list(e.path)}: {e.message}" for e in errors
        )
        return body

    return check


@pytest.fixture(scope="session")
def long_lived_pids() -> set[int]:
    """``LONG_LIVED_PIDS`` for test modules (add a module-scoped fixture's helper pids)."""
    return LONG_LIVED_PIDS
