"""One deadline bounds every byte: each entry point ends within about half a second of its
``timeout`` against a server that sends its answers one byte at a time (each read gets a
byte long before any per-read limit, so only a bound on the whole request ends it).

The matrix covers both clients' methods, ``connect``/``launch`` in both shells,
``notebook.attach/launch``, the CLI's commands, the pytest plugin and the relay. Set
``SKYVERN_CDP_DEADLINE_LOG=path`` to append each case's time as a JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright
from playwright.sync_api import sync_playwright

from skyvern_cdp import (
    AsyncSkyvernClient,
    SkyvernCDPError,
    SkyvernClient,
    async_api,
    notebook,
    sync_api,
)
from skyvern_cdp.cli import main as cli_main
from skyvern_cdp.relay import relay

from scripted_api import Reply, ScriptedAPI, session

SID = "pbs_drip"
KEY = "sk-deadline-key"
T = 1.5  # the deadline every case is given
SLACK = 0.5  # README: "each finishes within about half a second of the deadline"
DRIP = 0.02  # seconds per byte: a session's answer takes about 8 s to arrive
CLOSE = f"/v1/browser_sessions/{SID}/close"


def _note(case: str, seconds: float, **extra: Any) -> None:
    path = os.environ.get("SKYVERN_CDP_DEADLINE_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(json.dumps({"case": case, "seconds": round(seconds, 2), **extra}) + "\n")


def dripping_api() -> ScriptedAPI:
    """Every route answers one byte every ``DRIP`` s; the close never finishes."""
    api = ScriptedAPI()
    ready = session(SID, ready=True, browser_address="ws://127.0.0.1:9/devtools/browser/x")
    api.script("GET", f"/v1/browser_sessions/{SID}", Reply(200, ready, drip=DRIP))
    api.script("GET", "/v1/browser_sessions", Reply(200, [ready], drip=DRIP))
    api.script("POST", "/v1/browser_sessions", Reply(200, session(SID), drip=DRIP))
    api.script("POST", f"/v1/browser_sessions/{SID}/extend", Reply(200, ready, drip=DRIP))
    api.script("POST", CLOSE, Reply(200, {"message": "ok"}, drip=DRIP, endless=True))
    return api


@pytest.fixture
def api() -> Iterator[ScriptedAPI]:
    with dripping_api() as server:
        yield server


# Each case gets the server's URL and a client made before the clock starts (making one
# loads the TLS context once per process: not part of any call's timeout).
SYNC_CASES: dict[str, Callable[[str, SkyvernClient], object]] = {
    "SkyvernClient.get": lambda u, c: c.get_browser_session(SID, timeout=T),
    "SkyvernClient.list": lambda u, c: c.list_browser_sessions(timeout=T),
    "SkyvernClient.create": lambda u, c: c.create_browser_session(timeout=T),
    "SkyvernClient.close": lambda u, c: c.close_browser_session(SID, timeout=T),
    "SkyvernClient.extend": lambda u, c: c.extend_browser_session(SID, 5, timeout=T),
    "SkyvernClient.wait": lambda u, c: c.wait_for_browser_session(SID, timeout=T),
    "sync_api.launch": lambda u, c: sync_api.launch(api_key=KEY, base_url=u, timeout=T),
}

CLI_CASES: dict[str, list[str]] = {
    "cli info": ["info", SID, "--timeout", str(T)],
    "cli wait": ["wait", SID, "--timeout", str(T)],
    "cli launch": ["launch", "--ready-timeout", str(T)],
    "cli close": ["close", SID, "--timeout", str(T)],
    "cli extend": ["extend", SID, "5", "--timeout", str(T)],
    "cli list": ["list", "--timeout", str(T)],
    "cli relay": ["relay", SID, "--port", "0", "--ready-timeout", str(T)],
    "cli relay --launch": ["relay", "--launch", "--port", "0", "--ready-timeout", str(T)],
}


def _within_deadline(case: str, started: float, api: ScriptedAPI) -> None:
    took = time.monotonic() - started
    _note(case, took, dripped=api.dripped)
    assert api.dripped > 0, "the server never dripped: the case did not reach it"
    assert took <= T + SLACK, f"{case} took {took:.2f}s with timeout={T}"


@pytest.mark.parametrize("case", SYNC_CASES)
def test_sync_entry_points_end_at_their_deadline(case: str, api: ScriptedAPI) -> None:
    with SkyvernClient(KEY, api.base_url) as client:
        started = time.monotonic()
        with pytest.raises(SkyvernCDPError):
            SYNC_CASES[case](api.base_url, client)
        _within_deadline(case, started, api)


def test_sync_connect_ends_at_its_deadline(api: ScriptedAPI) -> None:
    with sync_playwright() as pw:
        started = time.monotonic()
        with pytest.raises(SkyvernCDPError):
            sync_api.connect(SID, api_key=KEY, base_url=api.base_url, playwright=pw, timeout=T)
        _within_deadline("sync_api.connect", started, api)


@pytest.mark.parametrize("case", CLI_CASES)
def test_cli_commands_end_at_their_deadline(case: str, api: ScriptedAPI) -> None:
    started = time.monotonic()
    code = cli_main(["--base-url", api.base_url, "--api-key", KEY, *CLI_CASES[case]])
    _within_deadline(case, started, api)
    assert code not in (0, 130), code


async def _relay(url: str, **kwargs: Any) -> None:
    async with relay(api_key=KEY, base_url=url, port=0, timeout=T, **kwargs):
        raise AssertionError("the relay served a session that never answered")


ASYNC_CASES: dict[str, Callable[[str, Any, AsyncSkyvernClient], Awaitable[object]]] = {
    "AsyncSkyvernClient.get": lambda u, pw, c: c.get_browser_session(SID, timeout=T),
    "AsyncSkyvernClient.list": lambda u, pw, c: c.list_browser_sessions(timeout=T),
    "AsyncSkyvernClient.create": lambda u, pw, c: c.create_browser_session(timeout=T),
    "AsyncSkyvernClient.close": lambda u, pw, c: c.close_browser_session(SID, timeout=T),
    "AsyncSkyvernClient.extend": lambda u, pw, c: c.extend_browser_session(SID, 5, timeout=T),
    "AsyncSkyvernClient.wait": lambda u, pw, c: c.wait_for_browser_session(SID, timeout=T),
    "async_api.connect": lambda u, pw, c: _awaited(
        async_api.connect(SID, api_key=KEY, base_url=u, playwright=pw, timeout=T)
    ),
    "async_api.launch": lambda u, pw, c: _awaited(
        async_api.launch(api_key=KEY, base_url=u, playwright=pw, timeout=T)
    ),
    "notebook.attach": lambda u, pw, c: notebook.attach(
        SID, api_key=KEY, base_url=u, playwright=pw, timeout=T
    ),
    "notebook.launch": lambda u, pw, c: notebook.launch(
        api_key=KEY, base_url=u, playwright=pw, timeout=T
    ),
    "relay": lambda u, pw, c: _relay(u, session_id=SID),
    "relay create=": lambda u, pw, c: _relay(u, create={}),
}


async def _awaited(awaitable: Awaitable[object]) -> object:
    return await awaitable


@pytest.mark.parametrize("case", ASYNC_CASES)
async def test_async_entry_points_end_at_their_deadline(case: str, api: ScriptedAPI) -> None:
    async with async_playwright() as pw, AsyncSkyvernClient(KEY, api.base_url) as client:
        started = time.monotonic()
        with pytest.raises(SkyvernCDPError):
            await ASYNC_CASES[case](api.base_url, pw, client)
        _within_deadline(case, started, api)


PLUGIN_TEST = """
import time
from pathlib import Path

def test_needs_a_session(request):
    started = time.monotonic()
    try:
        request.getfixturevalue("skyvern_session")
    finally:
        Path("took").write_text(str(time.monotonic() - started))
"""


@pytest.mark.parametrize("mode", ["--skyvern-session", "--skyvern-launch"])
def test_the_pytest_plugin_ends_at_its_deadline(
    mode: str, api: ScriptedAPI, tmp_path: Path
) -> None:
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(PLUGIN_TEST))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYVERN_", "PYTEST_"))}
    env["SKYVERN_API_KEY"] = KEY
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "-p", "no:xdist",
            "--skyvern-base-url", api.base_url, "--skyvern-timeout", str(T)]
    argv += [mode, SID] if mode == "--skyvern-session" else [mode]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=60)
    took = float((tmp_path / "took").read_text())
    _note(f"pytest {mode}", took, dripped=api.dripped)
    assert done.returncode == pytest.ExitCode.TESTS_FAILED, done.stdout[-2000:]
    assert api.dripped > 0
    assert took <= T + SLACK, f"the plugin's fixture took {took:.2f}s with timeout={T}"


# -- close_timeout bounds the close ------------------------------------------------------------


def _refusing_launch_api() -> ScriptedAPI:
    """Creates at once, answers a ready session whose address refuses, and never finishes a
    close: a failed launch's close must give up after close_timeout."""
    api = ScriptedAPI()
    ready = session(SID, ready=True, browser_address="ws://127.0.0.1:1/devtools/browser/x")
    api.script("POST", "/v1/browser_sessions", Reply(200, session(SID)))
    api.script("GET", f"/v1/browser_sessions/{SID}", Reply(200, ready))
    api.script("POST", CLOSE, Reply(200, {"message": "ok"}, drip=DRIP, endless=True))
    return api


CLOSE_TIMEOUT = 1.0


def test_a_failed_sync_launch_gives_its_close_close_timeout() -> None:
    with _refusing_launch_api() as api, sync_playwright() as pw:
        started = time.monotonic()
        with pytest.raises(SkyvernCDPError):
            sync_api.launch(api_key=KEY, base_url=api.base_url, playwright=pw, timeout=T,
                            close_timeout=CLOSE_TIMEOUT)
        took = time.monotonic() - started
        _note("sync launch: failed, endless close", took)
        assert api.count("POST", CLOSE) == 1
        assert took <= T + CLOSE_TIMEOUT + SLACK, took


async def test_a_failed_async_launch_gives_its_close_close_timeout() -> None:
    with _refusing_launch_api() as api:
        async with async_playwright() as pw:
            started = time.monotonic()
            with pytest.raises(SkyvernCDPError):
                await async_api.launch(api_key=KEY, base_url=api.base_url, playwright=pw,
                                       timeout=T, close_timeout=CLOSE_TIMEOUT)
            took = time.monotonic() - started
        _note("async launch: failed, endless close", took)
        assert api.count("POST", CLOSE) == 1
        assert took <= T + CLOSE_TIMEOUT + SLACK, took


def test_the_cli_launch_close_is_bounded_too(monkeypatch: pytest.MonkeyPatch) -> None:
    """The session never becomes ready in time; its close never finishes: launch ends at
    its deadline plus the close's own bound."""
    monkeypatch.setattr("skyvern_cdp.cli.sessions.LAUNCH_CLOSE_TIMEOUT", CLOSE_TIMEOUT)
    with ScriptedAPI() as api:
        api.script("POST", "/v1/browser_sessions", Reply(200, session(SID)))
        api.script("GET", f"/v1/browser_sessions/{SID}", Reply(200, session(SID)))
        api.script("POST", CLOSE, Reply(200, {"message": "ok"}, drip=DRIP, endless=True))
        started = time.monotonic()
        code = cli_main(["--base-url", api.base_url, "--api-key", KEY, "launch",
                         "--ready-timeout", str(T)])
        took = time.monotonic() - started
        assert code == 5
        assert api.count("POST", CLOSE) == 1
        assert took <= T + CLOSE_TIMEOUT + SLACK, took
        assert api.dripped > 0
