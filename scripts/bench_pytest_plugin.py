"""Time the pytest plugin: what it costs when inactive, per fixture, and on the example suite.

    .venv/bin/python scripts/bench_pytest_plugin.py              # a few minutes; markdown tables
    .venv/bin/python scripts/bench_pytest_plugin.py --runs 9     # more runs per measure

1. Inactive overhead: ``pytest`` on a 20-test suite that does not use the plugin, with the
   plugin loaded and with ``-p no:skyvern_cdp`` (runs alternate; medians), and the import
   time of ``skyvern_cdp.pytest_plugin`` alone (``-X importtime``, after pytest and
   pytest-asyncio, which pytest has loaded by then).
2. Fixtures: setup time of ``skyvern_page`` (the first test also launches and attaches) and of
   ``skyvern_async_page`` (its own driver and attach per test), from ``--durations``.
3. The example suite (``examples/pytest_suite``) against ``skyvern-cdp serve``: wall time with
   ``--skyvern-launch``, alone and with ``-n 2``, and the sessions left open afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
INI = "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"

PLAIN_SUITE = """
import pytest

@pytest.mark.parametrize("n", range(20))
def test_plain(n):
    assert n >= 0
"""

FIXTURE_SUITE = """
import pytest

@pytest.mark.parametrize("n", range(6))
def test_sync_page(skyvern_page, n):
    skyvern_page.goto("data:text/html,<title>s</title>")

@pytest.mark.parametrize("n", range(6))
async def test_async_page(skyvern_async_page, n):
    await skyvern_async_page.goto("data:text/html,<title>a</title>")
"""


def pytest_argv(*args: str) -> list[str]:
    return [PYTHON, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args]


def timed(argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None) -> tuple[float, str]:
    elapsed, _, out = timed_cpu(argv, cwd, env)
    return elapsed, out


def timed_cpu(
    argv: Sequence[str], cwd: Path, env: dict[str, str] | None = None
) -> tuple[float, float, str]:
    """Wall seconds, CPU seconds (user + system, the process and its children), output."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    done = subprocess.run(
        argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if done.returncode != 0:
        raise SystemExit(f"failed ({done.returncode}): {' '.join(argv)}\n{done.stdout[-3000:]}")
    return elapsed, cpu, done.stdout


def live_sessions(base_url: str) -> int:
    with urllib.request.urlopen(f"{base_url}/v1/browser_sessions", timeout=10) as answer:
        return len(json.load(answer))


def start_serve() -> tuple[subprocess.Popen[str], str]:
    argv = [
        str(Path(PYTHON).with_name("skyvern-cdp")),
        "serve",
        "--port",
        "0",
        *(f"--chromium-arg={arg}" for arg in CLOSED_NETWORK_ARGS),
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout is not None
    base_url = proc.stdout.readline().strip()
    if not base_url.startswith("http"):
        proc.kill()
        raise SystemExit("skyvern-cdp serve did not print its base URL")
    return proc, base_url


IMPORT_PROBE = "import pytest, pytest_asyncio; import skyvern_cdp.pytest_plugin"


def import_cost(runs: int) -> tuple[float, float]:
    """Median self+children microseconds of ``skyvern_cdp.pytest_plugin`` and of the package."""
    plugin, package = [], []
    for _ in range(runs):
        done = subprocess.run(
            [PYTHON, "-X", "importtime", "-c", IMPORT_PROBE],
            capture_output=True, text=True, check=True,
        )
        for line in done.stderr.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)$", line)
            if not match:
                continue
            name = match.group(3)
            if name == "skyvern_cdp.pytest_plugin":
                plugin.append(int(match.group(1)))
            elif name == "skyvern_cdp" and len(match.group(2)) <= 3:
                package.append(int(match.group(1)))
    return statistics.median(plugin) / 1000, statistics.median(package) / 1000


def durations(output: str, pattern: str) -> list[float]:
    found = []
    for line in output.splitlines():
        match = re.match(r"\s*([\d.]+)s setup\s+(\S+)", line)
        if match and re.search(pattern, match.group(2)):
            found.append((match.group(2), float(match.group(1))))
    return [seconds for _, seconds in sorted(found)]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per measure (default 5)")
    parser.add_argument("--only-inactive", action="store_true", help="measure 1. only")
    args = parser.parse_args(argv)
    runs = max(1, args.runs)
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYVERN_")}

    with tempfile.TemporaryDirectory(prefix="bench-plugin-") as tmp:
        work = Path(tmp)
        (work / "pytest.ini").write_text(INI)
        (work / "test_plain.py").write_text(PLAIN_SUITE)
        wall: dict[bool, list[float]] = {True: [], False: []}
        cpu: dict[bool, list[float]] = {True: [], False: []}
        for i in range(runs * 4):
            use = i % 2 == 0
            extra = () if use else ("-p", "no:skyvern_cdp")
            seconds, cpu_seconds, _ = timed_cpu(pytest_argv(*extra, "test_plain.py"), work, env)
            wall[use].append(seconds)
            cpu[use].append(cpu_seconds)
        plugin_ms, package_ms = import_cost(runs)
        print(f"## Inactive plugin (20 plain tests, {runs * 2} runs each, alternating)\n")
        print("| measure | plugin loaded | `-p no:skyvern_cdp` | difference |")
        print("| --- | --- | --- | --- |")
        for label, samples in (("wall", wall), ("CPU (user+sys)", cpu)):
            on, off = statistics.median(samples[True]), statistics.median(samples[False])
            print(f"| {label}, median | {on:.3f} s | {off:.3f} s | {(on - off) * 1000:+.0f} ms |")
        print()
        print("| import | median |")
        print("| --- | --- |")
        print(f"| `skyvern_cdp.pytest_plugin` (incl. package) | {plugin_ms:.0f} ms |")
        print(f"| of which `skyvern_cdp` (the package) | {package_ms:.0f} ms |")

        if args.only_inactive:
            return 0
        serve, base_url = start_serve()
        try:
            run_env = dict(env, SKYVERN_BASE_URL=base_url)
            (work / "test_fixtures.py").write_text(FIXTURE_SUITE)
            first, sync_rest, async_all = [], [], []
            for _ in range(runs):
                _, out = timed(
                    pytest_argv("--skyvern-launch", "--durations=0", "test_fixtures.py"),
                    work, run_env,
                )
                sync = durations(out, r"test_sync_page")
                first.append(max(sync))
                sync_rest.extend(sorted(sync)[:-1])
                async_all.extend(durations(out, r"test_async_page"))
            print("\n## Fixture setup (launch mode, skyvern-cdp serve, 6 sync + 6 async tests)\n")
            print("| fixture | median setup |")
            print("| --- | --- |")
            print(f"| first `skyvern_page` (create, wait, driver, attach) | "
                  f"{statistics.median(first):.3f} s |")
            print(f"| later `skyvern_page` (new context + page) | "
                  f"{statistics.median(sync_rest) * 1000:.0f} ms |")
            print(f"| `skyvern_async_page` (driver + attach + context + page) | "
                  f"{statistics.median(async_all) * 1000:.0f} ms |")

            example = ROOT / "examples" / "pytest_suite"
            print("\n## examples/pytest_suite against skyvern-cdp serve\n")
            print("| run | median wall | passed runs | sessions open after |")
            print("| --- | --- | --- | --- |")
            for label, extra in (("--skyvern-launch", ()), ("--skyvern-launch -n 2", ("-n", "2"))):
                walls, left = [], 0
                for _ in range(runs):
                    seconds, _ = timed(
                        pytest_argv("--skyvern-launch", "--skyvern-base-url", base_url, *extra),
                        example, env,
                    )
                    walls.append(seconds)
                    left = max(left, live_sessions(base_url))
                print(f"| `{label}` | {statistics.median(walls):.2f} s | {runs}/{runs} | {left} |")
        finally:
            serve.send_signal(signal.SIGINT)
            serve.wait(60)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
