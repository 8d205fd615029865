"""The local backend's CDP router end to end: real Chromium behind it, real clients in front."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.async_api import async_playwright
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from skyvern_cdp.gateway.pipe import pipe
from skyvern_cdp.local import LocalBackend

from conftest import LOCAL_API_KEY, wait_for

pytestmark = pytest.mark.browser

KEY = {"x-api-key": LOCAL_API_KEY}


def http(backend: LocalBackend) -> httpx.Client:
    return httpx.Client(base_url=backend.base_url, headers=KEY, timeout=30, trust_env=False)


@contextmanager
def running(backend: LocalBackend, **body: object) -> Iterator[tuple[str, str]]:
    """A running session of ``backend``: ``(id, browser_address)``; closed at the end."""
    with http(backend) as api:
        sid = api.post("/v1/browser_sessions", json=body).json()["browser_session_id"]
        try:
            found: dict[str, str] = {}

            def ready() -> bool:
                got = api.get(f"/v1/browser_sessions/{sid}").json()
                found.update(got)
                return bool(got["status"] == "running")

            assert wait_for(ready, 30)
            yield sid, found["browser_address"]
        finally:
            api.post(f"/v1/browser_sessions/{sid}/close")


async def command(ws: object, method: str, params: dict[str, object] | None = None,
                  msg_id: int = 1) -> dict[str, object]:
    await ws.send(json.dumps({"id": msg_id, "method": method, "params": params or {}}))  # type: ignore[attr-defined]
    while True:
        answer: dict[str, object] = json.loads(await ws.recv())  # type: ignore[attr-defined]
        if answer.get("id") == msg_id:
            return answer


def test_the_address_points_at_the_router_not_at_chromium(backend: LocalBackend) -> None:
    with running(backend) as (sid, address):
        parts = urlsplit(address)
        assert parts.scheme == "ws" and parts.hostname == "127.0.0.1"
        assert parts.path.startswith(f"/{sid}/devtools/browser/")
        router_port = parts.port
        # The backend's Chromium listens elsewhere, on loopback only.
        pid = backend.chromium_pid(sid)
        assert pid is not None
        import psutil

        ports = {c.laddr.port: c.laddr.ip for c in psutil.Process(pid).net_connections("tcp")
                 if c.status == "LISTEN"}
        assert router_port not in ports
        assert ports and set(ports.values()) == {"127.0.0.1"}


async def test_a_missing_or_wrong_key_is_401(backend: LocalBackend) -> None:
    with running(backend) as (_, address):
        for headers in ({}, {"x-api-key": "wrong"}, {"x-api-key": ""}):
            with pytest.raises(InvalidStatus) as info:
                await connect(address, additional_headers=headers, proxy=None)
            assert info.value.response.status_code == 401
        page = address.replace("/devtools/browser/", "/devtools/page/")
        with pytest.raises(InvalidStatus) as info:
            await connect(page, proxy=None)
        assert info.value.response.status_code == 401
        version = address.split("/devtools/")[0].replace("ws://", "http://") + "/json/version"
        async with httpx.AsyncClient(trust_env=False) as client:
            assert (await client.get(version)).status_code == 401
            answer = (await client.get(version, headers=KEY)).json()
        assert answer["webSocketDebuggerUrl"] == address


async def test_browser_and_page_paths_work_through_it(backend: LocalBackend) -> None:
    with running(backend) as (_, address):
        async with connect(address, additional_headers=KEY, proxy=None) as ws:
            targets = await command(ws, "Target.getTargets")
            pages = [t for t in targets["result"]["targetInfos"]  # type: ignore[index]
                     if t["type"] == "page"]
            assert [p["url"] for p in pages] == ["about:blank"]
        page = address.split("/devtools/")[0] + f"/devtools/page/{pages[0]['targetId']}"
        async with connect(page, additional_headers=KEY, proxy=None) as ws:
            answer = await command(ws, "Runtime.evaluate", {"expression": "6*7"})
            assert answer["result"]["result"]["value"] == 42  # type: ignore[index]


async def test_raw_playwright_with_the_header(backend: LocalBackend) -> None:
    with running(backend) as (_, address):
        async with async_playwright() as pw:
            browser = await pw.chromium.connect_over_cdp(address, headers=KEY)
            try:
                page = browser.contexts[0].pages[0]
                await page.set_content("<title>via the router</title>")
                assert await page.title() == "via the router"
            finally:
                await browser.close()


async def test_not_running_yet_is_refused_and_an_ended_session_is_4410() -> None:
    async with LocalBackend(api_key="k", ready_delay=3600.0) as server, httpx.AsyncClient(
        base_url=server.base_url, headers={"x-api-key": "k"}
    ) as api:
        sid = (await api.post("/v1/browser_sessions")).json()["browser_session_id"]
        # No address is handed out yet; the router's path for the session refuses.
        address = await _router_url(server, sid)
        with pytest.raises(InvalidStatus) as info:
            await connect(address, additional_headers={"x-api-key": "k"}, proxy=None)
        assert info.value.response.status_code == 503
        assert info.value.response.headers["Retry-After"] == "1"
        await api.post(f"/v1/browser_sessions/{sid}/close")
        async with connect(address, additional_headers={"x-api-key": "k"},
                           proxy=None) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None
        assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (4410, "session closed")


async def _router_url(server: LocalBackend, sid: str) -> str:
    sock = server._router_sock  # the router's port is not in any answer before it runs
    assert sock is not None
    return f"ws://127.0.0.1:{sock.getsockname()[1]}/{sid}/devtools/browser/x"


async def test_open_connections_close_when_the_session_ends(backend: LocalBackend) -> None:
    with running(backend) as (sid, address):
        sockets = [await connect(address, additional_headers=KEY, proxy=None) for _ in range(3)]
        for ws in sockets:
            assert "result" in await command(ws, "Browser.getVersion")
        router = backend.router
        assert router is not None
        assert router.connections(sid) == 3
        started = time.monotonic()
        await asyncio.to_thread(http(backend).post, f"/v1/browser_sessions/{sid}/close")
        for ws in sockets:
            with pytest.raises(ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 5)
        assert time.monotonic() - started < 5
        assert router.connections(sid) == 0
        async with connect(address, additional_headers=KEY, proxy=None) as ws:
            with pytest.raises(ConnectionClosed) as closed:
                await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4410


async def test_sixteen_clients_at_once(backend: LocalBackend) -> None:
    with running(backend) as (sid, address):

        async def client(n: int) -> int:
            async with connect(address, additional_headers=KEY, proxy=None) as ws:
                total = 0
                for i in range(10):
                    answer = await command(ws, "Runtime.evaluate", {"expression": f"{n}*{i}"},
                                           msg_id=i)
                    assert answer["id"] == i
                    del answer
                    total += 1
                return total

        # Browser-level Runtime.evaluate has no context: each answer is an error, but an
        # answer, to this client only (ids overlap on purpose: 0..9 on every connection).
        assert await asyncio.gather(*(client(n) for n in range(16))) == [10] * 16
        router = backend.router
        assert router is not None
        assert wait_for(lambda: router.connections(sid) == 0, 5)


def _handshake(address: str, key: str) -> socket.socket:
    parts = urlsplit(address)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=10)
    nonce = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET {parts.path} HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {nonce}\r\nSec-WebSocket-Version: 13\r\n"
        f"x-api-key: {key}\r\n\r\n".encode()
    )
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 101"), answer[:100]
    return sock


async def test_a_client_that_vanishes_mid_message(backend: LocalBackend) -> None:
    with running(backend) as (sid, address):
        router = backend.router
        assert router is not None
        sock = _handshake(address, LOCAL_API_KEY)
        assert wait_for(lambda: router.connections(sid) == 1, 5)
        # A masked text frame announcing 1000 bytes, of which 10 arrive; then a reset.
        sock.sendall(bytes([0x81, 0x80 | 126]) + struct.pack("!H", 1000) + b"mask" + b"x" * 10)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.close()
        assert wait_for(lambda: router.connections(sid) == 0, 5)
        async with connect(address, additional_headers=KEY, proxy=None) as ws:
            assert "result" in await command(ws, "Browser.getVersion")


async def test_a_slow_reader_does_not_make_the_router_buffer(backend: LocalBackend) -> None:
    """40 answers of 1 MB each while the client reads nothing: the router's memory stays flat
    (traced allocations of this process, where the router runs), then every answer arrives."""
    with running(backend) as (_, address):
        page = await _first_page(address)
        count, size = 40, 1 << 20
        async with connect(page, additional_headers=KEY, proxy=None, max_size=None,
                           max_queue=1) as ws:
            tracemalloc.start()
            try:
                base, _ = tracemalloc.get_traced_memory()
                for i in range(count):
                    expression = f"'{i}'.padEnd({size}, 'x')"
                    await ws.send(json.dumps({"id": i, "method": "Runtime.evaluate",
                                              "params": {"expression": expression}}))
                # Chromium has produced far more than the kernel buffers hold; wait until the
                # router has forwarded what it can (its peak stops growing) and check the peak.
                peaks: list[int] = []

                def settled() -> bool:
                    peaks.append(tracemalloc.get_traced_memory()[1])
                    return len(peaks) > 25 and peaks[-1] == peaks[-25]

                assert wait_for(settled, 20, interval=0.02)
                peak = peaks[-1] - base
            finally:
                tracemalloc.stop()
            assert peak < 12 * size, f"{peak / size:.1f} MB buffered for a reader that stalled"
            for i in range(count):
                answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert answer["id"] == i
                assert len(answer["result"]["result"]["value"]) == size


async def _first_page(address: str) -> str:
    async with connect(address, additional_headers=KEY, proxy=None) as ws:
        targets = await command(ws, "Target.getTargets")
    infos = targets["result"]["targetInfos"]  # type: ignore[index]
    target = next(t["targetId"] for t in infos if t["type"] == "page")
    return address.split("/devtools/")[0] + f"/devtools/page/{target}"


async def test_pipe_backpressure_is_bounded() -> None:
    """The byte pipe alone: 64 MB offered to a reader that does not read."""
    chunk = b"z" * (1 << 20)
    sent = 0

    async def producer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal sent
        for _ in range(64):
            writer.write(chunk)
            await writer.drain()
            sent += len(chunk)
        writer.close()

    async def relay(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", upstream_port)
        await pipe(reader, writer, up_reader, up_writer)

    upstream = await asyncio.start_server(producer, "127.0.0.1", 0)
    upstream_port = upstream.sockets[0].getsockname()[1]
    middle = await asyncio.start_server(relay, "127.0.0.1", 0)
    tracemalloc.start()
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", middle.sockets[0].getsockname()[1], limit=1 << 16
        )
        writer.transport.pause_reading()  # type: ignore[attr-defined]
        last = [-1]

        async def stalled() -> bool:
            for _ in range(400):
                await asyncio.sleep(0.02)
                if sent == last[0] and sent > 0:
                    return True
                last[0] = sent
            return False

        assert await stalled()
        peak = tracemalloc.get_traced_memory()[1]
        assert sent < 32 * len(chunk), "the producer was never held back"
        assert peak < 4 * len(chunk), f"{peak} bytes buffered"
        writer.transport.resume_reading()  # type: ignore[attr-defined]
        received = 0
        while data := await reader.read(1 << 20):
            received += len(data)
        assert received == 64 * len(chunk)
        writer.close()
    finally:
        tracemalloc.stop()
        middle.close()
        upstream.close()


def test_a_server_listening_everywhere_hands_out_the_host_it_was_reached_on() -> None:
    from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

    with LocalBackend(api_key="k", host="0.0.0.0", allow_remote=True,
                      chromium_args=CLOSED_NETWORK_ARGS) as server, httpx.Client(
        base_url=server.base_url.replace("0.0.0.0", "127.0.0.1"), headers={"x-api-key": "k"},
        trust_env=False,
    ) as api:
        sid = api.post("/v1/browser_sessions").json()["browser_session_id"]
        try:
            assert wait_for(
                lambda: api.get(f"/v1/browser_sessions/{sid}").json()["status"] == "running", 30
            )
            address = api.get(f"/v1/browser_sessions/{sid}").json()["browser_address"]
            assert address.startswith("ws://127.0.0.1:"), address
            from websockets.sync.client import connect as sync_connect

            with sync_connect(address, additional_headers={"x-api-key": "k"}, proxy=None) as ws:
                ws.send(json.dumps({"id": 1, "method": "Browser.getVersion"}))
                assert json.loads(ws.recv())["id"] == 1
        finally:
            api.post(f"/v1/browser_sessions/{sid}/close")
