"""How long each entry point takes to fail on a base URL where nothing answers; prints a table.

    scripts/bench_fail_fast                       # this checkout, a closed port on 127.0.0.1
    scripts/bench_fail_fast --tree /tmp/old       # another checkout of skyvern_cdp (before/after)
    scripts/bench_fail_fast --url https://skyvern-cdp-test.invalid

Every entry point runs in a fresh process (nothing has answered in it), a few at a time
(``--parallel``), with its default deadlines, as a new user with a mistyped port meets it.
"in call" is the time around the call inside the process; "process" is the whole run
(interpreter start included).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SID = "pbs_abc123"
KEY = "sk-bench-fail-fast"

#: (name, imports, the call with URL and its default deadline)
CALLS = [
    ("SkyvernClient.get_browser_session", "from skyvern_cdp import SkyvernClient",
     "SkyvernClient(KEY, URL).get_browser_session(SID)"),
    ("SkyvernClient.wait_for_browser_session", "from skyvern_cdp import SkyvernClient",
     "SkyvernClient(KEY, URL).wait_for_browser_session(SID)"),
    ("AsyncSkyvernClient.get_browser_session",
     "import asyncio; from skyvern_cdp import AsyncSkyvernClient",
     "asyncio.run(AsyncSkyvernClient(KEY, URL).get_browser_session(SID))"),
    ("sync_api.connect", "from skyvern_cdp import sync_api",
     "sync_api.connect(SID, api_key=KEY, base_url=URL)"),
    ("sync_api.launch", "from skyvern_cdp import sync_api",
     "sync_api.launch(api_key=KEY, base_url=URL)"),
    ("async_api.connect", "import asyncio; from skyvern_cdp import async_api",
     "asyncio.run(async_api.connect(SID, api_key=KEY, base_url=URL)._open())"),
    ("async_api.launch", "import asyncio; from skyvern_cdp import async_api",
     "asyncio.run(async_api.launch(api_key=KEY, base_url=URL)._open())"),
    ("notebook.attach", "import asyncio; from skyvern_cdp import notebook",
     "asyncio.run(notebook.attach(SID, api_key=KEY, base_url=URL))"),
    ("notebook.launch", "import asyncio; from skyvern_cdp import notebook",
     "asyncio.run(notebook.launch(api_key=KEY, base_url=URL))"),
]
PROBE = """
import sys, time, json
URL, KEY, SID = sys.argv[1], sys.argv[2], sys.argv[3]
{imports}
import playwright.async_api, playwright.sync_api  # loaded before the clock starts
started = time.monotonic()
try:
    {call}
    outcome = "no error"
except BaseException as exc:
    outcome = type(exc).__name__
print(json.dumps({{"in_call": time.monotonic() - started, "outcome": outcome}}))
"""
CLI = [["info", SID], ["wait", SID], ["launch"], ["close", SID], ["list"]]
PYTEST_FILE = "def test_x(skyvern_page):\n    pass\n"


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def run(name: str, argv: list[str], env: dict[str, str], cwd: str | None) -> dict[str, object]:
    started = time.monotonic()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    took = time.monotonic() - started
    row: dict[str, object] = {"name": name, "process": took, "exit": done.returncode}
    last = (done.stdout.strip().splitlines() or [""])[-1]
    if last.startswith("{"):
        row.update(json.loads(last))
    else:
        err = [line for line in done.stderr.splitlines() if "error" in line.lower()]
        row["outcome"] = (err[-1] if err else last)[:90]
    return row


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parents[1],
                        help="the checkout whose skyvern_cdp to run (default: this one)")
    parser.add_argument("--url", default=None, help="the dead base URL (default: a closed port)")
    parser.add_argument("--parallel", type=int, default=3,
                        help="entry points run at once (default 3: 15 interpreters starting"
                        " together on 2 cores measure the CPU, not the rule)")
    args = parser.parse_args(argv)
    url = args.url or closed_port_url()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYVERN_", "PYTEST_"))}
    env["PYTHONPATH"] = str(args.tree.resolve())
    env["SKYVERN_API_KEY"] = KEY
    jobs: list[tuple[str, list[str], str | None]] = []
    # run from an empty directory: `python -c` puts the working directory first on sys.path
    workdir = tempfile.mkdtemp(prefix="bench-fail-fast-")
    for name, imports, call in CALLS:
        probe = PROBE.format(imports=imports, call=call)
        jobs.append((name, [sys.executable, "-c", probe, url, KEY, SID], workdir))
    for words in CLI:
        jobs.append((f"skyvern-cdp {' '.join(words)}",
                     [sys.executable, "-m", "skyvern_cdp.cli", "--base-url", url, *words],
                     workdir))
    Path(workdir, "test_remote.py").write_text(PYTEST_FILE)
    Path(workdir, "pytest.ini").write_text("[pytest]\n")
    jobs.append(("pytest --skyvern-launch",
                 [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                  "--skyvern-launch", "--skyvern-base-url", url], workdir))
    print(f"bench_fail_fast: {len(jobs)} entry points, {args.parallel} at a time, against {url}"
          f" (tree {args.tree})", file=sys.stderr, flush=True)
    if args.parallel < 1:
        parser.error("--parallel takes a whole number of at least 1")
    with ThreadPoolExecutor(args.parallel) as pool:
        rows = list(pool.map(lambda job: run(job[0], job[1], env, job[2]), jobs))
    print(f"\ntime to fail, {url}, tree {args.tree}; load average"
          f" {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| entry point | in call (s) | process (s) | outcome |")
    print("| --- | ---: | ---: | --- |")
    for row in rows:
        in_call = row.get("in_call")
        shown = f"{in_call:.1f}" if isinstance(in_call, float) else "—"
        print(f"| {row['name']} | {shown} | {row['process']:.1f} | {row.get('outcome', '')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
