"""A base URL where nothing answers fails in seconds at every entry point; a server that is
starting, or that has answered and then goes away for a while, is still waited for.

Each entry point runs with a long deadline (120 s, as a user would leave it); the rule under
test is the grace of :data:`skyvern_cdp.policy.UNREACHED_GRACE`, not the deadline.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from skyvern_cdp import (
    APIUnreachableError,
    AsyncSkyvernClient,
    SkyvernClient,
    async_api,
    notebook,
    sync_api,
)
from skyvern_cdp.cli import main
from skyvern_cdp.policy import UNREACHED_GRACE

from scripted_api import Reply, ScriptedAPI, session

SID = "pbs_failfast1"
PATH = f"/v1/browser_sessions/{SID}"
KEY = "sk-fail-fast-key"
LONG = 120.0  # every call's own deadline: far longer than the grace
BOUND = UNREACHED_GRACE + 1.0


def unused_port() -> int:
    """A port free right now, for a server that a test starts on it later."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port that refuses connections for the whole test: bound but not listening, so no
    other process (another xdist worker's server, a Chromium) can take it meanwhile."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield int(sock.getsockname()[1])


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SKYVERN_BASE_URL", "SKYVERN_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(params=["closed-port", "unresolvable-name"])
def dead_url(request: pytest.FixtureRequest, clean_env: None, closed_port: int) -> str:
    if request.param == "closed-port":
        return f"http://127.0.0.1:{closed_port}"
    return "https://skyvern-cdp-test.invalid"  # reserved: never resolves (RFC 2606)


@pytest.fixture
def closed_url(clean_env: None, closed_port: int) -> str:
    """For the slower whole-process checks: the in-process test covers both kinds."""
    return f"http://127.0.0.1:{closed_port}"


def _sync_calls(url: str) -> dict[str, Callable[[], object]]:
    def client() -> SkyvernClient:
        return SkyvernClient(KEY, url)

    def cli(*args: str) -> Callable[[], object]:
        return lambda: main(["--base-url", url, "--api-key", KEY, *args])

    return {
        "SkyvernClient.get": lambda: client().get_browser_session(SID, timeout=LONG),
        "SkyvernClient.create": lambda: client().create_browser_session(timeout=LONG),
        "SkyvernClient.close": lambda: client().close_browser_session(SID, timeout=LONG),
        "SkyvernClient.list": lambda: client().list_browser_sessions(timeout=LONG),
        "SkyvernClient.extend": lambda: client().extend_browser_session(SID, 5, timeout=LONG),
        "SkyvernClient.wait": lambda: client().wait_for_browser_session(SID, timeout=LONG),
        "sync_api.connect": lambda: sync_api.connect(SID, api_key=KEY, base_url=url, timeout=LONG),
        "sync_api.launch": lambda: sync_api.launch(api_key=KEY, base_url=url, timeout=LONG),
        "cli info": cli("info", SID, "--timeout", str(LONG)),
        "cli wait": cli("wait", SID, "--timeout", str(LONG)),
        "cli launch": cli("launch", "--ready-timeout", str(LONG)),
        "cli close": cli("close", SID, "--timeout", str(LONG)),
        "cli extend": cli("extend", SID, "5", "--timeout", str(LONG)),
        "cli list": cli("list", "--timeout", str(LONG)),
    }


def _async_calls(url: str) -> dict[str, Callable[[], Any]]:
    def client() -> AsyncSkyvernClient:
        return AsyncSkyvernClient(KEY, url)

    kwargs: dict[str, Any] = {"api_key": KEY, "base_url": url, "timeout": LONG}
    return {
        "AsyncSkyvernClient.get": lambda: client().get_browser_session(SID, timeout=LONG),
        "AsyncSkyvernClient.create": lambda: client().create_browser_session(timeout=LONG),
        "AsyncSkyvernClient.wait": lambda: client().wait_for_browser_session(SID, timeout=LONG),
        "async_api.connect": lambda: async_api.connect(SID, **kwargs)._open(),
        "async_api.launch": lambda: async_api.launch(**kwargs)._open(),
        "notebook.attach": lambda: notebook.attach(SID, **kwargs),
        "notebook.launch": lambda: notebook.launch(**kwargs),
    }


def _timed(call: Callable[[], object]) -> tuple[object, float]:
    started = time.monotonic()
    try:
        outcome: object = call()
    except BaseException as exc:
        outcome = exc
    return outcome, time.monotonic() - started


async def _timed_async(call: Callable[[], Any]) -> tuple[object, float]:
    started = time.monotonic()
    try:
        outcome: object = await call()
    except BaseException as exc:
        outcome = exc
    return outcome, time.monotonic() - started


def test_every_entry_point_gives_up_on_a_dead_address_within_the_grace(
    dead_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """All at once (they wait on the network, not the CPU), each timed on its own."""
    sync_calls, async_calls = _sync_calls(dead_url), _async_calls(dead_url)

    async def run_async() -> dict[str, tuple[object, float]]:
        results = await asyncio.gather(*(_timed_async(c) for c in async_calls.values()))
        return dict(zip(async_calls, results, strict=True))

    with ThreadPoolExecutor(len(sync_calls) + 1) as pool:
        futures = {name: pool.submit(_timed, call) for name, call in sync_calls.items()}
        async_results = pool.submit(asyncio.run, run_async())
        outcomes = {name: future.result(timeout=60) for name, future in futures.items()}
        outcomes.update(async_results.result(timeout=60))
    err = capsys.readouterr().err

    assert set(outcomes) == set(sync_calls) | set(async_calls)
    for name, (outcome, took) in outcomes.items():
        assert took <= BOUND, f"{name} took {took:.1f}s (grace {UNREACHED_GRACE}s)"
        if name.startswith("cli "):
            assert outcome == 1, f"{name} exited {outcome!r}"
            continue
        assert isinstance(outcome, APIUnreachableError), f"{name} gave {outcome!r}"
        assert f"nothing answered at {dead_url}" in str(outcome), name
        assert KEY not in str(outcome)
    cli_errors = [line for line in err.splitlines() if line.startswith("skyvern-cdp: error:")]
    assert len(cli_errors) == sum(1 for name in outcomes if name.startswith("cli "))
    assert all(f"nothing answered at {dead_url}" in line for line in cli_errors), err
    assert KEY not in err
    assert notebook.live_sessions() == []


def test_the_cli_fails_fast_as_a_real_process(closed_url: str) -> None:
    """The installed command, as a new user with a mistyped port meets it: one line, exit 1."""
    dead_url = closed_url
    script = Path(sys.executable).with_name("skyvern-cdp")

    def run(base_url: str) -> tuple[subprocess.CompletedProcess[str], float]:
        started = time.monotonic()
        done = subprocess.run(
            [str(script), "--base-url", base_url, "info", SID],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "SKYVERN_API_KEY": KEY},
        )
        return done, time.monotonic() - started

    # The same command against a server that answers at once: the interpreter's start-up and
    # the imports, as long as this machine takes for them now (seen at 3.5 s under load).
    with ScriptedAPI() as api:
        api.script("GET", f"/v1/browser_sessions/{SID}", Reply(404, {"detail": "no"}))
        answered, start_up = run(api.base_url)
    assert answered.returncode == 3, answered.stderr
    done, took = run(dead_url)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and f"nothing answered at {dead_url}" in lines[0], done.stderr
    assert "SKYVERN_BASE_URL" in lines[0]  # says what to check
    assert took <= BOUND + 2 * start_up, f"{took:.1f}s; the start-up alone took {start_up:.1f}s"


def test_the_pytest_plugin_fails_fast(closed_url: str, pytester: pytest.Pytester) -> None:
    dead_url = closed_url
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile("def test_needs_it(skyvern_page):\n    raise AssertionError('ran')\n")
    started = time.monotonic()
    result = pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "--skyvern-launch", "--skyvern-base-url", dead_url,
        "--skyvern-api-key", KEY,
    )
    took = time.monotonic() - started
    result.assert_outcomes(errors=1)
    text = result.stdout.str()
    assert f"nothing answered at {dead_url}" in text
    assert "ran" not in text.split("short test summary")[0].split("def test_needs_it")[-1]
    assert KEY not in text
    assert took <= BOUND + 1.0  # pytest's own collection on top


# -- servers that are worth waiting for -------------------------------------------------------


def _wait_with(flavour: str, port: int, timeout: float) -> Any:
    """``wait_for_browser_session`` with the sync or the async client."""
    url = f"http://127.0.0.1:{port}"
    if flavour == "sync":
        with SkyvernClient(KEY, url) as client:
            return client.wait_for_browser_session(SID, timeout=timeout)

    async def wait() -> Any:
        async with AsyncSkyvernClient(KEY, url) as client:
            return await client.wait_for_browser_session(SID, timeout=timeout)

    return asyncio.run(wait())


def _running_session() -> dict[str, Any]:
    return session(SID, ready=True, browser_address="ws://127.0.0.1:1/devtools/browser/x")


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_server_that_starts_two_seconds_after_the_call_is_waited_for(flavour: str) -> None:
    port = unused_port()
    late = ScriptedAPI(port=port)
    late.script("GET", PATH, Reply(200, _running_session()))
    timer = threading.Timer(2.0, late.__enter__)
    started = time.monotonic()
    timer.start()
    try:
        got = _wait_with(flavour, port, 30)
        took = time.monotonic() - started
    finally:
        timer.join()
        late.__exit__()
    assert got.status == "running"
    assert 2.0 <= took < UNREACHED_GRACE, took


@pytest.mark.parametrize("flavour", ["async"])  # the rule is the clients' shared base
def test_an_eight_second_outage_after_the_server_answered_is_waited_out(flavour: str) -> None:
    port = unused_port()
    first = ScriptedAPI(port=port)
    first.script("GET", PATH, Reply(200, session(SID)))  # "created"
    servers = [first]
    outage: dict[str, float] = {}

    def go_down_then_up() -> None:
        while first.count("GET", PATH) == 0:  # down right after its first answer
            if time.monotonic() - started > 20:
                return
            threading.Event().wait(0.01)
        first.__exit__()
        outage["from"] = time.monotonic()
        threading.Event().wait(8.0)  # the outage itself
        second = ScriptedAPI(port=port)  # the same port again
        second.script("GET", PATH, Reply(200, _running_session()))
        servers.append(second.__enter__())
        outage["to"] = time.monotonic()

    first.__enter__()
    started = time.monotonic()
    flipper = threading.Thread(target=go_down_then_up)
    flipper.start()
    try:
        got = _wait_with(flavour, port, 40)
    finally:
        flipper.join(30)
        for server in servers:
            server.__exit__()
    assert got.status == "running"
    assert outage["to"] - outage["from"] >= 8.0
    assert len(servers) == 2 and servers[1].count("GET", PATH) >= 1


def test_a_server_that_answered_once_is_retried_to_the_deadline_by_every_client() -> None:
    """The memory is per base URL and per process: a new client of a server that answered
    earlier still waits out its outage; a dead neighbour is not vouched for by it."""
    from skyvern_cdp import APIConnectionError

    with ScriptedAPI() as api:
        api.script("GET", PATH, Reply(200, session(SID)))
        with SkyvernClient(KEY, api.base_url) as first:
            first.get_browser_session(SID, timeout=10)
        url = api.base_url
    started = time.monotonic()
    with SkyvernClient(KEY, url) as later, pytest.raises(APIConnectionError) as caught:
        later.get_browser_session(SID, timeout=UNREACHED_GRACE + 1.5)
    took = time.monotonic() - started
    assert not isinstance(caught.value, APIUnreachableError)
    assert took >= UNREACHED_GRACE + 1.4  # the deadline, not the grace
    neighbour = f"http://127.0.0.1:{unused_port()}"
    with SkyvernClient(KEY, neighbour) as other, pytest.raises(APIUnreachableError):
        other.get_browser_session(SID, timeout=LONG)
