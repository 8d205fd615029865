"""Keep-alive end to end: a LocalBackend whose minutes last 0.6 s, real Chromium.

A 5-minute session lives 3 s here; kept alive, it outlives several lifetimes through the
async, sync and notebook entry points, stops being extended once its Browser closes, and
never goes past the 360-minute cap. The Playwright driver is started before the session is
created, so that attaching (which the first lifetime must cover) is only the CDP dial.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from playwright.async_api import async_playwright
from playwright.sync_api import sync_playwright

from skyvern_cdp import InvalidArgumentTypeError, SkyvernClient, async_api, notebook, sync_api
from skyvern_cdp.config import resolve_settings
from skyvern_cdp.keeper import AsyncKeeper, keeper_of
from skyvern_cdp.keeper_thread import thread_keeper_of
from skyvern_cdp.lifetime import KeepAlive
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

from conftest import wait_for
from scripted_api import Reply, ScriptedAPI, session

pytestmark = pytest.mark.browser

MINUTE = 0.6  # wall seconds per session-minute
LIFETIME = 5 * MINUTE  # a 5-minute session
KEY = "sk-keep-alive"
#: Extend with 4 session-minutes left, by 5 minutes (one whole lifetime) each time. The
#: margin is most of the first lifetime: a dial on a loaded machine can take a second.
POLICY = KeepAlive(margin=4 * MINUTE, extend_minutes=5, max_interval=LIFETIME)


def outlived(started: float, keeper: Any) -> Callable[[], bool]:
    """Two whole lifetimes have passed since ``started``, and it was extended since."""
    return lambda: time.monotonic() - started > 2 * LIFETIME and keeper.extensions >= 2


@pytest.fixture(scope="module")
def fast(long_lived_pids: set[int]) -> Iterator[LocalBackend]:
    with LocalBackend(api_key=KEY, minute_seconds=MINUTE, chromium_args=CLOSED_NETWORK_ARGS) as b:
        pid = b.watchdog_pid
        if pid is not None:
            long_lived_pids.add(pid)
        try:
            yield b
        finally:
            long_lived_pids.discard(pid or -1)
    assert b.live_chromium_pids() == []


@pytest.fixture
def http(fast: LocalBackend) -> Iterator[SkyvernClient]:
    with SkyvernClient(KEY, fast.base_url) as client:
        yield client


def ready_session(http: SkyvernClient, minutes: int = 5) -> str:
    made = http.create_browser_session(session_timeout_minutes=minutes)
    http.wait_for_browser_session(made.browser_session_id, timeout=30)
    return made.browser_session_id


async def until(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        await asyncio.sleep(0.02)
    return True


def test_the_local_backend_sends_remaining_lifetime_seconds_in_real_seconds(
    http: SkyvernClient, check_session: Callable[[Any], Any]
) -> None:
    created = http.create_browser_session(session_timeout_minutes=5)
    sid = created.browser_session_id
    try:
        http.wait_for_browser_session(sid, timeout=30)
        import httpx

        body = check_session(
            httpx.get(
                f"{http.base_url}/v1/browser_sessions/{sid}", headers={"x-api-key": KEY}
            ).json()
        )
        assert 0 < body["remaining_lifetime_seconds"] <= LIFETIME  # 5 minutes of 0.6 s
        before = body["remaining_lifetime_seconds"]
        extended = http.extend_browser_session(sid, 10)
        after = extended.model_extra["remaining_lifetime_seconds"]
        assert extended.timeout == 15
        assert before + 10 * MINUTE - 1.0 < after <= before + 10 * MINUTE
    finally:
        http.close_browser_session(sid)
    assert http.get_browser_session(sid).model_extra["remaining_lifetime_seconds"] == 0


async def test_async_connect_keeps_the_session_alive_until_the_browser_closes(
    fast: LocalBackend, http: SkyvernClient
) -> None:
    async with async_playwright() as pw:
        sid = ready_session(http)
        started = time.monotonic()
        async with async_api.connect(
            sid, base_url=fast.base_url, api_key=KEY, keep_alive=POLICY, playwright=pw
        ) as browser:
            keeper = keeper_of(browser)
            assert keeper is not None
            assert await until(outlived(started, keeper), timeout=30)
            page = await async_api.default_page(browser)
            assert await page.evaluate("1 + 1") == 2  # the browser is still there
            assert keeper.running
    assert await until(lambda: not keeper.running, timeout=5)
    lifetime_at_close = http.get_browser_session(sid).timeout
    assert lifetime_at_close is not None and lifetime_at_close >= 5 + 2 * 5
    # Nothing extends it any more: it times out on its own, with the lifetime it had.
    assert wait_for(lambda: http.get_browser_session(sid).status == "timeout", timeout=15)
    assert http.get_browser_session(sid).timeout == lifetime_at_close


def test_sync_launch_keeps_the_session_alive_from_a_thread(
    fast: LocalBackend, http: SkyvernClient
) -> None:
    with sync_playwright() as pw:
        started = time.monotonic()
        browser = sync_api.launch(
            base_url=fast.base_url,
            api_key=KEY,
            session_timeout_minutes=5,
            keep_alive=POLICY,
            playwright=pw,
        )
        sid = sync_api.session_of(browser).browser_session_id
        keeper = thread_keeper_of(browser)
        assert keeper is not None
        try:
            assert wait_for(outlived(started, keeper), timeout=30)
            assert sync_api.default_page(browser).evaluate("1 + 1") == 2
            assert http.get_browser_session(sid).status == "running"
        finally:
            browser.close()
    assert not keeper.running  # close() stopped and joined the thread
    assert keeper.stopped_because == "the Browser was closed"
    assert http.get_browser_session(sid).status == "completed"


async def test_notebook_attach_keeps_alive_and_otherwise_gives_one_notice(
    fast: LocalBackend, http: SkyvernClient, capsys: pytest.CaptureFixture[str]
) -> None:
    pw = await async_playwright().start()
    # Any session here has less than 5 real minutes left; this one ends within the test.
    watched, kept = ready_session(http, minutes=10), ready_session(http)
    started = time.monotonic()
    try:
        browser = await notebook.attach(
            kept, base_url=fast.base_url, api_key=KEY, keep_alive=POLICY, playwright=pw
        )
        other = await notebook.attach(watched, base_url=fast.base_url, api_key=KEY, playwright=pw)
        keeper = notebook.keeper_of(browser)
        assert keeper is not None
        assert await until(outlived(started, keeper), timeout=30)
        assert browser.is_connected()
        # Without keep-alive: one line when less than 5 minutes are left, then it ends.
        assert await until(lambda: not other.is_connected(), timeout=15)
        lines = [line for line in capsys.readouterr().out.splitlines() if line]
        assert len(lines) == 1, lines
        assert lines[0].startswith(f"skyvern_cdp: session {watched} has less than 5 minutes left")
        assert http.get_browser_session(watched).status == "timeout"
        await notebook.close()
        assert await until(lambda: not keeper.running, timeout=5)
        assert keeper.stopped_because == "closed"
    finally:
        await notebook.close()
        await pw.stop()
        http.close_browser_session(kept)
        http.close_browser_session(watched)


async def test_the_cap_is_honoured_with_one_warning(
    fast: LocalBackend, http: SkyvernClient, caplog: pytest.LogCaptureFixture
) -> None:
    sid = ready_session(http, minutes=240)
    try:
        assert http.extend_browser_session(sid, 115).timeout == 355
        caplog.set_level(logging.INFO, logger="skyvern_cdp")
        browser = await async_api.connect(
            sid,
            base_url=fast.base_url,
            api_key=KEY,
            keep_alive=KeepAlive(margin=400 * MINUTE, extend_minutes=30),
        )
        try:
            keeper = keeper_of(browser)
            assert keeper is not None
            assert await until(lambda: not keeper.running, timeout=10)
            assert keeper.extensions == 1  # 5 of the 30 minutes asked for: the rest is capped
            assert http.get_browser_session(sid).timeout == 360
            assert "reached the 360-minute cap" in (keeper.stopped_because or "")
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert [r.getMessage() for r in warnings] == [keeper.stopped_because]
            assert browser.is_connected()  # the Browser is left alone
        finally:
            await browser.close()
    finally:
        http.close_browser_session(sid)


async def test_a_failing_extension_is_logged_and_retried_never_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sid = "pbs_failing1"
    with ScriptedAPI() as api:
        running = session(sid, ready=True, timeout=60, remaining_lifetime_seconds=0.3)
        api.script("GET", f"/v1/browser_sessions/{sid}", Reply(200, running))
        rejected = Reply(422, {"detail": [{"loc": ["body"], "msg": "nope", "type": "value"}]})
        granted = session(sid, ready=True, timeout=70, remaining_lifetime_seconds=900)
        api.script(
            "POST", f"/v1/browser_sessions/{sid}/extend", rejected, Reply(500), Reply(200, granted)
        )
        caplog.set_level(logging.INFO, logger="skyvern_cdp.keeper")
        settings = resolve_settings(api_key="sk-secret-value", base_url=api.base_url)
        keeper = AsyncKeeper(settings, sid, KeepAlive(margin=1.0, extend_minutes=10))
        keeper.start()
        try:
            assert await until(lambda: keeper.extensions >= 1, timeout=10)
            assert keeper.running  # it retried, and goes on
        finally:
            await keeper.stop()
    failed = [r.getMessage() for r in caplog.records if "extending" in r.getMessage()]
    assert len(failed) >= 1 and all("retrying in" in m for m in failed)
    assert all("sk-secret-value" not in r.getMessage() for r in caplog.records)
    assert not keeper.running and keeper.stopped_because == "stopped"


async def test_the_first_decision_uses_the_attach_answer_without_a_request() -> None:
    from skyvern_cdp.models import BrowserSessionResponse

    sid, path = "pbs_first1", "/v1/browser_sessions/pbs_first1"
    body = session(sid, ready=True, timeout=60, remaining_lifetime_seconds=3000)
    with ScriptedAPI() as api:
        api.script("GET", path, Reply(200, body))
        settings = resolve_settings(api_key="k", base_url=api.base_url)
        seen = BrowserSessionResponse.model_validate(body)
        keeper = AsyncKeeper(settings, sid, KeepAlive(), first=seen)
        keeper.start()
        try:
            assert await until(lambda: keeper.lifetime.ends_at is not None, timeout=5)
            assert keeper.running and api.count("GET", path) == 0  # next look in 5 minutes
        finally:
            await keeper.stop()
    assert not keeper.running


@pytest.mark.parametrize("bad", ["yes", 1, 0.5, object()])
async def test_bad_keep_alive_is_refused_before_any_request(bad: object) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="keep_alive must be a bool or a KeepAlive"):
        async_api.connect("pbs_123", api_key="k", keep_alive=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="keep_alive must be a bool or a KeepAlive"):
        async_api.launch(api_key="k", keep_alive=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="keep_alive must be a bool or a KeepAlive"):
        await notebook.attach("pbs_123", api_key="k", keep_alive=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="keep_alive must be a bool or a KeepAlive"):
        await notebook.launch(api_key="k", keep_alive=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["yes", 1])
def test_bad_keep_alive_is_refused_by_the_sync_api(bad: object) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="keep_alive must be a bool or a KeepAlive"):
        sync_api.connect("pbs_123", api_key="k", keep_alive=bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="keep_alive must be a bool or a KeepAlive"):
        sync_api.launch(api_key="k", keep_alive=bad)  # type: ignore[arg-type]


# -- the pytest plugin: a launched session outlives its timeout for the whole run ----------

PLUGIN_SUITE = '''
import time

def test_first(skyvern_page):
    skyvern_page.set_content("<h1>one</h1>")
    assert skyvern_page.inner_text("h1") == "one"

def test_longer_than_the_session_lives(skyvern_session):
    time.sleep(4.0)  # the session's whole lifetime is 3 s here

def test_after(skyvern_page, skyvern_browser, skyvern_session):
    assert skyvern_browser.is_connected()
    skyvern_page.set_content("<h1>two</h1>")
    assert skyvern_page.inner_text("h1") == "two"
    print("SESSION", skyvern_session.browser_session_id)
'''


def test_the_plugin_keeps_a_launched_session_alive_for_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, long_lived_pids: set[int]
) -> None:
    for name in list(os.environ):
        if name.startswith(("SKYVERN_", "PYTEST_XDIST")):
            monkeypatch.delenv(name)
    # 60 minutes (the default lifetime of a launched session) last 3 s on this backend.
    with LocalBackend(api_key=KEY, minute_seconds=0.05, chromium_args=CLOSED_NETWORK_ARGS) as b:
        long_lived_pids.add(b.watchdog_pid or -1)
        try:
            monkeypatch.setenv("SKYVERN_BASE_URL", b.base_url)
            monkeypatch.setenv("SKYVERN_API_KEY", KEY)
            pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
            pytester.makepyfile(test_suite=PLUGIN_SUITE)
            result = pytester.runpytest_subprocess(
                "-p", "no:cacheprovider", "-s", "--skyvern-launch",
                "--skyvern-keep-alive-margin", "2", timeout=120,
            )
            assert result.ret == 0, result.stdout.str()[-3000:]
            result.assert_outcomes(passed=3)
            [sid] = re.findall(r"SESSION (pbs_\w+)", result.stdout.str())
            with SkyvernClient(KEY, b.base_url) as client:
                ended = client.get_browser_session(sid)
            assert ended.status == "completed"  # closed at the end of the run, not timed out
            assert ended.timeout is not None and ended.timeout > 60  # it was extended
        finally:
            long_lived_pids.discard(b.watchdog_pid or -1)
    assert b.live_chromium_pids() == []
