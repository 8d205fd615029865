"""What an interrupt leaves behind: nothing. Ctrl-C while the sync ``launch`` is still
creating its session, and SIGTERM (what CI sends to a cancelled job) to a pytest run that
launched sessions, in one process and under pytest-xdist. All real processes, real signals.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from skyvern_cdp import SkyvernClient

from conftest import wait_for
from scripted_api import Reply, ScriptedAPI, Seen, session

if TYPE_CHECKING:
    from skyvern_cdp.local import LocalBackend

KEY = "sk-interrupt-key"
MADE = "pbs_made_while_interrupted"

LAUNCH_SCRIPT = """
import sys
from skyvern_cdp import sync_api
sys.stderr.write("launching\\n"); sys.stderr.flush()
try:
    sync_api.launch(base_url=sys.argv[1], timeout=60, close_timeout=10)
except KeyboardInterrupt:
    print("interrupted", flush=True)
    raise SystemExit(130)
print("not interrupted", flush=True)
"""


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYVERN_", "PYTEST_"))}
    env["SKYVERN_API_KEY"] = KEY
    return env


def interrupt_launch(
    api: ScriptedAPI, created: Callable[[], bool], argv: list[str] | None = None
) -> tuple[int, str, str]:
    """Run a sync ``launch`` (or ``argv``) in a child process, Ctrl-C it once ``created()``
    says the create request arrived; its (exit code, stdout, stderr)."""
    with subprocess.Popen(
        argv or [sys.executable, "-c", LAUNCH_SCRIPT, api.base_url],
        env=_child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    ) as child:
        try:
            assert wait_for(created, 30)
            child.send_signal(signal.SIGINT)  # a real Ctrl-C, mid-request
            out, err = child.communicate(timeout=30)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(10)
    return child.returncode, out, err


def test_ctrl_c_during_a_slow_create_closes_the_session_it_made() -> None:
    with ScriptedAPI() as api:
        # The create takes 3 s to answer: Ctrl-C lands while it is in flight.
        api.script("POST", "/v1/browser_sessions", Reply(200, session(MADE), delay=3.0))
        api.script("POST", f"/v1/browser_sessions/{MADE}/close",
                   Reply(200, {"message": "Browser session closed"}))
        code, out, err = interrupt_launch(
            api, lambda: api.count("POST", "/v1/browser_sessions") == 1
        )
        closes = [r for r in api.requests if r.path.endswith(f"{MADE}/close")]
    assert code == 130, (out, err)
    assert out.strip() == "interrupted"
    assert len(closes) == 1, "the session the interrupted create made was not closed"
    created = next(r for r in api.requests if r.method == "POST" and r.path.endswith("sessions"))
    assert closes[0].at >= created.at + 3.0  # closed once its id was known


def test_ctrl_c_before_the_create_answers_and_exit_before_it_does_still_closes(
    tmp_path: Path,
) -> None:
    """The closing side waits for the answer (bounded): a create answering 1.5 s after the
    interrupt is still closed before the process ends."""
    seen: list[Seen] = []

    def slow_create(request: Seen) -> Reply:
        seen.append(request)
        return Reply(200, session(MADE), delay=2.5)

    with ScriptedAPI() as api:
        api.handle("POST", "/v1/browser_sessions", slow_create)
        api.script("POST", f"/v1/browser_sessions/{MADE}/close", Reply(200, {"message": "ok"}))
        code, out, err = interrupt_launch(api, lambda: bool(seen))
        assert code == 130, (out, err)
        assert api.count("POST", f"/v1/browser_sessions/{MADE}/close") == 1


def test_ctrl_c_while_the_relay_creates_its_session_closes_it() -> None:
    with ScriptedAPI() as api:
        api.script("POST", "/v1/browser_sessions", Reply(200, session(MADE), delay=3.0))
        api.script("POST", f"/v1/browser_sessions/{MADE}/close", Reply(200, {"message": "ok"}))
        argv = [sys.executable, "-m", "skyvern_cdp.cli", "--base-url", api.base_url, "relay",
                "--launch", "--port", "0"]
        code, out, err = interrupt_launch(
            api, lambda: api.count("POST", "/v1/browser_sessions") == 1, argv
        )
        assert code == 130, (out, err)
        assert out == ""  # it never served
        assert api.count("POST", f"/v1/browser_sessions/{MADE}/close") == 1
        assert KEY not in out + err


# -- SIGTERM to a pytest run ------------------------------------------------------------------

BLOCKING_TEST = """
import os, threading
import pytest

@pytest.mark.parametrize("n", range(4))
def test_blocks(skyvern_session, pytestconfig, n):
    mark = pytestconfig.rootpath / f"started-{os.getpid()}"
    mark.write_text(skyvern_session.browser_session_id)
    threading.Event().wait(120)
"""


@pytest.fixture
def client(backend: LocalBackend) -> Iterator[SkyvernClient]:
    with SkyvernClient(backend.api_key, backend.base_url) as made:
        yield made


def _live(client: SkyvernClient) -> set[str]:
    return {s.browser_session_id for s in client.list_browser_sessions(timeout=10)}


@pytest.mark.browser
@pytest.mark.parametrize("workers", [0, 2], ids=["one-process", "xdist-2"])
def test_sigterm_to_a_pytest_run_closes_every_launched_session(
    workers: int, tmp_path: Path, backend: LocalBackend, client: SkyvernClient
) -> None:
    (tmp_path / "test_blocking.py").write_text(textwrap.dedent(BLOCKING_TEST))
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = _child_env()
    env["SKYVERN_API_KEY"] = backend.api_key or ""
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--skyvern-launch",
            "--skyvern-base-url", backend.base_url]
    if workers:
        argv += ["-n", str(workers)]

    def started() -> dict[str, str]:
        return {p.name: p.read_text() for p in tmp_path.glob("started-*") if p.read_text()}

    before = _live(client)
    with subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    ) as proc:
        try:
            assert wait_for(lambda: len(started()) >= max(1, workers), 90), started()
            launched = set(started().values())
            assert launched <= _live(client) - before  # running, mid-test
            proc.send_signal(signal.SIGTERM)  # to pytest itself (the controller under xdist)
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    text = out.decode(errors="replace")
    assert proc.returncode == pytest.ExitCode.INTERRUPTED, text[-3000:]
    assert len(launched) == max(1, workers)
    left = _live(client) - before
    assert left == set(), f"left open: {left}\n{text[-3000:]}"
    for sid in launched:
        assert client.get_browser_session(sid, timeout=10).status == "completed"
    print(json.dumps({"workers": workers, "closed": sorted(launched)}))
