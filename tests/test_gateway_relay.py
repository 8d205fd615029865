"""``skyvern-cdp relay`` end to end: real Chromium behind the local backend's router, and CDP
clients that are not this library in front (Selenium with Debian's chromedriver, raw
websockets), plus the command's exit codes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from skyvern_cdp.errors import (
    AuthenticationError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    SessionNotFoundError,
)
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.relay import RelayEndpoint, relay

from conftest import LOCAL_API_KEY

pytestmark = pytest.mark.browser

CHROMEDRIVER = "/usr/bin/chromedriver"


def api(backend: LocalBackend) -> httpx.Client:
    return httpx.Client(base_url=backend.base_url, headers={"x-api-key": LOCAL_API_KEY},
                        timeout=30, trust_env=False)


@contextmanager
def session(backend: LocalBackend) -> Iterator[str]:
    """A new session's id (not waited for), closed at the end."""
    with api(backend) as http:
        sid = http.post("/v1/browser_sessions").json()["browser_session_id"]
        try:
            yield sid
        finally:
            http.post(f"/v1/browser_sessions/{sid}/close")


def status(backend: LocalBackend, sid: str) -> str:
    with api(backend) as http:
        found: str = http.get(f"/v1/browser_sessions/{sid}").json()["status"]
        return found


@asynccontextmanager
async def relayed(backend: LocalBackend, sid: str) -> AsyncIterator[RelayEndpoint]:
    async with relay(sid, port=0, api_key=LOCAL_API_KEY, base_url=backend.base_url) as ep:
        yield ep


async def command(ws: Any, method: str, params: dict[str, Any] | None = None,
                  msg_id: int = 1) -> dict[str, Any]:
    await ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))
    while True:
        answer: dict[str, Any] = json.loads(await ws.recv())
        if answer.get("id") == msg_id:
            return answer


async def next_answer(ws: Any, timeout: float = 10.0) -> dict[str, Any]:
    """The next message that is not an event (Page.enable keeps events coming)."""
    while True:
        message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if "method" not in message:
            return message


async def eventually(predicate: Any, timeout: float) -> bool:
    """``wait_for`` for code on this loop: poll without blocking it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            return bool(predicate())
        await asyncio.sleep(0.02)
    return True


# ---- real clients -------------------------------------------------------------------------


async def test_selenium_drives_a_page_through_the_relay(backend: LocalBackend) -> None:
    assert os.access(CHROMEDRIVER, os.X_OK), "scripts/setup installs Debian's chromium-driver"
    os.environ["SE_OFFLINE"] = "true"  # never let Selenium Manager download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    def drive(address: str) -> tuple[str, str, str]:
        options = webdriver.ChromeOptions()
        options.debugger_address = address
        driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
        try:
            driver.get("data:text/html,<title>selenium</title>"
                       "<button onclick=\"this.textContent='clicked'\">go</button>")
            driver.find_element(By.TAG_NAME, "button").click()
            return (driver.title, driver.find_element(By.TAG_NAME, "button").text,
                    driver.capabilities["browserVersion"])
        finally:
            driver.quit()

    with session(backend) as sid:
        async with relayed(backend, sid) as endpoint:
            title, text, version = await asyncio.to_thread(drive, endpoint.address)
        assert (title, text) == ("selenium", "clicked")
        assert version.split(".")[0].isdigit()
        assert status(backend, sid) == "running", "a relay never closes a session it did not make"


async def test_json_answers_and_raw_cdp_on_both_endpoints(backend: LocalBackend) -> None:
    with session(backend) as sid:
        async with relayed(backend, sid) as ep, httpx.AsyncClient(base_url=ep.url) as http:
            version = (await http.get("/json/version")).json()
            assert version["webSocketDebuggerUrl"].startswith(f"ws://{ep.address}/devtools/browser/")
            assert version["Browser"].startswith(("Chrome/", "HeadlessChrome/"))
            created = await http.put("/json/new?data:text/html,<title>made</title>")
            assert created.status_code == 200
            made = created.json()
            # As Chrome answers: the url asked for, while the page is still loading it.
            loading = (await http.put("/json/new?http://127.0.0.1:9/slow")).json()
            assert loading["url"] == "http://127.0.0.1:9/slow"
            assert (await http.get(f"/json/close/{loading['id']}")).status_code == 200
            assert made["webSocketDebuggerUrl"] == f"ws://{ep.address}/devtools/page/{made['id']}"
            assert (await http.get("/json/new?about:blank")).status_code == 405
            listed = (await http.get("/json/list")).json()
            assert made["id"] in [t["id"] for t in listed]
            assert (await http.get("/json")).status_code == 200
            for answer in (version, listed, made):
                assert LOCAL_API_KEY not in json.dumps(answer)
                assert sid not in json.dumps(answer), "the upstream address never shows"
            async with connect(version["webSocketDebuggerUrl"], proxy=None) as ws:
                targets = await command(ws, "Target.getTargets")
                assert made["id"] in [t["targetId"] for t in targets["result"]["targetInfos"]]
            async with connect(made["webSocketDebuggerUrl"], proxy=None, max_size=None) as ws:
                await command(ws, "Page.enable")
                answer = await command(ws, "Runtime.evaluate", {"expression": "6*7"}, 2)
                assert answer == {"id": 2, "result": {"result": {"type": "number", "value": 42,
                                                                 "description": "42"}}}
                await ws.send("not json")
                assert (await next_answer(ws))["error"]["code"] == -32700
            assert (await http.get(f"/json/activate/{made['id']}")).text == "Target activated"
            assert (await http.get(f"/json/close/{made['id']}")).text == "Target is closing"
            missing = await http.get("/json/activate/NOPE")
            assert (missing.status_code, missing.text) == (404, "No such target id: NOPE")
            assert (await http.get("/json/protocol")).status_code == 200  # shipped


async def test_browser_close_through_the_relay_completes_the_session(
    backend: LocalBackend,
) -> None:
    """Puppeteer's ``browser.close()`` sends ``Browser.close``: a close on request."""
    with session(backend) as sid:
        async with relayed(backend, sid) as ep, httpx.AsyncClient(base_url=ep.url) as http:
            version = (await http.get("/json/version")).json()
            async with connect(version["webSocketDebuggerUrl"], proxy=None) as ws:
                assert "error" not in await command(ws, "Browser.close")
            assert await eventually(lambda: status(backend, sid) != "running", 30)
        with api(backend) as api_http:
            ended = api_http.get(f"/v1/browser_sessions/{sid}").json()
        assert ended["status"] == "completed"
        assert ended["completed_at"] is not None


async def test_hosts_and_origins_are_refused_as_chrome_refuses_them(
    backend: LocalBackend,
) -> None:
    with session(backend) as sid:
        async with relayed(backend, sid) as ep, httpx.AsyncClient(base_url=ep.url) as http:
            for host in ("evil.example", "evil.example:9222", "localhost.evil.example",
                         "localhost.", f"localhost.:{ep.port}"):
                refused = await http.get("/json/version", headers={"Host": host})
                assert refused.status_code == 500
                assert "not an IP address or localhost" in refused.text
            for host in ("localhost", f"127.0.0.1:{ep.port}", f"LOCALHOST:{ep.port}"):
                assert (await http.get("/json/version", headers={"Host": host})).status_code == 200
            # A web page's fetch() (what Chrome sends): the shared rule of policy.web, 403.
            page = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site",
                    "Sec-Fetch-Mode": "cors"}
            before = len((await http.get("/json/list")).json())
            for method, path in (("GET", "/json/version"), ("PUT", "/json/new?about:blank")):
                assert (await http.request(method, path, headers=page)).status_code == 403
            assert len((await http.get("/json/list")).json()) == before
            rebound = await http.get("/json/list", headers={"Host": "evil.example@127.0.0.1"})
            assert rebound.status_code == 500
            ws_url = (await http.get("/json/version")).json()["webSocketDebuggerUrl"]
            with pytest.raises(InvalidStatus) as info:
                await connect(ws_url, origin="https://evil.example", proxy=None)  # type: ignore[arg-type]
            assert info.value.response.status_code == 403


async def test_clients_at_once_never_see_each_other(backend: LocalBackend) -> None:
    with session(backend) as sid:
        async with relayed(backend, sid) as ep:
            async with httpx.AsyncClient(base_url=ep.url) as http:
                browser_url = (await http.get("/json/version")).json()["webSocketDebuggerUrl"]
                listed = (await http.get("/json/list")).json()
            page = next(t for t in listed if t["type"] == "page")

            async def on_page(n: int) -> None:
                async with connect(page["webSocketDebuggerUrl"], proxy=None) as ws:
                    for i in range(5):
                        answer = await command(ws, "Runtime.evaluate",
                                               {"expression": f"{n}*1000+{i}"}, msg_id=i)
                        assert answer["result"]["result"]["value"] == n * 1000 + i

            async def on_browser(n: int) -> None:
                async with connect(browser_url, proxy=None) as ws:
                    for i in range(5):
                        answer = await command(ws, "Browser.getVersion", msg_id=i)
                        assert "product" in answer["result"]

            await asyncio.gather(*(on_page(n) for n in range(8)),
                                 *(on_browser(n) for n in range(8)))
            assert await eventually(lambda: ep.connections == 0, 5)


async def test_the_session_ending_mid_use_closes_every_client(backend: LocalBackend) -> None:
    with session(backend) as sid:
        async with relayed(backend, sid) as ep, httpx.AsyncClient(base_url=ep.url) as http:
            browser_url = (await http.get("/json/version")).json()["webSocketDebuggerUrl"]
            page = next(t for t in (await http.get("/json/list")).json() if t["type"] == "page")
            clients = [await connect(browser_url, proxy=None),
                       await connect(page["webSocketDebuggerUrl"], proxy=None)]
            for ws in clients:
                await command(ws, "Runtime.evaluate", {"expression": "1"})
            await asyncio.to_thread(api(backend).post, f"/v1/browser_sessions/{sid}/close")
            for ws in clients:
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(ws.recv(), 5)
            assert await asyncio.wait_for(ep.wait_ended(), 10) == "completed"
            assert ep.ended and ep.connections == 0
            with pytest.raises(httpx.ConnectError):
                await http.get("/json/version")


# ---- the Python entry point's bad input -----------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"session_id": 7}, InvalidArgumentTypeError),
        ({"session_id": ""}, InvalidArgumentError),
        ({"session_id": "pbs_1/../x"}, InvalidArgumentError),
        ({"session_id": "pbs_1", "port": "9222"}, InvalidArgumentTypeError),
        ({"session_id": "pbs_1", "port": True}, InvalidArgumentTypeError),
        ({"session_id": "pbs_1", "port": 70000}, InvalidArgumentError),
        ({"session_id": "pbs_1", "host": ""}, InvalidArgumentError),
        ({"session_id": "pbs_1", "host": "a b"}, InvalidArgumentError),
        ({"session_id": "pbs_1", "host": None}, InvalidArgumentTypeError),
        ({"session_id": "pbs_1", "timeout": -1}, InvalidArgumentError),
        ({"session_id": "pbs_1", "create": {}}, InvalidArgumentError),
        ({"create": ["url"]}, InvalidArgumentTypeError),
    ],
)
async def test_bad_arguments_are_typed_errors(kwargs: dict[str, Any], error: type[Exception]
                                              ) -> None:
    with pytest.raises(error):
        async with relay(base_url="http://127.0.0.1:9", **kwargs):
            pytest.fail("must not start")


async def test_a_wrong_key_or_unknown_session(backend: LocalBackend) -> None:
    with session(backend) as sid, pytest.raises(AuthenticationError):
        async with relay(sid, port=0, api_key="wrong", base_url=backend.base_url):
            pytest.fail("must not start")
    with pytest.raises(SessionNotFoundError):
        async with relay("pbs_1234567", port=0, api_key=LOCAL_API_KEY,
                         base_url=backend.base_url):
            pytest.fail("must not start")


# ---- the command ----------------------------------------------------------------------------


def cli(backend: LocalBackend, *args: str, key: str = LOCAL_API_KEY) -> subprocess.Popen[str]:
    env = dict(os.environ, SKYVERN_API_KEY=key, SKYVERN_BASE_URL=backend.base_url,
               PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "skyvern_cdp.cli", "relay", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc: subprocess.Popen[str], timeout: float = 30) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.parametrize(
    "args",
    [["pbs_1", "--port", "70000"], ["pbs_1", "--port", "x"], ["pbs_1", "--port", "-1"],
     ["pbs_1", "--host", "bad host"], ["pbs_1", "--host", ""], ["not-an-id"],
     ["pbs_1", "--launch"], [], ["pbs_1", "--url", "https://example.com"]],
)
def test_usage_errors_exit_2(backend: LocalBackend, args: list[str]) -> None:
    code, out, err = finish(cli(backend, *args))
    assert code == 2, err
    assert out == ""
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_wrong_key_exits_3_and_a_busy_port_exits_2(backend: LocalBackend) -> None:
    with session(backend) as sid:
        code, out, err = finish(cli(backend, sid, "--port", "0", key="sk-wrong-key-9"))
        assert (code, out) == (3, "")
        assert "sk-wrong-key-9" not in err
        code, _, err = finish(cli(backend, "pbs_1234567", "--port", "0"))
        assert code == 3, err
        port = int(backend.base_url.rsplit(":", 1)[1])  # taken: the API listens there
        code, _, err = finish(cli(backend, sid, "--port", str(port)))
        assert code == 2 and "cannot listen" in err, err


def _url_of(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line.startswith("http://127.0.0.1:"), line
    return line


def test_relay_ends_with_the_session_exit_4_and_never_shows_the_key(
    backend: LocalBackend,
) -> None:
    with session(backend) as sid:
        proc = cli(backend, sid, "--port", "0", "-v")
        try:
            url = _url_of(proc)
            version = httpx.get(f"{url}/json/version", trust_env=False).json()
            assert version["webSocketDebuggerUrl"].startswith(f"ws://{url[7:]}/devtools/browser/")
            api(backend).post(f"/v1/browser_sessions/{sid}/close")
            code, out, err = finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert code == 4, err
        assert out == ""
        assert "DEBUG" in err and LOCAL_API_KEY not in err
        assert "ended (completed)" in err


def test_launch_then_sigterm_exits_130_and_closes_what_it_made(backend: LocalBackend) -> None:
    proc = cli(backend, "--launch", "--port", "0", "--json")
    try:
        assert proc.stdout is not None
        shown = json.loads(proc.stdout.readline())
        sid = shown["session_id"]
        assert httpx.get(f"{shown['url']}/json/list", trust_env=False).status_code == 200
        assert status(backend, sid) == "running"
        proc.send_signal(signal.SIGTERM)
        code, _, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 130, err
    assert "SIGTERM" in err
    assert status(backend, sid) == "completed"


def test_sigint_leaves_a_session_it_did_not_make(backend: LocalBackend) -> None:
    with session(backend) as sid:
        proc = cli(backend, sid, "--port", "0")
        try:
            _url_of(proc)
            proc.send_signal(signal.SIGINT)
            code, _, err = finish(proc)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert code == 130, err
        assert status(backend, sid) == "running"
