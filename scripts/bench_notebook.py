"""Measure notebook.show() in a real ipykernel on the local backend, and print a table.

    .venv/bin/python scripts/bench_notebook.py [--seconds 10] [--max-fps 4]

- frames per second shown (``update_display_data`` on iopub) while the page animates, and
  frames Chromium sent meanwhile;
- frames sent and shown over an idle period;
- CPU time over the idle period: the kernel with its Playwright driver, and the session's
  Chromium, with the view running and (baseline) after ``view.stop()``.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import time
from typing import Any

import psutil
from jupyter_client import KernelManager

from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

KEY = "sk-bench-notebook"
SETUP = """
import asyncio, json
from skyvern_cdp import notebook
from skyvern_cdp.async_api import default_page
browser = await notebook.launch(session_timeout_minutes=30)
page = await default_page(browser)
await page.set_content("<body style='margin:0;height:100vh;background:rgb(0,0,255)'></body>")

async def quiet(view, period=1.0, deadline=20.0):
    loop = asyncio.get_running_loop()
    end, last, since = loop.time() + deadline, view.stats.received, loop.time()
    while loop.time() < end:
        await asyncio.sleep(0.05)
        if view.stats.received != last:
            last, since = view.stats.received, loop.time()
        elif loop.time() - since >= period:
            return True
    return False
"""
ANIMATE = (
    "await page.add_style_tag(content='@keyframes k {from {background: red}"
    " to {background: blue}} body {animation: k 0.5s infinite alternate}')"
)
STILL = "await page.set_content(\"<body style='margin:0;height:100vh;background:green'></body>\")"


class Kernel:
    def __init__(self, env: dict[str, str]) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.messages: list[dict[str, Any]] = []
        self.process = psutil.Process(self.manager.provisioner.pid)  # type: ignore[union-attr]

    def run(self, code: str) -> str:
        msg_id = self.client.execute(code)
        out = []
        while True:
            m = self.client.get_iopub_msg(timeout=60)
            self.messages.append(m)
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "error":
                raise RuntimeError("\n".join(m["content"]["traceback"]))
            if m["msg_type"] == "stream":
                out.append(m["content"]["text"])
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                return "".join(out)

    def listen(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                self.messages.append(self.client.get_iopub_msg(timeout=left))
            except queue.Empty:
                return

    def updates(self, since: int) -> int:
        return sum(m["msg_type"] == "update_display_data" for m in self.messages[since:])

    def cpu(self) -> float:
        """CPU seconds of the kernel and its children (the Playwright driver)."""
        total = 0.0
        for proc in [self.process, *self.process.children(recursive=True)]:
            try:
                t = proc.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
        return total

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


def chromium_cpu(backend: LocalBackend) -> float:
    total = 0.0
    for pid in backend.live_chromium_pids():
        try:
            root = psutil.Process(pid)
            for proc in [root, *root.children(recursive=True)]:
                t = proc.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            pass
    return total


def stats(kernel: Kernel) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(kernel.run("print(json.dumps(view.stats.__dict__))"))
    return out


def idle_cpu(kernel: Kernel, backend: LocalBackend, seconds: float) -> tuple[float, float]:
    """CPU ms of (kernel + driver, Chromium) over ``seconds`` of listening."""
    cpu0, chrome0 = kernel.cpu(), chromium_cpu(backend)
    kernel.listen(seconds)
    cpu1, chrome1 = kernel.cpu(), chromium_cpu(backend)
    return (cpu1 - cpu0) * 1000, (chrome1 - chrome0) * 1000


def measure(
    kernel: Kernel, backend: LocalBackend, seconds: float, max_fps: float
) -> list[tuple[str, str]]:
    kernel.run(SETUP)
    rows: list[tuple[str, str]] = []
    kernel.listen(1.0)
    own, chrome = idle_cpu(kernel, backend, seconds)
    rows.append((f"idle {seconds:g} s: CPU, kernel + driver, before any view", f"{own:.0f} ms"))
    rows.append((f"idle {seconds:g} s: CPU, the session's Chromium, before any view",
                 f"{chrome:.0f} ms"))
    kernel.run(f"view = notebook.show(max_fps={max_fps})")
    kernel.listen(1.0)

    kernel.run(ANIMATE)
    kernel.listen(1.0)  # the animation is running
    before, mark = stats(kernel), len(kernel.messages)
    kernel.listen(seconds)
    after, shown = stats(kernel), kernel.updates(mark)
    sent = after["received"] - before["received"]
    rows.append((f"animating: frames shown per second (max_fps={max_fps:g})",
                 f"{shown / seconds:.2f}"))
    rows.append(("animating: frames Chromium sent per second", f"{sent / seconds:.2f}"))

    kernel.run(STILL)
    assert kernel.run("print(await quiet(view))").strip() == "True"
    before, mark = stats(kernel), len(kernel.messages)
    own, chrome = idle_cpu(kernel, backend, seconds)
    sent = stats(kernel)["received"] - before["received"]
    rows.append((f"idle {seconds:g} s: frames Chromium sent", str(sent)))
    rows.append((f"idle {seconds:g} s: frames shown", str(kernel.updates(mark))))
    rows.append((f"idle {seconds:g} s: CPU, kernel + driver, view running", f"{own:.0f} ms"))
    rows.append((f"idle {seconds:g} s: CPU, the session's Chromium, view running",
                 f"{chrome:.0f} ms"))

    kernel.run("view.stop()\nawait view.wait_stopped()")
    own, chrome = idle_cpu(kernel, backend, seconds)
    rows.append((f"idle {seconds:g} s: CPU, kernel + driver, after view.stop()", f"{own:.0f} ms"))
    rows.append((f"idle {seconds:g} s: CPU, the session's Chromium, after view.stop()",
                 f"{chrome:.0f} ms"))
    kernel.run("await notebook.close()")
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each period")
    parser.add_argument("--max-fps", type=float, default=4.0, help="show(max_fps=...)")
    args = parser.parse_args(argv)
    with LocalBackend(api_key=KEY, chromium_args=CLOSED_NETWORK_ARGS) as backend:
        env = {**os.environ, "SKYVERN_BASE_URL": backend.base_url, "SKYVERN_API_KEY": KEY}
        kernel = Kernel(env)
        try:
            rows = measure(kernel, backend, args.seconds, args.max_fps)
        finally:
            kernel.shutdown()
    width = max(len(name) for name, _ in rows)
    print(f"{'measure'.ljust(width)}  value")
    print(f"{'-' * width}  -----")
    for name, value in rows:
        print(f"{name.ljust(width)}  {value}")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
