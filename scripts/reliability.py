"""Run the fault matrix and a soak, and print the reliability figures as a table.

1. ``pytest tests/test_faults.py tests/test_bad_input.py``, each fault case logging its
   outcome and time (``SKYVERN_CDP_RELIABILITY_LOG``).
2. A soak against the local backend: ``--cycles`` connect/close cycles on one running
   session (the shared driver stays warm, as in a process that attaches often), then
   ``--cold-cycles`` cycles that each start and stop the driver. Open fds, child processes
   and RSS are read before and after.
3. Leaks: processes left, Chromium temp directories left, fd growth, RSS growth > 10 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import glob
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

from skyvern_cdp import SkyvernClient, async_api
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

ROOT = Path(__file__).resolve().parent.parent
RSS_LIMIT_MB = 10.0


def run_fault_matrix() -> tuple[list[dict[str, object]], str]:
    with tempfile.NamedTemporaryFile("r", suffix=".jsonl", delete=False) as log:
        path = log.name
    env = dict(os.environ, SKYVERN_CDP_RELIABILITY_LOG=path)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/test_faults.py",
        "tests/test_bad_input.py",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else proc.stderr[-300:]
    rows = [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
    os.unlink(path)
    return rows, summary


def snapshot(me: psutil.Process) -> dict[str, float]:
    gc.collect()
    return {
        "rss_mb": me.memory_info().rss / 2**20,
        "fds": me.num_fds(),
        "children": len([c for c in me.children(recursive=True) if c.status() != "zombie"]),
    }


async def soak(cycles: int, cold_cycles: int) -> dict[str, object]:
    me = psutil.Process()
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS) as backend:
        with SkyvernClient(base_url=backend.base_url) as api:
            sid = api.create_browser_session().browser_session_id
            api.wait_for_browser_session(sid, timeout=60)
            try:
                # cold: every cycle starts and stops the Playwright driver
                baseline_cold = snapshot(me)
                started = time.monotonic()
                for _ in range(cold_cycles):
                    browser = await async_api.connect(sid, base_url=backend.base_url, timeout=60)
                    await browser.close()
                cold_seconds = time.monotonic() - started
                after_cold = snapshot(me)

                # warm: one Browser held open keeps the shared driver running
                keeper = await async_api.connect(sid, base_url=backend.base_url, timeout=60)
                for _ in range(20):  # let allocator and caches settle before measuring
                    b = await async_api.connect(sid, base_url=backend.base_url, timeout=60)
                    await b.close()
                before = snapshot(me)
                driver = [c for c in me.children(recursive=True) if "node" in c.name()]
                driver_before = sum(c.memory_info().rss for c in driver) / 2**20
                started = time.monotonic()
                for _ in range(cycles):
                    b = await async_api.connect(sid, base_url=backend.base_url, timeout=60)
                    await b.close()
                warm_seconds = time.monotonic() - started
                after = snapshot(me)
                driver_after = sum(c.memory_info().rss for c in driver if c.is_running()) / 2**20
                await keeper.close()
            finally:
                api.close_browser_session(sid)
        chromium_pids = backend.live_chromium_pids()
    end = snapshot(me)
    return {
        "cycles": cycles,
        "warm_seconds": warm_seconds,
        "cold_cycles": cold_cycles,
        "cold_seconds": cold_seconds,
        "before": before,
        "after": after,
        "end": end,
        "baseline_cold": baseline_cold,
        "after_cold": after_cold,
        "driver_rss_before": driver_before,
        "driver_rss_after": driver_after,
        "chromium_left": chromium_pids,
    }


def in_use(directory: str) -> bool:
    """Whether a running process (another test run on this machine) still uses the dir."""
    for proc in psutil.process_iter(["cmdline"]):
        if any(directory in part for part in proc.info["cmdline"] or ()):
            return True
    return False


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=500)
    parser.add_argument("--cold-cycles", type=int, default=20)
    args = parser.parse_args()

    tmp_before = set(glob.glob("/tmp/scdp-*"))
    rows, summary = run_fault_matrix()
    result = asyncio.run(soak(args.cycles, args.cold_cycles))
    leftover_dirs = {d for d in set(glob.glob("/tmp/scdp-*")) - tmp_before if not in_use(d)}

    tried = len(rows)
    passed = sum(1 for r in rows if r["ok"])
    overshoot = max(
        (float(str(r["elapsed"])) - float(str(r["timeout"])) for r in rows), default=0.0
    )
    before, after, end = result["before"], result["after"], result["end"]
    assert isinstance(before, dict)
    assert isinstance(after, dict)
    assert isinstance(end, dict)
    rss_growth = after["rss_mb"] - before["rss_mb"]
    chromium_left = result["chromium_left"]
    assert isinstance(chromium_left, list)
    leaks = []
    if end["children"] > 0:
        leaks.append(f"{end['children']} child process(es) left")
    if leftover_dirs:
        leaks.append(f"{len(leftover_dirs)} Chromium temp dir(s) left")
    if chromium_left:
        leaks.append(f"{len(chromium_left)} Chromium(s) left")
    if after["fds"] > before["fds"] + 3:
        leaks.append(f"fds grew {before['fds']} -> {after['fds']}")
    if rss_growth > RSS_LIMIT_MB:
        leaks.append(f"RSS grew {rss_growth:.1f} MB")

    figures = [
        ("faults tried (API + CDP cases, each timed)", f"{tried}"),
        ("faults passed (right outcome within timeout + 1 s)", f"{passed}"),
        ("worst overshoot past the deadline", f"{max(0.0, overshoot) * 1000:.0f} ms"),
        (
            "soak: warm connect/close cycles",
            f"{result['cycles']} in {result['warm_seconds']:.1f} s",
        ),
        (
            "soak: cold cycles (driver start + stop each)",
            f"{result['cold_cycles']} in {result['cold_seconds']:.1f} s",
        ),
        (
            "RSS before / after the warm soak",
            f"{before['rss_mb']:.1f} / {after['rss_mb']:.1f} MB ({rss_growth:+.1f} MB)",
        ),
        (
            "driver (node) RSS before / after",
            f"{result['driver_rss_before']:.1f} / {result['driver_rss_after']:.1f} MB",
        ),
        ("open fds before / after", f"{before['fds']:.0f} / {after['fds']:.0f}"),
        ("child processes during / after", f"{after['children']:.0f} / {end['children']:.0f}"),
        ("leaks found", f"{len(leaks)}{': ' + '; '.join(leaks) if leaks else ''}"),
    ]
    print("## skyvern_cdp reliability\n")
    print(f"pytest (fault matrix, cancellation, secrets, bad input): {summary}\n")
    print("| figure | value |")
    print("|---|---|")
    for name, value in figures:
        print(f"| {name} | {value} |")
    failed = [r["fault"] for r in rows if not r["ok"]]
    if failed:
        print(f"\nfailed cases: {', '.join(map(str, failed))}")
    return 0 if passed == tried and not leaks and "failed" not in summary else 1


if __name__ == "__main__":
    raise SystemExit(main())
