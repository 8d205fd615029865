"""Reliability: every API fault ends in success or the right typed error inside the deadline;
cancellation and interrupts at each phase leave nothing running; secrets never leak; bad
input is refused before any request.

Set ``SKYVERN_CDP_RELIABILITY_LOG=path`` to have each fault case append its outcome and
timing as a JSON line (``scripts/reliability`` does, to print its figures).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest
import pytest_asyncio
from faults import FlakyProxy, HeaderRecorder
from playwright.async_api import Browser

from skyvern_cdp import (
    APIError,
    AsyncSkyvernClient,
    AuthenticationError,
    BrowserSessionResponse,
    CDPConnectError,
    SessionEndedError,
    SessionNotFoundError,
    SessionNotReadyError,
    SkyvernCDPError,
    SkyvernClient,
    async_api,
)
from skyvern_cdp._attachment import AttachOptions, dial_target
from skyvern_cdp.config import resolve_settings
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

from conftest import wait_for
from scripted_api import Reply, ScriptedAPI, session

KEY = "sk-FAULTS-recognisable-key-9981"
TOKEN = "TOKEN-never-in-logs-5521"
SID = "pbs_fault"
PATH = f"/v1/browser_sessions/{SID}"
DEADLINE = 3.0
SLACK = 1.0  # every outcome within timeout + 1 s

# One event loop for the module, so that one warm Playwright driver serves every case: the
# cases measure the helper's handling of faults, not a cold driver start on a busy machine.
pytestmark = pytest.mark.asyncio(loop_scope="module")


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS) as local:
        yield local


@pytest.fixture(scope="module")
def chromium_address(backend: LocalBackend) -> Iterator[str]:
    """The CDP address of one running session, shared by the module's fault cases."""
    with SkyvernClient(base_url=backend.base_url) as api:
        sid = api.create_browser_session().browser_session_id
        try:
            ready = api.wait_for_browser_session(sid, timeout=30)
            assert ready.browser_address
            yield ready.browser_address
        finally:
            api.close_browser_session(sid)


@pytest_asyncio.fixture(scope="module", loop_scope="module", autouse=True)
async def warm_driver(backend: LocalBackend, chromium_address: str) -> AsyncIterator[Browser]:
    """Holds a reference on the loop's shared driver for the whole module."""
    with SkyvernClient(base_url=backend.base_url) as api:
        sid = api.list_browser_sessions()[0].browser_session_id
    browser = await async_api.connect(sid, base_url=backend.base_url, timeout=60)
    yield browser
    await browser.close()


def driver_released(baseline: int = 1) -> bool:
    """Only the module's warm reference is left on the shared driver."""
    return async_api.driver_stats().references == baseline


@pytest.fixture
def scripted() -> Iterator[ScriptedAPI]:
    with ScriptedAPI() as server:
        yield server


def record(case: str, ok: bool, elapsed: float, timeout: float) -> None:
    path = os.environ.get("SKYVERN_CDP_RELIABILITY_LOG")
    if path:
        with open(path, "a") as log:
            log.write(
                json.dumps({"fault": case, "ok": ok, "elapsed": elapsed, "timeout": timeout}) + "\n"
            )


def created() -> Reply:
    return Reply(200, session(SID))


BUSY = {"detail": {"code": "downloaded_files_unavailable", "retryable": True}}

#: (id, replies before the ready one or None for "forever", expected error or None)
API_FAULTS: list[tuple[str, list[Reply], bool, type[Exception] | None]] = [
    ("500-then-ready", [Reply(500, {"error": "Unexpected error: boom"})], True, None),
    ("502-then-ready", [Reply(502, body=b"Bad Gateway")], True, None),
    ("503-retryable-then-ready", [Reply(503, BUSY)], True, None),
    ("504-then-ready", [Reply(504, {"detail": "startup deadline"})], True, None),
    (
        "429-retry-after-then-ready",
        [Reply(429, {"detail": "slow"}, headers={"Retry-After": "1"})],
        True,
        None,
    ),
    ("429-no-retry-after-then-ready", [Reply(429, {"detail": "slow"})], True, None),
    ("reset-then-ready", [Reply(reset=True), Reply(reset=True)], True, None),
    ("slow-read-then-ready", [Reply(200, session(SID), delay=2.0)], True, None),
    ("unknown-status-then-ready", [Reply(200, session(SID, status="warming-up"))], True, None),
    (
        "created-retry-running",
        [created(), Reply(200, session(SID, status="retry")), created()],
        True,
        None,
    ),
    (
        "created-failed",
        [created(), Reply(200, session(SID, status="failed"))],
        False,
        SessionEndedError,
    ),
    ("500-forever", [Reply(500, {"error": "Unexpected error: boom"})], False, SessionNotReadyError),
    ("503-forever", [Reply(503, BUSY)], False, SessionNotReadyError),
    (
        "429-retry-after-30-forever",
        [Reply(429, {"detail": "x"}, headers={"Retry-After": "30"})],
        False,
        SessionNotReadyError,
    ),
    ("reset-forever", [Reply(reset=True)], False, SessionNotReadyError),
    ("slow-read-forever", [Reply(200, session(SID), delay=10.0)], False, SessionNotReadyError),
    (
        "running-without-address-forever",
        [Reply(200, session(SID, status="running", started_at=session()["created_at"]))],
        False,
        SessionNotReadyError,
    ),
    ("invalid-json", [Reply(200, body=b"{not json")], False, APIError),
    (
        "missing-required-fields",
        [Reply(200, {"browser_session_id": SID, "status": "running"})],
        False,
        APIError,
    ),
    (
        "403-invalid-credentials",
        [Reply(403, {"detail": "Invalid credentials"})],
        False,
        AuthenticationError,
    ),
    (
        "404-not-found",
        [Reply(404, {"detail": f"Browser session {SID} not found"})],
        False,
        SessionNotFoundError,
    ),
    ("404-empty-body", [Reply(404, body=b"")], False, SessionNotFoundError),
]


@pytest.mark.parametrize(
    ("replies", "recovers", "error"),
    [pytest.param(r, ok, e, id=case) for case, r, ok, e in API_FAULTS],
)
async def test_api_fault(
    request: pytest.FixtureRequest,
    scripted: ScriptedAPI,
    chromium_address: str,
    replies: list[Reply],
    recovers: bool,
    error: type[Exception] | None,
) -> None:
    ready = Reply(200, session(SID, ready=True, browser_address=chromium_address))
    scripted.script("GET", PATH, *replies, *([ready] if recovers else []))
    case = request.node.callspec.id
    client = AsyncSkyvernClient(KEY, scripted.base_url, read_timeout=0.5)
    started = time.monotonic()
    outcome: BaseException | None = None
    try:
        async with async_api.connect(SID, client=client, timeout=DEADLINE) as browser:
            assert browser.is_connected()
    except SkyvernCDPError as exc:
        outcome = exc
    finally:
        await client.aclose()
    elapsed = time.monotonic() - started
    ok = (outcome is None) if recovers else isinstance(outcome, error or ())
    record(case, ok and elapsed <= DEADLINE + SLACK, elapsed, DEADLINE)
    if recovers:
        assert outcome is None, f"{case} should recover, got {outcome!r}"
    else:
        assert isinstance(outcome, error or ()), f"{case}: expected {error}, got {outcome!r}"
    assert elapsed <= DEADLINE + SLACK, f"{case} took {elapsed:.2f}s"
    assert KEY not in str(outcome) and KEY not in repr(outcome)
    if case.startswith("429-retry-after-then"):
        gets = [r.at for r in scripted.requests]
        assert gets[1] - gets[0] >= 0.95, "Retry-After honoured"


CDP_FAULTS = [
    ("refuse-first-3", 3, "reset", True),
    ("hang-first-1", 1, "hang", True),
    ("hang-forever", 10**6, "hang", False),
    ("refuse-forever", 10**6, "reset", False),
]


@pytest.mark.parametrize(
    ("failures", "mode", "recovers"),
    [pytest.param(n, m, ok, id=case) for case, n, m, ok in CDP_FAULTS],
)
async def test_cdp_fault(
    request: pytest.FixtureRequest,
    scripted: ScriptedAPI,
    chromium_address: str,
    failures: int,
    mode: str,
    recovers: bool,
) -> None:
    rest = chromium_address.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    with FlakyProxy(int(hostport.rsplit(":", 1)[1]), failures=failures, mode=mode) as proxy:
        address = f"ws://127.0.0.1:{proxy.port}/{path}"
        scripted.script("GET", PATH, Reply(200, session(SID, ready=True, browser_address=address)))
        started = time.monotonic()
        outcome: BaseException | None = None
        try:
            browser = await async_api.connect(
                SID, base_url=scripted.base_url, timeout=DEADLINE, connect_attempt_timeout=0.5
            )
            await browser.close()
        except SkyvernCDPError as exc:
            outcome = exc
        elapsed = time.monotonic() - started
    ok = (outcome is None) == recovers and (recovers or isinstance(outcome, CDPConnectError))
    record(f"cdp-{request.node.callspec.id}", ok and elapsed <= DEADLINE + SLACK, elapsed, DEADLINE)
    assert ok, outcome
    assert elapsed <= DEADLINE + SLACK


# -- cancellation and interrupts ------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_backend() -> Iterator[LocalBackend]:
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS, ready_delay=(1.0, 1.0)) as local:
        yield local


async def cancel_when(task: asyncio.Future[Any], condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 15
    while not condition():
        assert time.monotonic() < deadline, "the phase was never reached"
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


def live_sessions(backend: LocalBackend) -> list[BrowserSessionResponse]:
    with SkyvernClient(base_url=backend.base_url) as api:
        return api.list_browser_sessions()


async def test_cancel_while_polling(slow_backend: LocalBackend) -> None:
    task = asyncio.ensure_future(async_api.launch(base_url=slow_backend.base_url, timeout=30))
    await cancel_when(task, lambda: bool(live_sessions(slow_backend)))
    assert not live_sessions(slow_backend), "the launched session was closed"
    assert driver_released()


async def test_cancel_while_connecting(scripted: ScriptedAPI, backend: LocalBackend) -> None:
    with FlakyProxy(9, failures=10**6, mode="hang") as proxy:
        address = f"ws://127.0.0.1:{proxy.port}/devtools/browser/x"
        scripted.script("GET", PATH, Reply(200, session(SID, ready=True, browser_address=address)))
        task = asyncio.ensure_future(async_api.connect(SID, base_url=scripted.base_url, timeout=30))
        await cancel_when(task, lambda: proxy.connections > 0)
    assert driver_released()


async def test_cancel_while_in_use_and_during_teardown(backend: LocalBackend) -> None:
    in_use = asyncio.Event()

    async def work() -> None:
        async with async_api.launch(base_url=backend.base_url, timeout=30) as browser:
            page = await async_api.default_page(browser)
            in_use.set()
            await page.wait_for_timeout(60_000)

    task = asyncio.ensure_future(work())
    await cancel_when(task, in_use.is_set)
    assert len(live_sessions(backend)) == 1, "only the shared session is left"
    assert driver_released()

    # cancelled again while closing: the teardown is shielded and still completes
    browser = await async_api.launch(base_url=backend.base_url, timeout=30)
    closing = asyncio.ensure_future(browser.close())
    await asyncio.sleep(0)
    closing.cancel()
    with pytest.raises(asyncio.CancelledError):
        await closing
    assert await asyncio.to_thread(wait_for, lambda: len(live_sessions(backend)) == 1, 10)
    assert driver_released()
    await browser.close()  # idempotent after a cancelled close


# -- secrets --------------------------------------------------------------------------------


async def test_no_secret_in_logs_errors_or_reprs(
    scripted: ScriptedAPI, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    with HeaderRecorder(host="127.0.0.2") as recorder:
        address = f"ws://127.0.0.2:{recorder.port}/devtools/browser/b?token={TOKEN}#frag"
        ready = session(SID, ready=True, browser_address=address)
        paths: list[list[Reply]] = [
            [Reply(403, {"detail": "Invalid credentials"})],
            [Reply(404, body=b"")],
            [Reply(503, BUSY), Reply(200, ready)],  # then the CDP attempts fail until the deadline
            [Reply(200, {**ready, "status": "failed"})],
            [Reply(200, body=f"oops {KEY} {TOKEN}".encode())],
        ]
        for replies in paths:
            scripted.script("GET", PATH, *replies)
            with pytest.raises(SkyvernCDPError) as info:
                await async_api.connect(SID, base_url=scripted.base_url, api_key=KEY, timeout=1.5)
            texts += [str(info.value), repr(info.value)]
            if isinstance(info.value, SessionEndedError) and info.value.session:
                texts.append(repr(info.value.session))
        # A foreign host (this machine has none: loopback is one host for the key rule) is
        # dialled without the key, and that is logged, without secrets.
        foreign = session(SID, ready=True, browser_address=f"wss://cdp.elsewhere.example/b?t={TOKEN}")
        dial_target(
            BrowserSessionResponse.model_validate(foreign),
            resolve_settings(api_key=KEY, base_url=scripted.base_url),
            AttachOptions.check(timeout=1, connect_attempt_timeout=1, close_timeout=1,
                                playwright_options={}),
        )
    texts += [r.getMessage() for r in caplog.records]
    texts.append(caplog.text)
    assert any("not sending the API key" in t for t in texts), "the foreign host was noted"
    for text in texts:
        assert KEY not in text, text
        assert TOKEN not in text, text
    assert all(h.get("x-api-key") == KEY for h in recorder.seen), "127.0.0.2 is the API's host"


# -- leaks over many cycles ----------------------------------------------------------------


async def test_repeated_attach_cycles_leak_nothing(backend: LocalBackend) -> None:
    psutil = pytest.importorskip("psutil")
    me = psutil.Process()
    with SkyvernClient(base_url=backend.base_url) as api:
        sid = api.create_browser_session().browser_session_id
        api.wait_for_browser_session(sid, timeout=30)
        try:

            async def cycle() -> None:
                browser = await async_api.connect(sid, base_url=backend.base_url, timeout=30)
                await browser.close()

            await cycle()
            fds_before, kids_before = me.num_fds(), len(me.children(recursive=True))
            for _ in range(15):
                await cycle()
            assert me.num_fds() <= fds_before + 3
            assert len(me.children(recursive=True)) <= kids_before
        finally:
            api.close_browser_session(sid)


async def test_no_secret_in_traceback_locals(scripted: ScriptedAPI) -> None:
    """``pytest --showlocals``, Sentry and rich print every frame's locals: none shows the key."""
    import traceback

    with HeaderRecorder() as recorder:
        address = f"ws://127.0.0.1:{recorder.port}/devtools/browser/b?token={TOKEN}"
        scripted.script("GET", PATH, Reply(200, session(SID, ready=True, browser_address=address)))
        with pytest.raises(CDPConnectError) as info:
            await async_api.connect(SID, base_url=scripted.base_url, api_key=KEY, timeout=1.0)
    assert any("x-api-key" in h for h in recorder.seen), "the key did go to the API's own host"
    shown = []
    for frame, _ in traceback.walk_tb(info.value.__traceback__):
        shown += [f"{name}={value!r}" for name, value in frame.f_locals.items()]
    assert shown
    assert not [text for text in shown if KEY in text]
