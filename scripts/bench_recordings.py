"""What recording a session costs: the same measures with ``serve`` and ``--no-recordings``.

    .venv/bin/python scripts/bench_recordings.py [--rounds 200] [--seconds 5]

For each mode it starts ``skyvern-cdp serve`` (its own process, so its CPU is its own),
creates a session, attaches Playwright through the backend's CDP router and measures:

- a CDP round trip of the page (``page.evaluate("1")``), median and p95 of ``--rounds``;
- a 6 MB screenshot (a 1920 x 1080 page of noise, PNG), median of 10;
- CPU of the backend process and of its Chromium (all its processes), in % of one core,
  over ``--seconds`` while the page is idle and while it animates (a box moving, 60 fps);
- how long the session's close takes (the recording is finalized before it answers).

Prints one table. Run it on a quiet machine: it measures one run, and other load moves it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import psutil
from playwright.sync_api import Page, sync_playwright

NOISE = """data:text/html,<body style='margin:0'><canvas id=c width=1920 height=1080></canvas>
<script>
const c = document.getElementById('c').getContext('2d');
const img = c.createImageData(1920, 1080);
for (let i = 0; i < img.data.length; i++) img.data[i] = (i % 4 == 3) ? 255 : Math.random() * 256;
c.putImageData(img, 0, 0);
</script></body>"""
ANIMATION = (
    "data:text/html,<style>@keyframes k{from{transform:translateX(0)}to{transform:"
    "translateX(900px)}} div{width:200px;height:200px;background:red;"
    "animation:k 1s infinite alternate linear}</style><div></div>"
)
IDLE = "data:text/html,<body style='background:white'><h1>idle</h1></body>"


@contextmanager
def serve(recordings: bool) -> Iterator[tuple[str, psutil.Process]]:
    command = [sys.executable, "-m", "skyvern_cdp.cli", "serve", "--port", "0",
               "--chromium-arg=--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost"]
    if not recordings:
        command.append("--no-recordings")
    env = {**os.environ, "SKYVERN_API_KEY": ""}
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True, env=env)
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        yield base_url, psutil.Process(proc.pid)
    finally:
        proc.terminate()
        proc.wait(60)


def cpu_seconds(process: psutil.Process, children: bool) -> float:
    total = 0.0
    targets = process.children(recursive=True) if children else [process]
    for target in targets:
        try:
            times = target.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def cpu_percent(backend: psutil.Process, seconds: float) -> tuple[float, float]:
    """% of one core used by the backend process and by its Chromium over ``seconds``."""
    own, chromium, start = cpu_seconds(backend, False), cpu_seconds(backend, True), time.time()
    time.sleep(seconds)
    elapsed = time.time() - start
    return (
        100 * (cpu_seconds(backend, False) - own) / elapsed,
        100 * (cpu_seconds(backend, True) - chromium) / elapsed,
    )


def wait_running(http: httpx.Client, sid: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        body: dict[str, Any] = http.get(f"/v1/browser_sessions/{sid}").json()
        if body["status"] == "running":
            return body
        if time.monotonic() > deadline:
            raise SystemExit(f"session {sid} did not run: {body['status']}")
        time.sleep(0.05)


def settle(page: Page) -> None:
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def measure(recordings: bool, rounds: int, seconds: float) -> dict[str, float]:
    with serve(recordings) as (base_url, backend), httpx.Client(
        base_url=base_url, trust_env=False, timeout=60
    ) as http, sync_playwright() as pw:
        sid = http.post("/v1/browser_sessions", json={"url": IDLE}).json()["browser_session_id"]
        session = wait_running(http, sid)
        browser = pw.chromium.connect_over_cdp(session["browser_address"])
        page = browser.contexts[0].pages[0]
        page.set_viewport_size({"width": 1920, "height": 1080})
        settle(page)
        trips = []
        for _ in range(rounds):
            start = time.perf_counter()
            page.evaluate("1")
            trips.append(time.perf_counter() - start)
        page.goto(NOISE)
        settle(page)
        shots, size = [], 0
        for _ in range(10):
            start = time.perf_counter()
            size = len(page.screenshot(type="png"))
            shots.append(time.perf_counter() - start)
        page.goto(IDLE)
        settle(page)
        time.sleep(1.0)  # the recorder's catch-up after the noise page, before counting idle
        idle = cpu_percent(backend, seconds)
        page.goto(ANIMATION)
        settle(page)
        animated = cpu_percent(backend, seconds)
        browser.close()
        start = time.perf_counter()
        http.post(f"/v1/browser_sessions/{sid}/close")
        closing = time.perf_counter() - start
        files = http.get(f"/v1/browser_sessions/{sid}").json()["recordings"]
    trips.sort()
    return {
        "rtt_median_ms": 1000 * statistics.median(trips),
        "rtt_p95_ms": 1000 * trips[int(0.95 * (len(trips) - 1))],
        "shot_median_ms": 1000 * statistics.median(shots),
        "shot_mb": size / 1e6,
        "idle_backend": idle[0],
        "idle_chromium": idle[1],
        "anim_backend": animated[0],
        "anim_chromium": animated[1],
        "close_ms": 1000 * closing,
        "video_kb": sum(f.get("file_size") or 0 for f in files) / 1e3,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    results = {mode: measure(mode == "on", args.rounds, args.seconds) for mode in ("off", "on")}
    rows = [
        ("CDP round trip, median (ms)", "rtt_median_ms", "{:.2f}"),
        ("CDP round trip, p95 (ms)", "rtt_p95_ms", "{:.2f}"),
        ("screenshot, median (ms)", "shot_median_ms", "{:.0f}"),
        ("screenshot size (MB)", "shot_mb", "{:.1f}"),
        ("backend CPU, page idle (% core)", "idle_backend", "{:.1f}"),
        ("Chromium CPU, page idle (% core)", "idle_chromium", "{:.1f}"),
        ("backend CPU, page animates (% core)", "anim_backend", "{:.1f}"),
        ("Chromium CPU, page animates (% core)", "anim_chromium", "{:.1f}"),
        ("session close (ms)", "close_ms", "{:.0f}"),
        ("video size (kB)", "video_kb", "{:.0f}"),
    ]
    load = os.getloadavg()[0]
    print(f"recordings on vs off; one run; {os.cpu_count()} cores, load average {load:.1f}")
    print(f"| {'measure':<38} | {'off':>8} | {'on':>8} |")
    print(f"|{'-' * 40}|{'-' * 10}|{'-' * 10}|")
    for title, key, fmt in rows:
        off, on = (fmt.format(results[mode][key]) for mode in ("off", "on"))
        print(f"| {title:<38} | {off:>8} | {on:>8} |")


if __name__ == "__main__":
    main()
