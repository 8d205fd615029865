"""Bad input at every public entry point is refused before any request; interrupts in the
sync API leave nothing running; the local backend under concurrent load."""

from __future__ import annotations

import asyncio
import math
import signal
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from faults import FlakyProxy

from skyvern_cdp import (
    AsyncSkyvernClient,
    InsecureTransportError,
    InvalidArgumentError,
    SkyvernClient,
    async_api,
    sync_api,
)
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

from conftest import wait_for
from scripted_api import Reply, ScriptedAPI, session

KEY = "sk-BADINPUT-recognisable-key-1234"
SID = "pbs_fault"
PATH = f"/v1/browser_sessions/{SID}"


@pytest.fixture
def scripted() -> Iterator[ScriptedAPI]:
    with ScriptedAPI() as server:
        yield server


@pytest.fixture(scope="module")
def backend() -> Iterator[LocalBackend]:
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS) as local:
        yield local


def live_count(backend: LocalBackend) -> int:
    with SkyvernClient(base_url=backend.base_url) as api:
        return len(api.list_browser_sessions())


# -- bad input at every public entry point --------------------------------------------------

BAD_IDS = ["", None, "abc", "pbs_../x", "pbs_" + "x" * 10_000, "pbs_ünï", "pbs_a\nb"]
BAD_TIMEOUTS = [-1.0, math.nan, math.inf, 0, "10"]
BAD_URLS = ["api.skyvern.com", "file:///etc/passwd", "", "ftp://x", "http://[::1", "http://a b",
            "http://[not-ip]:8000", "http://a\x85b"]


def entry_points(base_url: str) -> dict[str, Callable[..., Any]]:
    """Each public entry point as ``f(session_id=..., timeout=..., base_url=...)``."""

    def sync_client(method: str) -> Callable[..., Any]:
        def run(session_id: Any = "pbs_ok", timeout: Any = 5.0, base_url: Any = base_url) -> Any:
            with SkyvernClient(KEY, base_url) as client:
                return getattr(client, method)(session_id, timeout=timeout)

        return run

    def async_client(method: str) -> Callable[..., Any]:
        def run(session_id: Any = "pbs_ok", timeout: Any = 5.0, base_url: Any = base_url) -> Any:
            async def go() -> Any:
                async with AsyncSkyvernClient(KEY, base_url) as client:
                    return await getattr(client, method)(session_id, timeout=timeout)

            return asyncio.run(go())

        return run

    def async_connect(
        session_id: Any = "pbs_ok", timeout: Any = 5.0, base_url: Any = base_url
    ) -> Any:
        async def go() -> Any:
            return await async_api.connect(
                session_id, base_url=base_url, api_key=KEY, timeout=timeout
            )

        return asyncio.run(go())

    def sync_connect(
        session_id: Any = "pbs_ok", timeout: Any = 5.0, base_url: Any = base_url
    ) -> Any:
        return sync_api.connect(session_id, base_url=base_url, api_key=KEY, timeout=timeout)

    return {
        "SkyvernClient.get": sync_client("get_browser_session"),
        "SkyvernClient.wait": sync_client("wait_for_browser_session"),
        "SkyvernClient.close": sync_client("close_browser_session"),
        "AsyncSkyvernClient.get": async_client("get_browser_session"),
        "AsyncSkyvernClient.wait": async_client("wait_for_browser_session"),
        "async_api.connect": async_connect,
        "sync_api.connect": sync_connect,
    }


ENTRY_NAMES = list(entry_points("http://x").keys())


@pytest.mark.parametrize("entry", ENTRY_NAMES)
@pytest.mark.parametrize("bad", BAD_IDS, ids=lambda v: repr(v)[:12])
def test_bad_ids_everywhere(scripted: ScriptedAPI, entry: str, bad: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        entry_points(scripted.base_url)[entry](session_id=bad)
    assert not scripted.requests


#: ``timeout=None`` means "the default deadline" for single requests; waits and connects
#: take a number only.
NONE_REFUSED = [name for name in ENTRY_NAMES if not name.endswith(("get", "close"))]


@pytest.mark.parametrize(
    ("entry", "bad"),
    [(e, b) for e in ENTRY_NAMES for b in BAD_TIMEOUTS] + [(e, None) for e in NONE_REFUSED],
    ids=lambda v: v if isinstance(v, str) and v.startswith(("S", "A", "a", "s")) else repr(v),
)
def test_bad_timeouts_everywhere(scripted: ScriptedAPI, entry: str, bad: Any) -> None:
    with pytest.raises(InvalidArgumentError):
        entry_points(scripted.base_url)[entry](timeout=bad)
    assert not scripted.requests


@pytest.mark.parametrize("entry", ENTRY_NAMES)
@pytest.mark.parametrize("bad", BAD_URLS)
def test_bad_base_urls_everywhere(entry: str, bad: str) -> None:
    """Before: ``http://[::1`` was urlsplit's plain ValueError, ``http://a b`` (a key, plain
    http, a "host" that is no host) an InsecureTransportError: bad input, typed as such."""
    with pytest.raises(InvalidArgumentError) as info:
        entry_points(bad)[entry]()
    assert not isinstance(info.value, InsecureTransportError)


@pytest.mark.parametrize("bad", ["http://[::1", "http://a b", "http://[::1]x:8000"])
@pytest.mark.parametrize("api", ["async", "sync"])
def test_bad_base_urls_of_launch(api: str, bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="base_url") as info:
        if api == "sync":
            sync_api.launch(base_url=bad, api_key=KEY, timeout=5)
        else:
            asyncio.run(async_api.launch(base_url=bad, api_key=KEY, timeout=5))
    assert not isinstance(info.value, InsecureTransportError)


@pytest.mark.parametrize(
    "call",
    [
        lambda: async_api.launch(session_timeout_minutes=1),
        lambda: async_api.launch(session_timeout_minutes="ten"),  # type: ignore[arg-type]
        lambda: async_api.launch(timeout=math.nan),
        lambda: async_api.launch(bogus_field=1),  # type: ignore[call-arg]
        lambda: async_api.launch(playwright_options="slow"),  # type: ignore[arg-type]
        lambda: sync_api.launch(browser_type="netscape"),  # type: ignore[arg-type]
        lambda: sync_api.launch(timeout=-1),
        lambda: async_api.connect("pbs_ok", trusted_hosts="evil.com"),  # type: ignore[arg-type]
        lambda: async_api.connect("pbs_ok", connect_attempt_timeout=0),
        lambda: async_api.connect("pbs_ok", timeout=10, endpoint_url="ws://x"),
        lambda: async_api.connect("pbs_ok", close_timeout=math.inf),
        lambda: sync_api.connect("pbs_ok", api_key=""),
    ],
    ids=[
        "minutes<5",
        "minutes-str",
        "nan",
        "unknown-field",
        "options-type",
        "browser-type",
        "negative",
        "trusted-str",
        "attempt-0",
        "reserved-option",
        "close-inf",
        "empty-key",
    ],
)
def test_bad_launch_and_connect_arguments(call: Callable[[], Awaitable[Any] | Any]) -> None:
    with pytest.raises(InvalidArgumentError):
        call()


def test_keyboard_interrupt_while_connecting(scripted: ScriptedAPI) -> None:
    with FlakyProxy(9, failures=10**6, mode="hang") as proxy:
        address = f"ws://127.0.0.1:{proxy.port}/devtools/browser/x"
        scripted.script("GET", PATH, Reply(200, session(SID, ready=True, browser_address=address)))
        main = threading.get_ident()

        def interrupt_once_dialled() -> None:
            if wait_for(lambda: proxy.connections > 0, 15):
                signal.pthread_kill(main, signal.SIGINT)

        threading.Thread(target=interrupt_once_dialled, daemon=True).start()
        with pytest.raises(KeyboardInterrupt):
            sync_api.connect(SID, base_url=scripted.base_url, timeout=30)
    assert not sync_api.driver_stats().running


def test_keyboard_interrupt_in_use_closes_a_launched_session(backend: LocalBackend) -> None:
    with pytest.raises(KeyboardInterrupt), sync_api.launch(base_url=backend.base_url, timeout=30):
        raise KeyboardInterrupt
    assert live_count(backend) == 0
    assert not sync_api.driver_stats().running


# -- the local backend under load ----------------------------------------------------------


def test_backend_under_concurrent_creates_and_shutdown() -> None:
    psutil = pytest.importorskip("psutil")
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS, max_sessions=4) as local:

        def create() -> int:
            return httpx.post(
                f"{local.base_url}/v1/browser_sessions", json={}, timeout=30
            ).status_code

        results: list[int] = []
        threads = [threading.Thread(target=lambda: results.append(create())) for _ in range(16)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sorted(results) == [200] * 4 + [429] * 12
        assert wait_for(lambda: len(local.live_chromium_pids()) == 4, 30)
        pids = local.live_chromium_pids()
        root = local.root
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie" for pid in pids
    )
    assert root is None or not root.exists()


def test_the_key_is_refused_over_plain_http_to_a_remote_host() -> None:
    with pytest.raises(InsecureTransportError):
        sync_api.connect("pbs_x", base_url="http://skyvern.example.com", api_key=KEY)
    with pytest.raises(InsecureTransportError):
        async_api.connect("pbs_x", base_url="http://skyvern.example.com", api_key=KEY)
