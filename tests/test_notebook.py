"""Notebooks: real ipykernel (via nbclient), real local backend, real Chromium."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import nbformat
import psutil
import pytest
from nbclient import NotebookClient
from traitlets.config import Config

from skyvern_cdp import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    SessionEndedError,
    SkyvernClient,
    notebook,
)
from skyvern_cdp.async_api import driver_stats, session_of

from conftest import LOCAL_API_KEY, wait_for

pytestmark = pytest.mark.browser


@pytest.fixture
def api_env(backend: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """SKYVERN_BASE_URL / SKYVERN_API_KEY name the shared local backend (kernels inherit them)."""
    monkeypatch.setenv("SKYVERN_BASE_URL", backend.base_url)
    monkeypatch.setenv("SKYVERN_API_KEY", LOCAL_API_KEY)
    return backend


@pytest.fixture
def client(api_env: Any) -> Iterator[SkyvernClient]:
    with SkyvernClient() as http:
        yield http


@pytest.fixture
def sid(client: SkyvernClient) -> Iterator[str]:
    """A ready session on the local backend, closed after the test."""
    made = client.create_browser_session(session_timeout_minutes=10)
    try:
        client.wait_for_browser_session(made.browser_session_id, timeout=30)
        yield made.browser_session_id
    finally:
        client.close_browser_session(made.browser_session_id)


def run_in_kernel(*cells: str, allow_errors: bool = False) -> list[Any]:
    """Execute ``cells`` in a fresh ipykernel (shut down gracefully after); their outputs."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    NotebookClient(
        nb,
        kernel_name="python3",
        timeout=90,
        allow_errors=allow_errors,
        # A loaded machine must not turn the graceful shutdown (which runs atexit) into a kill.
        config=Config({"KernelManager": {"shutdown_wait_time": 30.0}}),
    ).execute()
    return [cell.outputs for cell in nb.cells]


def printed(outputs: list[Any]) -> str:
    return "".join(o.get("text", "") for o in outputs if o.output_type == "stream")


async def until(predicate: Callable[[], bool], timeout: float) -> bool:
    """``wait_for`` for async tests: poll without blocking the event loop."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            return predicate()
        await asyncio.sleep(0.02)
    return True


def gone(pids: list[int]) -> bool:
    def dead(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    return all(dead(pid) for pid in pids)


REPORT = (
    "import dataclasses, json, psutil\n"
    "from skyvern_cdp.async_api import driver_stats\n"
    "def report(**extra):\n"
    "    print(json.dumps({**dataclasses.asdict(driver_stats()), **extra,\n"
    "        'children': [p.pid for p in psutil.Process().children(recursive=True)]}))\n"
)


def test_rerunning_the_attach_cell_reuses_the_live_connection(
    sid: str, api_env: Any, client: SkyvernClient
) -> None:
    attach_cell = f"browser = await notebook.attach({sid!r})"
    polls_before = api_env.get_count(sid)
    outputs = run_in_kernel(
        "from skyvern_cdp import notebook\n" + REPORT,
        attach_cell,
        "first = browser",
        attach_cell,  # the same cell, run again
        "report(same=browser is first, connected=browser.is_connected(),\n"
        "       live=notebook.live_sessions())",
        "await notebook.close()\n"
        "report(connected=browser.is_connected(), live=notebook.live_sessions())",
    )
    during = json.loads(printed(outputs[4]))
    assert during["same"] is True
    assert during["connected"] is True
    assert (during["started"], during["references"]) == (1, 1)  # one driver, one connection
    assert during["live"] == [sid]
    assert api_env.get_count(sid) == polls_before + 1  # the re-run sent no request at all

    after = json.loads(printed(outputs[5]))
    assert after["connected"] is False
    assert (after["running"], after["references"], after["live"]) == (False, 0, [])
    assert wait_for(lambda: gone(during["children"]), timeout=10)  # the driver stopped
    # Closing an attached session's Browser only disconnects: the session keeps running.
    assert client.get_browser_session(sid).status == "running"


def test_plain_connect_in_a_kernel_shares_one_driver_and_the_sync_api_refuses(
    sid: str, api_env: Any
) -> None:
    polls_before = api_env.get_count(sid)
    outputs = run_in_kernel(
        "import skyvern_cdp\n" + REPORT,
        f"browser = await skyvern_cdp.async_api.connect({sid!r})\nfirst = browser",
        f"browser = await skyvern_cdp.async_api.connect({sid!r})",  # re-run
        "report(same=browser is first)",
        f"from skyvern_cdp import sync_api\nsync_api.connect({sid!r})",
        "await first.close()\nawait browser.close()\nreport()",
        allow_errors=True,
    )
    shared = json.loads(printed(outputs[3]))
    # Without the notebook helper a re-run makes a second connection, but on the same driver.
    assert (shared["same"], shared["started"], shared["references"]) == (False, 1, 2)

    [error] = [o for o in outputs[4] if o.output_type == "error"]
    assert error.ename == "SyncAPIInAsyncLoopError"
    assert "await skyvern_cdp.async_api.connect(" in error.evalue
    # One GET per async connect; the sync call sent nothing.
    assert api_env.get_count(sid) == polls_before + 2

    closed = json.loads(printed(outputs[5]))
    assert (closed["running"], closed["references"]) == (False, 0)
    assert wait_for(lambda: gone(shared["children"]), timeout=10)


def test_the_kernel_exit_closes_what_the_notebook_left_open(
    api_env: Any, client: SkyvernClient
) -> None:
    outputs = run_in_kernel(
        "from skyvern_cdp import notebook\n" + REPORT,
        "browser = await notebook.launch(session_timeout_minutes=10)\n"
        "report(live=notebook.live_sessions())",
        # no close: the kernel shuts down with the session and the driver still up
    )
    left = json.loads(printed(outputs[1]))
    [launched] = left["live"]
    assert left["running"] is True
    try:
        assert client.get_browser_session(launched).status == "completed"
        assert wait_for(lambda: gone(left["children"]), timeout=10)
    finally:
        client.close_browser_session(launched)


# ---- the helpers in plain asyncio -----------------------------------------------------------


async def test_bad_input_is_refused_before_any_request(api_env: Any) -> None:
    with pytest.raises(InvalidArgumentError, match="must start with 'pbs_'"):
        await notebook.attach("nope")
    with pytest.raises(InvalidArgumentTypeError, match="must be a str"):
        await notebook.attach(123)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="timeout must be greater than 0"):
        await notebook.attach("pbs_123", timeout=0)
    with pytest.raises(InvalidArgumentError, match="base_url"):
        await notebook.attach("pbs_123", base_url="ftp://nowhere")
    with pytest.raises(InvalidArgumentTypeError, match="client must be an AsyncSkyvernClient"):
        await notebook.attach("pbs_123", client=object())
    with pytest.raises(InvalidArgumentError, match="invalid session fields: timeout_minutes"):
        await notebook.launch(timeout_minutes=10)
    with pytest.raises(InvalidArgumentTypeError, match="takes a Browser, a session id"):
        await notebook.close(42)  # type: ignore[arg-type]
    assert api_env.get_count("pbs_123") == 0
    assert notebook.live_sessions() == []


async def test_after_the_session_ends_attach_says_so_instead_of_reusing_a_dead_browser(
    sid: str, api_env: Any, client: SkyvernClient
) -> None:
    browser = await notebook.attach(sid)
    assert session_of(browser).browser_session_id == sid
    assert await notebook.attach(sid) is browser
    client.close_browser_session(sid)
    assert await until(lambda: not browser.is_connected(), timeout=10)
    with pytest.raises(SessionEndedError, match="has ended"):
        await notebook.attach(sid)
    assert notebook.live_sessions() == []
    assert driver_stats().references == 0  # the dead Browser's driver was released


async def test_close_ends_a_launched_session_and_keeps_an_attached_one(
    sid: str, api_env: Any, client: SkyvernClient
) -> None:
    attached = await notebook.attach(sid)
    launched = await notebook.launch(session_timeout_minutes=10)
    made = session_of(launched).browser_session_id
    assert notebook.live_sessions() == [sid, made]

    await notebook.close(launched)
    assert client.get_browser_session(made).status == "completed"
    assert notebook.live_sessions() == [sid]
    await notebook.close(sid)
    await notebook.close(sid)  # closing twice is harmless
    assert not attached.is_connected()
    assert client.get_browser_session(sid).status == "running"
    assert driver_stats().references == 0
    live = [s.browser_session_id for s in client.list_browser_sessions()]
    assert made not in live


def test_at_exit_a_closed_loop_still_gets_its_launched_session_ended(
    api_env: Any, client: SkyvernClient
) -> None:
    # asyncio.run() closes its loop before the interpreter exits: the safety net cannot use
    # it, and ends the launched session over plain HTTP instead.
    script = (
        "import asyncio\n"
        "from skyvern_cdp import notebook\n"
        "async def main():\n"
        "    await notebook.launch(session_timeout_minutes=10)\n"
        "    print(notebook.live_sessions()[0], flush=True)\n"
        "asyncio.run(main())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-2000:]
    launched = done.stdout.strip()
    try:
        assert client.get_browser_session(launched).status == "completed"
    finally:
        client.close_browser_session(launched)
