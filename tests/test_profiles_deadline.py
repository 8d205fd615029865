"""One deadline bounds every byte of the browser-profile entry points too: each ends within
about half a second of its ``timeout`` against a server that drips its answers one byte at a
time (the profile calls of both clients, ``launch(browser_profile=name)`` in both shells,
``notebook.launch``, ``capture_profile`` in both shells, the CLI and the relay)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timezone
from typing import Any

import pytest

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

from scripted_api import Reply, ScriptedAPI

KEY = "sk-profile-deadline"
T = 1.5
SLACK = 0.5
DRIP = 0.02
P = "/v1/browser_profiles"
NOW = datetime.now(timezone.utc).isoformat()
BODY = {"browser_profile_id": "bp_1", "name": "crm", "created_at": NOW, "modified_at": NOW}


@pytest.fixture
def api() -> Iterator[ScriptedAPI]:
    with ScriptedAPI() as server:
        for method, path, body in (
            ("POST", P, BODY),
            ("GET", P + "?page=1&page_size=10", [BODY]),
            ("GET", P + "?page=1&page_size=50", [BODY]),
            ("GET", P + "?page=1&page_size=100&search_key=crm", [BODY]),
            ("GET", P + "/bp_1", BODY),
            ("DELETE", P + "/bp_1", BODY),  # dripped: long enough to outlast T
        ):
            server.script(method, path, Reply(200, body, drip=DRIP))
        yield server


def _within(case: str, started: float, api: ScriptedAPI) -> None:
    took = time.monotonic() - started
    assert api.dripped > 0, f"{case}: the server never dripped"
    assert took <= T + SLACK, f"{case} took {took:.2f}s with timeout={T}"


def _c(url: str) -> SkyvernClient:
    return SkyvernClient(KEY, url)


SYNC: dict[str, Callable[[str], object]] = {
    "create": lambda u: _c(u).create_browser_profile("crm", timeout=T),
    "list": lambda u: _c(u).list_browser_profiles(timeout=T),
    "get": lambda u: _c(u).get_browser_profile("bp_1", timeout=T),
    "delete": lambda u: _c(u).delete_browser_profile("bp_1", timeout=T),
    "resolve": lambda u: _c(u).resolve_browser_profile("crm", timeout=T),
    "sync_api.launch(browser_profile=name)": lambda u: sync_api.launch(
        api_key=KEY, base_url=u, timeout=T, browser_profile="crm"
    ),
    "sync_api.capture_profile": lambda u: sync_api.capture_profile(
        "crm", api_key=KEY, base_url=u, timeout=T
    ).__enter__(),
}

CLI: dict[str, list[str]] = {
    "profile list": ["profile", "list", "--timeout", str(T)],
    "profile get": ["profile", "get", "bp_1", "--timeout", str(T)],
    "profile create": ["profile", "create", "crm", "--timeout", str(T)],
    "profile delete": ["profile", "delete", "bp_1", "--timeout", str(T)],
    "launch --profile": ["launch", "--profile", "crm", "--ready-timeout", str(T)],
    "relay --launch --profile": [
        "relay", "--launch", "--profile", "crm", "--port", "0", "--ready-timeout", str(T)
    ],
}


@pytest.mark.parametrize("case", SYNC)
def test_sync_profile_entry_points_end_at_their_deadline(case: str, api: ScriptedAPI) -> None:
    started = time.monotonic()
    with pytest.raises(SkyvernCDPError):
        SYNC[case](api.base_url)
    _within(case, started, api)


@pytest.mark.parametrize("case", CLI)
def test_cli_profile_commands_end_at_their_deadline(case: str, api: ScriptedAPI) -> None:
    started = time.monotonic()
    code = cli_main(["--base-url", api.base_url, "--api-key", KEY, *CLI[case]])
    _within(case, started, api)
    assert code not in (0, 130), code


def _a(url: str) -> AsyncSkyvernClient:
    return AsyncSkyvernClient(KEY, url)


async def _relay(url: str) -> None:
    create = {"browser_profile": "crm"}
    async with relay(api_key=KEY, base_url=url, port=0, timeout=T, create=create):
        raise AssertionError("the relay served a session that never answered")


async def _enter(capture: Any) -> object:
    return await capture.__aenter__()


ASYNC: dict[str, Callable[[str], Awaitable[object]]] = {
    "async create": lambda u: _a(u).create_browser_profile("crm", timeout=T),
    "async list": lambda u: _a(u).list_browser_profiles(timeout=T),
    "async get": lambda u: _a(u).get_browser_profile("bp_1", timeout=T),
    "async delete": lambda u: _a(u).delete_browser_profile("bp_1", timeout=T),
    "async resolve": lambda u: _a(u).resolve_browser_profile("crm", timeout=T),
    "async_api.launch(browser_profile=name)": lambda u: _enter(
        async_api.launch(api_key=KEY, base_url=u, timeout=T, browser_profile="crm")
    ),
    "notebook.launch(browser_profile=name)": lambda u: notebook.launch(
        api_key=KEY, base_url=u, timeout=T, browser_profile="crm"
    ),
    "async_api.capture_profile": lambda u: _enter(
        async_api.capture_profile("crm", api_key=KEY, base_url=u, timeout=T)
    ),
    "relay create={browser_profile}": _relay,
}


@pytest.mark.parametrize("case", ASYNC)
async def test_async_profile_entry_points_end_at_their_deadline(
    case: str, api: ScriptedAPI
) -> None:
    started = time.monotonic()
    with pytest.raises(SkyvernCDPError):
        await ASYNC[case](api.base_url)
    _within(case, started, api)
