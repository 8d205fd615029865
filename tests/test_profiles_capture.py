"""Capturing a profile and launching from it, in both shells, on the local backend with a real
Chromium: the login is kept, a taken name is a clear choice, bad input fails before any
request, and an error or an interrupt during a capture closes what it opened."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from pages import serve_html

from skyvern_cdp import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    ProfileExistsError,
    ProfileNotFoundError,
    SkyvernClient,
    async_api,
    sync_api,
)
from skyvern_cdp.local import LocalBackend

from conftest import wait_for
from scripted_api import ScriptedAPI

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve_html(b"<title>site</title>") as url:
        yield url


@pytest.fixture
def client(backend: LocalBackend) -> Iterator[SkyvernClient]:
    with SkyvernClient(backend.api_key, backend.base_url) as made:
        yield made


def _name() -> str:
    return f"login-{uuid.uuid4().hex[:8]}"


def _live(client: SkyvernClient) -> list[str]:
    return [s.browser_session_id for s in client.list_browser_sessions()]


SET = "v => { document.cookie = 'who=' + v + '; max-age=3600; path=/';" \
    " localStorage.setItem('who', v); }"
GET = "() => [document.cookie, localStorage.getItem('who')]"


def test_sync_capture_then_launch_by_name(client: SkyvernClient, site: str) -> None:
    name = _name()
    capture = sync_api.capture_profile(name, client=client, timeout=120, description="d")
    with capture as browser:
        assert capture.app_url is not None
        # log in by hand there (a keyed backend adds the view's ?token=)
        assert capture.app_url.partition("?")[0].endswith(f"/sessions/{capture.session_id}")
        page = sync_api.default_page(browser)
        page.goto(site)
        page.evaluate(SET, "alice")
    assert capture.profile is not None
    assert capture.profile.name == name
    assert capture.profile.description == "d"
    assert _live(client) == []
    with sync_api.launch(client=client, timeout=60, browser_profile=name) as browser:
        page = sync_api.default_page(browser)
        page.goto(site)
        cookie, stored = page.evaluate(GET)
        assert sync_api.session_of(browser).browser_profile_id == capture.profile.browser_profile_id
    assert "who=alice" in cookie
    assert stored == "alice"

    # The name is taken: refused before anything is launched ...
    with (
        pytest.raises(ProfileExistsError, match="replace=True"),
        sync_api.capture_profile(name, client=client, timeout=60),
    ):
        pytest.fail("a capture of a taken name must not launch")
    assert _live(client) == []
    # ... unless replaced: a new profile, the old one gone.
    def log_in(browser: Any) -> None:
        page = sync_api.default_page(browser)
        page.goto(site)
        page.evaluate(SET, "bob")

    new = sync_api.capture_profile(name, client=client, timeout=120, replace=True, login=log_in)
    made = new.run()
    assert made.browser_profile_id != capture.profile.browser_profile_id
    with pytest.raises(ProfileNotFoundError):
        client.get_browser_profile(capture.profile.browser_profile_id)
    assert client.resolve_browser_profile(name) == made.browser_profile_id
    client.delete_browser_profile(made.browser_profile_id)


async def test_async_capture_with_login_then_launch(backend: LocalBackend, site: str) -> None:
    name = _name()

    async def log_in(browser: Any) -> None:
        page = await async_api.default_page(browser)
        await page.goto(site)
        await page.evaluate(SET, "carol")

    async with async_api.AsyncSkyvernClient(backend.api_key, backend.base_url) as aclient:
        made = await async_api.capture_profile(name, client=aclient, timeout=120, login=log_in)
        async with async_api.launch(
            client=aclient, timeout=60, browser_profile=made.browser_profile_id
        ) as browser:
            page = await async_api.default_page(browser)
            await page.goto(site)
            cookie, stored = await page.evaluate(GET)
        assert "who=carol" in cookie
        assert stored == "carol"
        with pytest.raises(ProfileNotFoundError, match="no browser profile is named"):
            await async_api.launch(client=aclient, timeout=30, browser_profile=name + "-nope")
        await aclient.delete_browser_profile(made.browser_profile_id)
        assert await aclient.list_browser_sessions() == []


def test_an_error_in_the_block_closes_the_session_and_saves_nothing(
    client: SkyvernClient,
) -> None:
    name = _name()
    capture = sync_api.capture_profile(name, client=client, timeout=60)
    with pytest.raises(RuntimeError, match="login failed"), capture:
        assert _live(client) == [capture.session_id]
        raise RuntimeError("login failed")
    assert _live(client) == []
    assert capture.profile is None
    assert client.find_browser_profile(name) is None


def test_system_exit_in_the_block_closes_the_session(client: SkyvernClient) -> None:
    """A service's SIGTERM handler calls sys.exit: the capture ends its session all the same."""
    name = _name()
    capture = sync_api.capture_profile(name, client=client, timeout=60)
    with pytest.raises(SystemExit), capture:
        assert _live(client) == [capture.session_id]
        raise SystemExit(143)
    assert _live(client) == []
    assert client.find_browser_profile(name) is None


async def test_a_cancelled_capture_closes_its_session(backend: LocalBackend) -> None:
    name = _name()
    inside = asyncio.Event()
    async with async_api.AsyncSkyvernClient(backend.api_key, backend.base_url) as aclient:

        async def capture() -> None:
            async with async_api.capture_profile(name, client=aclient, timeout=60):
                inside.set()
                await asyncio.sleep(60)

        task = asyncio.ensure_future(capture())
        await asyncio.wait_for(inside.wait(), 60)
        assert len(await aclient.list_browser_sessions()) == 1
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await aclient.list_browser_sessions() == []
        assert await aclient.find_browser_profile(name) is None


def test_unknown_profile_name_on_launch_creates_nothing(client: SkyvernClient) -> None:
    with pytest.raises(ProfileNotFoundError, match="'nobody-here'"):
        sync_api.launch(client=client, timeout=30, browser_profile="nobody-here")
    assert _live(client) == []


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"name": ""}, InvalidArgumentError),
        ({"name": "bp_not_a_name"}, InvalidArgumentError),
        ({"name": 7}, InvalidArgumentTypeError),
        ({"name": "ok", "replace": "yes"}, InvalidArgumentTypeError),
        ({"name": "ok", "timeout": -1}, InvalidArgumentError),
        ({"name": "ok", "generate_browser_profile": False}, InvalidArgumentError),
        ({"name": "ok", "urll": "https://typo"}, InvalidArgumentError),
        ({"name": "ok", "session_timeout_minutes": 1}, InvalidArgumentError),
    ],
)
def test_bad_capture_input_fails_before_any_request(
    kwargs: dict[str, Any], error: type[Exception]
) -> None:
    with ScriptedAPI() as api:
        with pytest.raises(error):
            sync_api.capture_profile(base_url=api.base_url, api_key="k", **kwargs)
        with pytest.raises(error):
            async_api.capture_profile(base_url=api.base_url, api_key="k", **kwargs)
        for bad in ("", "bp_", "bp_a/b", 3):
            with pytest.raises(InvalidArgumentError):
                sync_api.launch(base_url=api.base_url, api_key="k", browser_profile=bad)
            with pytest.raises(InvalidArgumentError):
                async_api.launch(base_url=api.base_url, api_key="k", browser_profile=bad)
        with pytest.raises(InvalidArgumentError, match="not both"):
            sync_api.launch(
                base_url=api.base_url, api_key="k", browser_profile="x", browser_profile_id="bp_1"
            )
        assert api.requests == []


CAPTURE_SCRIPT = """
import sys, time
from skyvern_cdp import sync_api
try:
    with sync_api.capture_profile(sys.argv[2], base_url=sys.argv[1], timeout=120) as browser:
        print(sync_api.session_of(browser).browser_session_id, flush=True)
        time.sleep(120)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    raise SystemExit(130)
"""


def test_ctrl_c_during_a_capture_closes_the_session(
    backend: LocalBackend, client: SkyvernClient
) -> None:
    name = _name()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYVERN_", "PYTEST_"))}
    env["SKYVERN_API_KEY"] = backend.api_key or ""
    with subprocess.Popen(
        [sys.executable, "-c", CAPTURE_SCRIPT, backend.base_url, name],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as child:
        try:
            assert child.stdout is not None
            sid = child.stdout.readline().strip()
            assert sid.startswith("pbs_"), child.stderr.read() if child.stderr else ""
            assert _live(client) == [sid]
            child.send_signal(signal.SIGINT)  # a real Ctrl-C while the user logs in
            out, err = child.communicate(timeout=60)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
    assert child.returncode == 130, (out, err)
    assert wait_for(lambda: _live(client) == [], timeout=10)
    assert client.get_browser_session(sid).status == "completed"
    assert client.find_browser_profile(name) is None


async def test_notebook_launch_takes_a_profile_name(backend: LocalBackend) -> None:
    from skyvern_cdp import notebook

    name = _name()
    async with async_api.AsyncSkyvernClient(backend.api_key, backend.base_url) as aclient:
        pid = (await aclient.create_browser_profile(name)).browser_profile_id
        try:
            browser = await notebook.launch(client=aclient, timeout=60, browser_profile=name)
            try:
                assert async_api.session_of(browser).browser_profile_id == pid
            finally:
                await notebook.close(browser)
            assert await aclient.list_browser_sessions() == []
        finally:
            await aclient.delete_browser_profile(pid)


def test_a_login_past_the_deadline_closes_and_says_how_to_save_it_later(
    client: SkyvernClient, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from skyvern_cdp import ProfileUploadPendingError
    from skyvern_cdp.local.profiles import SessionProfiles

    # The server's save is held back until the test lets it go (it follows the close).
    released = threading.Event()
    original = SessionProfiles._save_blocking

    def held(self: SessionProfiles, *args: Any) -> None:
        released.wait(60)
        original(self, *args)

    monkeypatch.setattr(SessionProfiles, "_save_blocking", held)
    name = _name()
    capture = sync_api.capture_profile(name, client=client, timeout=8)
    try:
        with pytest.raises(ProfileUploadPendingError, match="profile create") as info, capture as b:
            page = sync_api.default_page(b)
            page.goto(site)
            page.evaluate(SET, "late")
            # The login outlasts the capture's one deadline (a person typing slowly).
            assert wait_for(lambda: capture._deadline is not None and capture._deadline.expired, 30)
    finally:
        released.set()
    assert capture.session_id is not None
    assert capture.session_id in str(info.value)
    assert _live(client) == []  # the session was closed all the same
    # ... and its saved state can still become the profile, as the message says.
    made = client.create_browser_profile(name, browser_session_id=capture.session_id, timeout=30)
    client.delete_browser_profile(made.browser_profile_id)


def test_a_browser_that_dies_during_the_login_fails_the_capture_at_once(
    backend: LocalBackend, client: SkyvernClient
) -> None:
    import time

    import psutil

    from skyvern_cdp import SessionEndedError

    name = _name()
    capture = sync_api.capture_profile(name, client=client, timeout=300)
    started = 0.0
    with pytest.raises(SessionEndedError, match="capture it again"), capture:
        assert capture.session_id is not None
        pid = backend.chromium_pid(capture.session_id)
        assert pid is not None
        psutil.Process(pid).kill()  # the browser crashes while the user logs in
        assert wait_for(
            lambda: client.get_browser_session(str(capture.session_id)).status == "failed", 30
        )
        started = time.monotonic()
    assert time.monotonic() - started < 30  # not the 300 s deadline: nothing will be saved
    assert _live(client) == []
    assert client.find_browser_profile(name) is None
