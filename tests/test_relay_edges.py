"""``relay`` at its edges: a token in an http(s) address's query, a busy port, /json/protocol."""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from skyvern_cdp.cli import main
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.relay import relay
from skyvern_cdp.relay.targets import json_url, with_query_of

from conftest import LOCAL_API_KEY
from scripted_api import Reply, ScriptedAPI, session

pytestmark = pytest.mark.browser

TOKEN = "tok-3f9c1d77e2"


def test_the_path_goes_before_the_query() -> None:
    assert json_url("http://h:1/pbs_1/?token=t&x=1", "/json/version") == (
        "http://h:1/pbs_1/json/version?token=t&x=1"
    )
    assert json_url("https://h/", "/json/version") == "https://h/json/version"
    assert with_query_of("ws://h/devtools/browser/b?k=1", "http://h/?token=t") == (
        "ws://h/devtools/browser/b?k=1"
    )


def _running(backend: LocalBackend) -> tuple[str, str]:
    """A running session of ``backend``: (id, its ws:// browser_address)."""
    with httpx.Client(base_url=backend.base_url, headers={"x-api-key": LOCAL_API_KEY},
                      trust_env=False, timeout=30) as http:
        sid = http.post("/v1/browser_sessions").json()["browser_session_id"]
        deadline = time.monotonic() + 30
        while True:
            body = http.get(f"/v1/browser_sessions/{sid}").json()
            if body["status"] == "running":
                return sid, body["browser_address"]
            assert time.monotonic() < deadline, body
            time.sleep(0.02)


def _close(backend: LocalBackend, sid: str) -> None:
    httpx.post(f"{backend.base_url}/v1/browser_sessions/{sid}/close",
               headers={"x-api-key": LOCAL_API_KEY}, trust_env=False)


@pytest.fixture
def live(backend: LocalBackend) -> Iterator[tuple[str, str]]:
    sid, address = _running(backend)
    try:
        yield sid, address
    finally:
        _close(backend, sid)


async def test_an_http_address_with_a_token_query_relays_and_never_logs_it(
    backend: LocalBackend, live: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    sid, address = live
    router = address.replace("ws://", "http://").split("/devtools/")[0]  # http://h:p/pbs_…
    with ScriptedAPI() as api:
        api.script("GET", f"/v1/browser_sessions/{sid}", Reply(200, session(
            sid, ready=True, browser_address=f"{router}/?token={TOKEN}")))
        caplog.set_level(logging.DEBUG)
        async with (
            relay(sid, port=0, api_key=LOCAL_API_KEY, base_url=api.base_url) as ep,
            httpx.AsyncClient(base_url=ep.url, trust_env=False) as http,
        ):
            version = await http.get("/json/version")
            assert version.status_code == 200
            assert TOKEN not in version.text
    assert TOKEN not in caplog.text
    assert "HTTP Request: GET" in caplog.text  # httpx still logs, redacted


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        yield taken.getsockname()[1]


async def test_a_busy_port_fails_before_any_create(busy_port: int) -> None:
    with ScriptedAPI() as api:
        api.script("POST", "/v1/browser_sessions", Reply(200, session("pbs_new1")))
        api.script("GET", "/v1/browser_sessions/pbs_new1", Reply(200, session("pbs_new1")))
        api.script("POST", "/v1/browser_sessions/pbs_new1/close", Reply(200, {}))
        with pytest.raises(OSError, match="in use"):
            async with relay(create={}, port=busy_port, api_key="k", base_url=api.base_url):
                raise AssertionError("the relay served on a busy port")
        assert api.count("POST", "/v1/browser_sessions") == 0
        assert api.count("GET", "/v1/browser_sessions/pbs_new1") == 0  # no wait either


def test_relay_launch_on_a_busy_port_exits_2_and_creates_nothing(
    busy_port: int, capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedAPI() as api:
        api.script("POST", "/v1/browser_sessions", Reply(200, session("pbs_new2")))
        code = main(["relay", "--launch", "--port", str(busy_port), "--base-url", api.base_url,
                     "--api-key", "k", "--ready-timeout", "5"])
        assert code == 2, capsys.readouterr().err
        assert api.count("POST", "/v1/browser_sessions") == 0
    assert "cannot listen" in capsys.readouterr().err


async def test_a_busy_port_leaves_no_upstream_connection(
    backend: LocalBackend, live: tuple[str, str], busy_port: int
) -> None:
    sid, _ = live
    router = backend.router
    assert router is not None
    with pytest.raises(OSError, match="in use"):
        async with relay(sid, port=busy_port, api_key=LOCAL_API_KEY, base_url=backend.base_url):
            raise AssertionError("the relay served on a busy port")
    assert router.connections(sid) == 0


async def test_json_protocol_is_served_as_chrome_serves_it(
    backend: LocalBackend, live: tuple[str, str]
) -> None:
    """chrome-remote-interface's defaults fetch /json/protocol first."""
    sid, _ = live
    async with (
        relay(sid, port=0, api_key=LOCAL_API_KEY, base_url=backend.base_url) as ep,
        httpx.AsyncClient(base_url=ep.url, trust_env=False) as http,
    ):
        answer = await http.get("/json/protocol")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/json")
    described = answer.json()
    assert described["version"] == {"major": "1", "minor": "3"}
    domains = {d["domain"] for d in described["domains"]}
    assert {"Page", "Target", "Runtime", "Network", "Browser", "Debugger"} <= domains
    target = next(d for d in described["domains"] if d["domain"] == "Target")
    assert "createTarget" in {c["name"] for c in target["commands"]}
