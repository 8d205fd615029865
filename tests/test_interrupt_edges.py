"""Nothing left running on any interrupt: a session the library created is closed whatever
ends the caller. Real signals to child processes, a server whose create (or close) takes
seconds; each case counts the close calls that reached the server and checks the exit code.

- ``SystemExit`` from a SIGTERM handler while sync ``launch`` creates;
- anyio cancellation (``move_on_after``) while async ``launch`` or the relay creates;
- Ctrl-C while a launched Browser closes, then ``close()`` again;
- ``close()`` from another thread;
- ``skyvern-cdp launch`` (Ctrl-C) and ``pytest --skyvern-launch`` (SIGTERM) mid-create.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import pytest

from skyvern_cdp import SkyvernClient, WrongThreadError, async_api, sync_api
from skyvern_cdp.relay import relay

from conftest import wait_for
from scripted_api import Reply, ScriptedAPI, Seen, session

if TYPE_CHECKING:
    from skyvern_cdp.local import LocalBackend

KEY = "sk-interrupt-edges-key"
MADE = "pbs_made_while_interrupted"
CREATE = "/v1/browser_sessions"
CLOSE = f"/v1/browser_sessions/{MADE}/close"


def _env(key: str = KEY) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYVERN_", "PYTEST_"))}
    env["SKYVERN_API_KEY"] = key
    return env


def signal_child(
    argv: list[str],
    when: Callable[[], bool],
    sig: signal.Signals,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> tuple[int, str, str]:
    """Run ``argv``, send it ``sig`` once ``when()`` is true; its (exit code, stdout, stderr)."""
    with subprocess.Popen(
        argv, env=env or _env(), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as child:
        try:
            assert wait_for(when, 60), "the child never got there"
            child.send_signal(sig)
            out, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
    return child.returncode, out, err


def _slow_create_api() -> ScriptedAPI:
    """A create that takes 3 s to answer, and a close that answers at once."""
    api = ScriptedAPI()
    api.script("POST", CREATE, Reply(200, session(MADE), delay=3.0))
    api.script("POST", CLOSE, Reply(200, {"message": "Browser session closed"}))
    return api


def _created(api: ScriptedAPI) -> Callable[[], bool]:
    return lambda: api.count("POST", CREATE) == 1


# -- SystemExit ------------------------------------------------------------------------------

SIGTERM_EXIT_SCRIPT = """
import signal, sys
from skyvern_cdp import sync_api
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # a service's usual handler
sync_api.launch(base_url=sys.argv[1], timeout=60, close_timeout=10)
print("not interrupted", flush=True)
"""


def test_a_sigterm_handler_calling_sys_exit_mid_create_closes_the_session() -> None:
    with _slow_create_api() as api:
        code, out, err = signal_child(
            [sys.executable, "-c", SIGTERM_EXIT_SCRIPT, api.base_url], _created(api),
            signal.SIGTERM,
        )
        assert code == 143, (out, err)
        assert out == ""
        assert api.count("POST", CLOSE) == 1, "the session the create made is left running"


# -- anyio cancellation ------------------------------------------------------------------------


async def test_anyio_cancelling_an_async_launch_mid_create_still_closes_the_session() -> None:
    """anyio cancels again at every await: the close after the create must be shielded."""
    with _slow_create_api() as api:
        started = time.monotonic()
        with anyio.move_on_after(1.0) as scope:
            await async_api.launch(api_key=KEY, base_url=api.base_url, timeout=30)
        assert scope.cancelled_caught
        assert api.count("POST", CLOSE) == 1, "cancelled mid-create, the session was left"
        assert time.monotonic() - started < 3.0 + 10.0


async def test_anyio_cancelling_the_relay_mid_create_still_closes_the_session() -> None:
    with _slow_create_api() as api:
        with anyio.move_on_after(1.0) as scope:
            async with relay(api_key=KEY, base_url=api.base_url, create={}, port=0):
                raise AssertionError("served before the create answered")
        assert scope.cancelled_caught
        assert api.count("POST", CLOSE) == 1


# -- Ctrl-C while a Browser closes ---------------------------------------------------------------

CLOSE_TWICE_SCRIPT = """
import sys
from skyvern_cdp import sync_api
browser = sync_api.launch(base_url=sys.argv[1], timeout=60, close_timeout=10)
sys.stderr.write("attached\\n"); sys.stderr.flush()
try:
    browser.close()
    print("closed without an interrupt", flush=True)
except KeyboardInterrupt:
    print("interrupted", flush=True)
browser.close()  # the user tries again
print("connected", browser.is_connected(), flush=True)
"""


@pytest.fixture
def chromium_address(backend: LocalBackend) -> Iterator[tuple[str, str]]:
    """A real session of the local backend: (its CDP address, the key it wants)."""
    with SkyvernClient(backend.api_key, backend.base_url) as client:
        sid = client.create_browser_session().browser_session_id
        try:
            ready = client.wait_for_browser_session(sid, timeout=60)
            assert ready.browser_address
            yield ready.browser_address, backend.api_key or ""
        finally:
            client.close_browser_session(sid, timeout=30)


@pytest.mark.browser
def test_ctrl_c_while_a_launched_browser_closes_then_close_again_ends_the_session(
    chromium_address: tuple[str, str],
) -> None:
    address, key = chromium_address
    closes: list[Seen] = []

    def slow_first_close(request: Seen) -> Reply:
        closes.append(request)
        return Reply(200, {"message": "ok"}, delay=5.0 if len(closes) == 1 else 0.0)

    with ScriptedAPI() as api:
        api.script("POST", CREATE, Reply(200, session(MADE)))
        api.script("GET", f"/v1/browser_sessions/{MADE}",
                   Reply(200, session(MADE, ready=True, browser_address=address)))
        api.handle("POST", CLOSE, slow_first_close)
        code, out, err = signal_child(
            [sys.executable, "-c", CLOSE_TWICE_SCRIPT, api.base_url], lambda: bool(closes),
            signal.SIGINT, env=_env(key),
        )
    assert code == 0, (out, err)
    assert out.split("\n")[:2] == ["interrupted", "connected False"], (out, err)
    assert len(closes) == 2, "close() after the interrupt did not end the session"


# -- close() from another thread -----------------------------------------------------------------


@pytest.mark.browser
def test_close_from_another_thread_ends_the_session_and_keeps_the_driver_count(
    backend: LocalBackend,
) -> None:
    browser = sync_api.launch(api_key=backend.api_key, base_url=backend.base_url, timeout=60)
    sid = sync_api.session_of(browser).browser_session_id
    raised: list[BaseException] = []

    def close_elsewhere() -> None:
        try:
            browser.close()
        except BaseException as exc:
            raised.append(exc)

    try:
        thread = threading.Thread(target=close_elsewhere)
        thread.start()
        thread.join(60)
        assert [type(e) for e in raised] == [WrongThreadError]
        with SkyvernClient(backend.api_key, backend.base_url) as client:
            assert client.get_browser_session(sid, timeout=10).status == "completed"
        assert sync_api.driver_stats().references == 1  # still this Browser's
        assert browser.is_connected()
    finally:
        browser.close()  # in its own thread: disconnects and stops the driver
    stats = sync_api.driver_stats()
    assert (stats.references, stats.running) == (0, False)
    assert not browser.is_connected()


# -- the CLI's and the plugin's own create ---------------------------------------------------


def test_ctrl_c_while_the_cli_launch_creates_closes_the_session() -> None:
    with _slow_create_api() as api:
        code, out, err = signal_child(
            [sys.executable, "-m", "skyvern_cdp.cli", "--base-url", api.base_url, "launch"],
            _created(api), signal.SIGINT,
        )
        assert code == 130, (out, err)
        assert out == ""
        assert api.count("POST", CLOSE) == 1, "the session the CLI's create made is left"
        assert KEY not in out + err


PLUGIN_TEST = """
def test_uses_the_session(skyvern_session):
    raise AssertionError("the create never answered before SIGTERM")
"""


@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "xdist-2"])
def test_sigterm_while_the_plugin_creates_closes_the_session(
    workers: int, tmp_path: Path
) -> None:
    """SIGTERM to pytest (the controller under xdist) while a create is in flight."""
    (tmp_path / "test_inner.py").write_text(textwrap.dedent(PLUGIN_TEST))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    with _slow_create_api() as api:
        argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                "--skyvern-launch", "--skyvern-base-url", api.base_url]
        argv += ["-n", str(workers)] if workers else ["-p", "no:xdist"]
        code, out, err = signal_child(argv, _created(api), signal.SIGTERM, cwd=tmp_path)
        assert code == pytest.ExitCode.INTERRUPTED, (out[-2000:], err[-2000:])
        assert api.count("POST", CREATE) == 1
        assert api.count("POST", CLOSE) == 1, "the session the plugin's create made is left"
