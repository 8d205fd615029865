"""The live view's frame rate (page animating, page idle) and input-to-screen latency.

    .venv/bin/python scripts/bench_liveview.py

A viewer is a websocket client of ``/sessions/{id}/live`` (what the page's script does).
Latency: a mousePressed+mouseReleased sent by the viewer on a button that repaints the page,
until the next frame reaches the viewer (its JPEG decoded is not counted).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time

import httpx
from websockets.asyncio.client import connect

from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

ANIMATED = ("data:text/html,<body><div id=d style='width:80px;height:80px;background:red;"
            "position:absolute'></div><script>let x=0;(function f(){d.style.left=(x++%25400)"
            "+'px';requestAnimationFrame(f)})()</script></body>")
BUTTON = ("data:text/html,<body style='margin:0'><button style='width:300px;height:200px'"
          " onclick=\"document.body.style.background=document.body.style.background=="
          "'red'?'blue':'red'\">x</button></body>")


async def _session(http: httpx.AsyncClient, url: str) -> dict[str, object]:
    sid = (await http.post("/v1/browser_sessions", json={"url": url})).json()["browser_session_id"]
    while True:
        body: dict[str, object] = (await http.get(f"/v1/browser_sessions/{sid}")).json()
        if body["status"] == "running":
            return body
        await asyncio.sleep(0.1)


async def _frames_per_second(ws_url: str, seconds: float = 4.0) -> float:
    async with connect(ws_url, proxy=None, max_size=None) as ws:
        await asyncio.wait_for(_next_frame(ws), 10)  # the first frame
        count, end = 0, time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            try:
                message = json.loads(await asyncio.wait_for(ws.recv(), left))
            except TimeoutError:
                break
            count += message["type"] == "frame"
        return count / seconds


async def _next_frame(ws: object) -> None:
    while json.loads(await ws.recv())["type"] != "frame":  # type: ignore[attr-defined]
        pass


async def _drain(ws: object, quiet: float = 0.5) -> None:
    while True:
        try:
            await asyncio.wait_for(ws.recv(), quiet)  # type: ignore[attr-defined]
        except TimeoutError:
            return


async def _latencies(ws_url: str, rounds: int = 20) -> list[float]:
    out = []
    async with connect(ws_url, proxy=None, max_size=None) as ws:
        await ws.send(json.dumps({"type": "control", "take": True}))
        await asyncio.wait_for(_next_frame(ws), 10)
        await _drain(ws)
        for _ in range(rounds):
            start = time.perf_counter()
            for event, buttons in (("mousePressed", 1), ("mouseReleased", 0)):
                await ws.send(json.dumps({"type": "mouse", "event": event, "x": 100, "y": 100,
                                          "button": "left", "buttons": buttons,
                                          "clickCount": 1}))
            await asyncio.wait_for(_next_frame(ws), 10)
            out.append((time.perf_counter() - start) * 1000)
            await _drain(ws)  # the page quiet again: no frame of this round is counted next
    return out


async def main() -> None:
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS, recordings=False) as backend:
        async with httpx.AsyncClient(base_url=backend.base_url, trust_env=False) as http:
            sessions = [await _session(http, url) for url in (ANIMATED, BUTTON)]
            try:
                live = [str(s["app_url"]).replace("http://", "ws://") + "/live" for s in sessions]
                animated = await _frames_per_second(live[0])
                idle = await _frames_per_second(live[1])
                latency = await _latencies(live[1])
            finally:
                for s in sessions:
                    await http.post(f"/v1/browser_sessions/{s['browser_session_id']}/close")
    print("| measure | value |")
    print("| --- | --- |")
    print(f"| frames/s, page animating (cap 30) | {animated:.1f} |")
    print(f"| frames/s, page idle | {idle:.1f} |")
    print(f"| input-to-screen latency, median | {statistics.median(latency):.0f} ms |")
    print(f"| input-to-screen latency, max of {len(latency)} | {max(latency):.0f} ms |")


if __name__ == "__main__":
    asyncio.run(main())
