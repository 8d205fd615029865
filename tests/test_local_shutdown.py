"""Shutdown leaves nothing behind: no Chromium, no directory, whatever way the backend ends."""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

pytestmark = pytest.mark.browser


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.02)
    return True


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    """The next stdout line of ``proc``, or fail after ``timeout`` seconds."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(timeout):
            raise AssertionError(f"no output within {timeout} s")
    line = proc.stdout.readline()
    assert line, f"the process exited early with code {proc.wait(5)}"
    return line.strip()


def wait_running(base_url: str, sid: str, key: str | None = None) -> dict[str, Any]:
    headers = {"x-api-key": key} if key else {}
    deadline = time.monotonic() + 30
    while True:
        body: dict[str, Any] = httpx.get(
            f"{base_url}/v1/browser_sessions/{sid}", headers=headers, trust_env=False
        ).json()
        if body["status"] == "running":
            return body
        assert body["status"] == "created", body
        assert time.monotonic() < deadline, body
        time.sleep(0.02)


def chromiums_under(pid: int, but: Iterable[int] = ()) -> dict[int, Path]:
    """Chromium processes below ``pid`` (less those of ``but``) and their temporary directories.

    ``but`` names the ones that were there before the test: in a worker of the whole suite,
    the shared backend's and other modules' Chromiums are below this process too.
    """
    found = {}
    skip = set(but)
    for child in psutil.Process(pid).children(recursive=True):
        if child.pid in skip:
            continue
        try:
            for arg in child.cmdline():
                if arg.startswith("--user-data-dir="):
                    found[child.pid] = Path(arg.split("=", 1)[1]).parent
        except psutil.Error:
            continue
    return found


def nothing_left(pids: list[int], dirs: list[Path]) -> bool:
    return all(gone(pid) for pid in pids) and not any(path.exists() for path in dirs)


def test_leaving_the_context_manager_stops_everything() -> None:
    others = chromiums_under(os.getpid())
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS) as backend:
        ids = [
            httpx.post(f"{backend.base_url}/v1/browser_sessions", trust_env=False).json()[
                "browser_session_id"
            ]
            for _ in range(2)
        ]
        bodies = [wait_running(backend.base_url, sid) for sid in ids]
        chromiums = chromiums_under(os.getpid(), but=others)
        assert len(backend.live_chromium_pids()) == 2
        assert set(backend.live_chromium_pids()) <= set(chromiums)
        root = backend.root
        assert root is not None
        assert all(Path(b["download_path"]).is_relative_to(root) for b in bodies)
        watchdog = backend.watchdog_pid
        assert watchdog is not None
    # Everything is gone by the time the with-block is left: no waiting.
    assert nothing_left([*chromiums, watchdog], [*chromiums.values(), root])
    assert backend.live_chromium_pids() == []


async def test_async_with_stops_everything() -> None:
    others = chromiums_under(os.getpid())
    async with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS) as backend:
        async with httpx.AsyncClient(base_url=backend.base_url, trust_env=False) as http:
            sid = (await http.post("/v1/browser_sessions")).json()["browser_session_id"]
            for _ in range(1500):
                if (await http.get(f"/v1/browser_sessions/{sid}")).json()["status"] == "running":
                    break
                await http.get("/v1/browser_sessions")  # a request, not a sleep
            chromiums = chromiums_under(os.getpid(), but=others)
            assert len(chromiums) >= 1
        root = backend.root
        assert root is not None
    assert nothing_left(list(chromiums), [*chromiums.values(), root])


@pytest.fixture
def serve_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ, SKYVERN_API_KEY="sk-serve-test", PYTHONUNBUFFERED="1")
    env.pop("SKYVERN_BASE_URL", None)
    env["XDG_DATA_HOME"] = str(tmp_path / "data")  # serve's default --profiles-dir: not ~
    return env


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_serve_stops_everything_on_a_signal(sig: signal.Signals, serve_env: dict[str, str]) -> None:
    argv = [
        sys.executable,
        "-m",
        "skyvern_cdp.cli",
        "serve",
        "--port",
        "0",
        f"--chromium-arg={CLOSED_NETWORK_ARGS[0]}",
    ]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=serve_env)
    try:
        base_url = read_line(proc, 30)
        assert base_url.startswith("http://127.0.0.1:")
        key = serve_env["SKYVERN_API_KEY"]
        refused = httpx.get(f"{base_url}/v1/browser_sessions", trust_env=False)
        assert refused.status_code == 403, "the key comes from SKYVERN_API_KEY"
        sid = httpx.post(
            f"{base_url}/v1/browser_sessions", headers={"x-api-key": key}, trust_env=False
        ).json()["browser_session_id"]
        body = wait_running(base_url, sid, key)
        root = Path(body["download_path"]).parents[1]
        chromiums = chromiums_under(proc.pid)
        helpers = [c.pid for c in psutil.Process(proc.pid).children()]
        assert chromiums
        proc.send_signal(sig)
        assert proc.wait(30) == 0
        _, err = proc.communicate(timeout=5)
        assert "stopped" in err and "Traceback" not in err
        assert nothing_left([*chromiums, *helpers], [*chromiums.values(), root])
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--host", "0.0.0.0"], "--allow-remote"),
        (["--max-sessions", "-1"], "max_sessions must be >= 0"),
        (["--ready-delay", "-2"], "ready_delay must be >= 0"),
    ],
)
def test_serve_refuses_bad_options(serve_env: dict[str, str], args: list[str], says: str) -> None:
    argv = [sys.executable, "-m", "skyvern_cdp.cli", "serve", "--port", "0", *args]
    done = subprocess.run(argv, capture_output=True, text=True, env=serve_env, timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert says in done.stderr


CHILD = textwrap.dedent(
    """
    import json, logging, os, sys, time
    import httpx
    logging.basicConfig(level=logging.WARNING)
    from skyvern_cdp.local import LocalBackend
    from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS) as backend:
        sid = httpx.post(backend.base_url + "/v1/browser_sessions", trust_env=False).json()[
            "browser_session_id"]
        forked = 0
        if "--fork" in sys.argv:  # a child that outlives us must not keep the watchdog's pipe
            url = backend.base_url + "/v1/browser_sessions/" + sid
            while httpx.get(url, trust_env=False).json()["status"] == "created":
                time.sleep(0.02)  # (a fork during Popen would stall Popen: fork once running)
            forked = os.fork()
            if forked == 0:
                time.sleep(60)
                os._exit(0)
        print(json.dumps({"base_url": backend.base_url, "id": sid, "forked": forked,
                          "watchdog": backend.watchdog_pid, "root": str(backend.root)}),
              flush=True)
        while True:
            time.sleep(0.5)
    """
)


@pytest.mark.parametrize(
    ("sig", "fork"),
    [
        (signal.SIGKILL, False),
        (signal.SIGTERM, False),
        (signal.SIGINT, False),
        (signal.SIGKILL, True),
    ],
    ids=["sigkill", "sigterm", "ctrl-c", "sigkill-with-a-forked-child"],
)
def test_a_dying_parent_leaves_no_chromium_and_no_directory(
    sig: signal.Signals, fork: bool
) -> None:
    """SIGKILL and SIGTERM give Python no chance to clean up: the watchdog does it."""
    argv = [sys.executable, "-c", CHILD, *(["--fork"] if fork else [])]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    forked = 0
    try:
        info = json.loads(read_line(proc, 30))
        forked = info["forked"]
        try:
            body = wait_running(info["base_url"], info["id"])
        except AssertionError as exc:
            proc.kill()
            raise AssertionError(f"{exc}; the child's stderr: {proc.communicate()[1]}") from None
        chromiums = chromiums_under(proc.pid)
        assert len(set(chromiums.values())) == 1, "one session, one Chromium directory"
        dirs = [*chromiums.values(), Path(info["root"]), Path(body["download_path"])]
        assert all(path.is_dir() for path in dirs)
        proc.send_signal(sig)
        proc.wait(30)
        pids = [*chromiums, info["watchdog"]]
        assert wait_for(lambda: nothing_left(pids, dirs), 20.0), {
            "alive": [pid for pid in pids if not gone(pid)],
            "dirs": [str(path) for path in dirs if path.exists()],
        }
    finally:
        if forked:
            with contextlib.suppress(ProcessLookupError):
                os.kill(forked, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
        if proc.stderr is not None:
            proc.stderr.close()
