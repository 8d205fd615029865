"""Time the ``skyvern-cdp`` command and the notebook helpers; prints markdown tables.

    scripts/bench_cli              # about a minute
    scripts/bench_cli --runs 3     # fewer runs per measure (noisier medians)

1. Cold start of each command, as a process, against a local backend (median of the runs),
   next to ``python -c pass`` and a bare ``import playwright.sync_api`` for scale; and which
   heavy modules each one imported (``-X importtime``).
2. ``skyvern-cdp wait`` on a session that becomes ready 1-2 s after it was created: the lag
   from the moment the backend marked it running until the address is on the reader's pipe,
   and the GETs it took.
3. Notebook cells: the first ``await notebook.attach(id)``, a re-run of it, and a re-run of a
   plain ``await connect(id)`` (which opens a second connection on the shared driver).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from skyvern_cdp import SkyvernClient
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

SCRIPT = str(Path(sys.executable).with_name("skyvern-cdp"))
HEAVY = ("playwright", "fastapi", "uvicorn", "greenlet")


def log(message: str) -> None:
    print(f"bench_cli: {message}", file=sys.stderr, flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def timed_run(argv: Sequence[str], env: dict[str, str]) -> tuple[float, str]:
    started = time.monotonic()
    done = subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}")
    return elapsed, done.stdout


def heavy_imports(argv: Sequence[str], env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", *argv], env=env, capture_output=True, text=True,
        timeout=120,
    )
    roots = {
        line.split("|")[-1].strip().split(".")[0]
        for line in done.stderr.splitlines()
        if line.startswith("import time:")
    }
    return ", ".join(sorted(roots & set(HEAVY))) or "none"


def cold_starts(backend: LocalBackend, client: SkyvernClient, runs: int) -> None:
    env = {**os.environ, "SKYVERN_BASE_URL": backend.base_url}
    env.pop("SKYVERN_API_KEY", None)
    made = client.create_browser_session(session_timeout_minutes=10)
    sid = made.browser_session_id
    client.wait_for_browser_session(sid, timeout=60)
    shot = Path("/tmp") / f"bench-cli-{os.getpid()}.png"
    commands: list[tuple[str, list[str]]] = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        ("python -c 'import playwright.sync_api'", [sys.executable, "-c",
                                                    "import playwright.sync_api"]),
        ("skyvern-cdp --help", [SCRIPT, "--help"]),
        ("skyvern-cdp info ID", [SCRIPT, "info", sid]),
        ("skyvern-cdp list", [SCRIPT, "list"]),
        ("skyvern-cdp wait ID (ready)", [SCRIPT, "wait", sid]),
        ("skyvern-cdp extend ID 1", [SCRIPT, "extend", sid, "1"]),
        ("skyvern-cdp screenshot ID OUT.png", [SCRIPT, "screenshot", sid, str(shot)]),
    ]
    print("\n| command | median wall time | min | heavy modules imported |")
    print("| --- | --- | --- | --- |")
    try:
        for name, argv in commands:
            times = [timed_run(argv, env)[0] for _ in range(runs)]
            heavy = heavy_imports(argv[1:] if argv[0] == sys.executable else argv, env)
            print(f"| `{name}` | {ms(statistics.median(times))} | {ms(min(times))} | {heavy} |")
    finally:
        client.close_browser_session(sid)
        shot.unlink(missing_ok=True)


def wait_lag(backend: LocalBackend, client: SkyvernClient, runs: int) -> None:
    env = {**os.environ, "SKYVERN_BASE_URL": backend.base_url}
    env.pop("SKYVERN_API_KEY", None)
    lags, gets = [], []
    for _ in range(runs):
        sid = client.create_browser_session(session_timeout_minutes=10).browser_session_id
        try:
            proc = subprocess.Popen(
                [SCRIPT, "wait", sid], env=env, stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL, text=True,
            )
            assert proc.stdout is not None
            line = proc.stdout.readline()
            arrived = time.monotonic()
            proc.wait(30)
            ready = backend.ready_at(sid)
            if not line.startswith("ws://") or ready is None:
                raise SystemExit(f"wait printed {line!r}")
            lags.append(arrived - ready)
            gets.append(backend.get_count(sid))
        finally:
            client.close_browser_session(sid)
    lags.sort()
    print("\n| `skyvern-cdp wait`, session ready after 1-2 s | median | worst |")
    print("| --- | --- | --- |")
    print(f"| lag from ready to the address on stdout | {ms(statistics.median(lags))}"
          f" | {ms(lags[-1])} |")
    print(f"| GETs per wait | {statistics.median(gets):g} | {max(gets)} |")


async def notebook_cells(backend: LocalBackend, client: SkyvernClient, runs: int) -> None:
    from skyvern_cdp import notebook
    from skyvern_cdp.async_api import connect

    first, rerun, plain = [], [], []
    for _ in range(runs):
        sid = client.create_browser_session(session_timeout_minutes=10).browser_session_id
        try:
            client.wait_for_browser_session(sid, timeout=60)
            started = time.monotonic()
            browser = await notebook.attach(sid, base_url=backend.base_url)
            first.append(time.monotonic() - started)
            started = time.monotonic()
            again = await notebook.attach(sid, base_url=backend.base_url)
            rerun.append(time.monotonic() - started)
            assert again is browser
            started = time.monotonic()
            second = await connect(sid, base_url=backend.base_url)
            plain.append(time.monotonic() - started)
            await second.close()
            await notebook.close()
        finally:
            client.close_browser_session(sid)
    print("\n| notebook cell | median | worst |")
    print("| --- | --- | --- |")
    for name, values in (
        ("first `await notebook.attach(id)` (driver start + GET + CDP)", first),
        ("re-run of `await notebook.attach(id)`", rerun),
        ("re-run of a plain `await connect(id)` (warm driver)", plain),
    ):
        unit = f"{max(values) * 1e6:.0f} µs" if max(values) < 0.001 else ms(max(values))
        median = statistics.median(values)
        shown = f"{median * 1e6:.0f} µs" if median < 0.001 else ms(median)
        print(f"| {name} | {shown} | {unit} |")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7, help="runs per measure (default 7)")
    args = parser.parse_args(argv)
    log("starting a local backend")
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS) as backend, \
            SkyvernClient(base_url=backend.base_url) as client:
        log("cold starts")
        cold_starts(backend, client, args.runs)
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS, ready_delay=(1.0, 2.0)) as backend, \
            SkyvernClient(base_url=backend.base_url) as client:
        log("wait lag")
        wait_lag(backend, client, args.runs)
        log("notebook cells")
        asyncio.run(notebook_cells(backend, client, args.runs))
    print(f"\n(load average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())};"
          f" {os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
