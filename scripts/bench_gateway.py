"""What the CDP gateway costs: direct to Chromium vs the backend's router vs ``skyvern-cdp relay``.

    scripts/bench --only gateway           # one markdown table, every ratio from this run
    .venv/bin/python scripts/bench_gateway.py --rounds 5

One local backend session (real Chromium, closed network). Four websocket clients, each its
own connection: Chromium's own debugging port (``direct``), the backend's router (the
session's ``browser_address``, with ``x-api-key``), the relay's browser endpoint, and the
relay's page endpoint. The first three reach the page over a flattened session
(``Target.attachToTarget``); the page endpoint speaks to it without a ``sessionId`` (the relay
adds and removes it). Measured in rounds that alternate the endpoints, so that all four share
the machine's noise: round trips of ``Runtime.evaluate("1")``, and ``Page.captureScreenshot``
(PNG) of a noisy canvas whose PNG is about 6 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
import psutil
from websockets.asyncio.client import ClientConnection, connect

from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

KEY = "sk-bench-gateway"
SIDE = 1260  # px: a 1260×1260 canvas of noise makes a PNG of about 6 MB
PAGE = f"""<html><body style="margin:0"><canvas id=c width={SIDE} height={SIDE}></canvas><script>
const c = document.getElementById('c').getContext('2d');
const img = c.createImageData({SIDE}, {SIDE});
for (let i = 0; i < img.data.length; i++) img.data[i] = (i % 4 == 3) ? 255 : Math.random() * 256;
c.putImageData(img, 0, 0);
</script></body></html>"""


class Client:
    """One CDP websocket; ``session`` set when it reaches the page over a flattened session."""

    def __init__(self, ws: ClientConnection, session: str | None) -> None:
        self.ws, self.session, self.next_id = ws, session, 1000

    async def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self.next_id += 1
        message: dict[str, Any] = {"id": self.next_id, "method": method, "params": params or {}}
        if self.session:
            message["sessionId"] = self.session
        await self.ws.send(json.dumps(message))
        while True:
            answer: dict[str, Any] = json.loads(await self.ws.recv())
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(answer["error"])
                return answer


async def open_client(url: str, headers: dict[str, str], page: str | None) -> Client:
    ws = await connect(url, additional_headers=headers, proxy=None, max_size=None,
                       compression=None, ping_interval=None)
    if page is None:
        return Client(ws, None)
    attach = Client(ws, None)
    found = await attach.send("Target.attachToTarget", {"targetId": page, "flatten": True})
    return Client(ws, found["result"]["sessionId"])


def chromium_address(server: psutil.Process) -> str:
    """Chromium's own browser websocket, read from its profile (the router hides it)."""
    for child in server.children(recursive=True):
        profile = next((a.split("=", 1)[1] for a in child.cmdline()
                        if a.startswith("--user-data-dir=")), None)
        active = Path(profile or "/nonexistent") / "DevToolsActivePort"
        if active.exists() and "--type=" not in " ".join(child.cmdline()):
            port, path = active.read_text().splitlines()[:2]
            return f"ws://127.0.0.1:{port}{path}"
    raise RuntimeError("no Chromium found under the server")


def start(*args: str) -> tuple[subprocess.Popen[str], str]:
    """Start ``skyvern-cdp ARGS`` (its own process, as in real use); its first stdout line."""
    env = dict(os.environ, SKYVERN_API_KEY=KEY, PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "skyvern_cdp.cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


async def measure(rounds: int, trips: int, shots: int) -> tuple[str, dict[str, Any]]:
    """The backend (``skyvern-cdp serve``) and the relay run in processes of their own, as
    they do in use; this process holds only the four clients."""
    server, base_url = start("serve", "--port", "0", f"--chromium-arg={CLOSED_NETWORK_ARGS[0]}")
    try:
        async with httpx.AsyncClient(base_url=base_url, headers={"x-api-key": KEY},
                                     trust_env=False) as api:
            sid = (await api.post("/v1/browser_sessions")).json()["browser_session_id"]
            body = (await api.get(f"/v1/browser_sessions/{sid}")).json()
            while body["status"] != "running":  # polling the API is the point
                await asyncio.sleep(0.05)
                body = (await api.get(f"/v1/browser_sessions/{sid}")).json()
            relayed, relay_url = start("relay", sid, "--port", "0", "--base-url", base_url)
            try:
                direct = chromium_address(psutil.Process(server.pid))
                return await _measure(direct, body["browser_address"], relay_url, rounds, trips,
                                      shots)
            finally:
                stop(relayed)
                await api.post(f"/v1/browser_sessions/{sid}/close")
    finally:
        stop(server)


async def _measure(direct: str, address: str, relay_url: str, rounds: int, trips: int,
                   shots: int) -> tuple[str, dict[str, Any]]:
    key = {"x-api-key": KEY}
    async with httpx.AsyncClient(base_url=relay_url, trust_env=False) as http:
        browser_ws = (await http.get("/json/version")).json()["webSocketDebuggerUrl"]
        page = next(t for t in (await http.get("/json/list")).json() if t["type"] == "page")
    setup = await open_client(address, key, page["id"])
    await setup.send("Emulation.setDeviceMetricsOverride",
                     {"width": SIDE, "height": SIDE, "deviceScaleFactor": 1, "mobile": False})
    await setup.send("Page.navigate",
                     {"url": "data:text/html;base64," + base64.b64encode(PAGE.encode()).decode()})
    clients = {
        DIRECT: await open_client(direct, {}, page["id"]),
        ROUTER: await open_client(address, key, page["id"]),
        "relay, browser endpoint": await open_client(browser_ws, {}, page["id"]),
        "relay, page endpoint": await open_client(page["webSocketDebuggerUrl"], {}, None),
    }
    probe = await setup.send("Page.captureScreenshot", {"format": "png"})
    size = len(probe["result"]["data"])
    rt: dict[str, list[float]] = {name: [] for name in clients}
    shot: dict[str, list[float]] = {name: [] for name in clients}
    names = list(clients)
    for r in range(rounds):
        order = names if r % 2 == 0 else names[::-1]
        for name in order:
            client = clients[name]
            for _ in range(trips):
                started = time.perf_counter()
                await client.send("Runtime.evaluate", {"expression": "1"})
                rt[name].append(time.perf_counter() - started)
            for _ in range(shots):
                started = time.perf_counter()
                answer = await client.send("Page.captureScreenshot", {"format": "png"})
                shot[name].append(time.perf_counter() - started)
                assert len(answer["result"]["data"]) == size
    for client in clients.values():
        await client.ws.close()
    await setup.ws.close()
    return table(rt, shot, size, rounds, trips, shots), {"round_trip": rt, "screenshot": shot}


DIRECT = "direct (Chromium's port)"
ROUTER = "router (browser_address)"


def table(rt: dict[str, list[float]], shot: dict[str, list[float]], size: int, rounds: int,
          trips: int, shots: int) -> str:
    """Medians, and each one against direct and against its own upstream (the relay's
    upstream is the router: the session's browser_address)."""
    med_rt = {name: statistics.median(v) for name, v in rt.items()}
    med_shot = {name: statistics.median(v) for name, v in shot.items()}
    lines = [
        "| endpoint | median round trip | vs direct | vs its upstream | median screenshot"
        " | vs direct | vs its upstream |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in rt:
        up = None if name == DIRECT else DIRECT if name == ROUTER else ROUTER
        over = f"{(med_rt[name] - med_rt[up]) * 1000:+.3f} ms" if up else "–"
        ratio = f"{med_shot[name] / med_shot[up]:.2f}×" if up else "–"
        lines.append(
            f"| {name} | {med_rt[name] * 1000:.3f} ms"
            f" | {(med_rt[name] - med_rt[DIRECT]) * 1000:+.3f} ms | {over}"
            f" | {med_shot[name] * 1000:.0f} ms"
            f" | {med_shot[name] / med_shot[DIRECT]:.2f}× | {ratio} |"
        )
    lines.append("")
    lines.append(
        f"Screenshot: Page.captureScreenshot (PNG) of a {SIDE}×{SIDE} noisy canvas,"
        f" {size / 1e6:.1f} MB of base64 per answer. {rounds} rounds, the endpoints"
        f" alternating; per round and endpoint {trips} round trips of Runtime.evaluate and"
        f" {shots} screenshots; medians of all samples. The backend (`skyvern-cdp serve`)"
        " and the relay (`skyvern-cdp relay`) run in their own processes; the relay's"
        " upstream is the router."
    )
    return "\n".join(lines)


def table_of_one_run(rounds: int = 6, trips: int = 100, shots: int = 3) -> str:
    """The table, for ``scripts/bench --only gateway``."""
    return asyncio.run(measure(rounds, trips, shots))[0]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench_gateway", description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--trips", type=int, default=100)
    parser.add_argument("--shots", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="write every sample here")
    args = parser.parse_args(argv)
    if min(args.rounds, args.trips, args.shots) < 1:
        parser.error("--rounds, --trips and --shots must be at least 1")
    text, samples = asyncio.run(measure(args.rounds, args.trips, args.shots))
    print(text)
    if args.json is not None:
        args.json.write_text(json.dumps(samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
