"""The ``skyvern-cdp`` command: real processes, a real HTTP server, real Chromium at the end."""

from __future__ import annotations

import contextlib
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from skyvern_cdp.cli import main

from conftest import LOCAL_API_KEY, wait_for
from scripted_api import Reply, ScriptedAPI, Seen, session

SID = "pbs_cli1"
PATH = f"/v1/browser_sessions/{SID}"
ADDRESS = "ws://127.0.0.1:9222/devtools/browser/abc?token=s3cr3t-t0ken"
KEY = "sk-cli-secret-key"

#: The installed console script, as a user runs it.
SCRIPT = Path(sys.executable).with_name("skyvern-cdp")


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A clean environment without SKYVERN_* (in this process and for child processes)."""
    for name in ("SKYVERN_BASE_URL", "SKYVERN_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    return dict(os.environ)


@pytest.fixture
def api(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedAPI]:
    """A scripted Skyvern API that SKYVERN_BASE_URL / SKYVERN_API_KEY point at."""
    with ScriptedAPI() as server:
        for name, value in (("SKYVERN_BASE_URL", server.base_url), ("SKYVERN_API_KEY", KEY)):
            monkeypatch.setenv(name, value)
            env[name] = value
        yield server


def run(args: list[str], env: dict[str, str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60, **kwargs
    )


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run the command in this process: (exit code, stdout, stderr)."""
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def ready_after(seconds: float, **fields: Any) -> Callable[[Seen], Reply]:
    """A GET handler: ``created`` until ``seconds`` after the first poll, then ready."""
    first: list[float] = []

    def handle(seen: Seen) -> Reply:
        first.append(seen.at)
        if seen.at - first[0] < seconds:
            return Reply(200, session(SID))
        return Reply(200, session(SID, ready=True, browser_address=ADDRESS, **fields))

    return handle


def assert_one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert lines, "nothing on stderr"
    assert "Traceback" not in err
    assert KEY not in err
    last = lines[-1]
    assert re.match(r"skyvern-cdp( \w+)?: error: \S", last), err
    return last


# ---- usage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "required: COMMAND"),
        (["info"], "required: ID"),
        (["info", "nope"], "must start with 'pbs_'"),
        (["info", "pbs_a/../b"], "may contain only"),
        (["wait", SID, "--timeout", "0"], "positive number of seconds"),
        (["wait", SID, "--timeout", "soon"], "not a number of seconds"),
        (["extend", SID, "0"], "at least 1 minute"),
        (["extend", SID, "1.5"], "whole number of minutes"),
        (["launch", "--browser-type", "firefox"], "invalid choice"),
        (["launch", "--timeout-minutes", "2"], "greater than or equal to 5"),
        (["screenshot", SID, "/no/such/dir/shot.png"], "no such directory"),
        (["screenshot", SID, "shot.gif"], "must end in .png"),
        (["--base-url", "ftp://x", "info", SID], "must start with http"),
        (["--base-url", "http://[::1", "info", SID], "base_url is not a valid URL"),
        (["--base-url", "http://a b", "info", SID, "--api-key", KEY], "invalid host"),
        (["--base-url", "http://[::1", "launch"], "base_url is not a valid URL"),
        (["info", SID, "--base-url", "http://example.com", "--api-key", KEY], "plain http"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2_before_any_request(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str], argv: list[str], says: str
) -> None:
    code, out, err = cli(capsys, *argv)
    assert code == 2
    assert out == ""
    assert says in assert_one_error_line(err)
    assert api.requests == []


def test_launch_offers_every_browser_type_of_the_api() -> None:
    from skyvern_cdp.cli import BROWSER_TYPES
    from skyvern_cdp.models import PersistentBrowserType

    assert set(BROWSER_TYPES) == {t.value for t in PersistentBrowserType}


def test_global_options_work_before_and_after_the_command(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    api.script("GET", PATH, Reply(200, session(SID, ready=True, browser_address=ADDRESS)))
    monkeypatch.delenv("SKYVERN_BASE_URL")
    before = ["--base-url", api.base_url, "info", SID]
    after = ["info", SID, "--base-url", api.base_url]
    for argv in (before, after):
        code, out, _ = cli(capsys, *argv)
        assert code == 0
        assert json.loads(out)["browser_session_id"] == SID
    assert [r.headers["x-api-key"] for r in api.requests] == [KEY, KEY]


# ---- info -----------------------------------------------------------------------------------


def test_info_prints_the_session_with_its_secrets_redacted(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    presigned = "https://files.example/f.pdf?X-Amz-Credential=AKIA1&X-Amz-Signature=f00d"
    body = session(
        SID, ready=True, browser_address=ADDRESS, new_field=7,
        downloaded_files=[{"url": presigned, "filename": "f.pdf"}],
    )
    api.script("GET", PATH, Reply(200, body))
    code, out, _ = cli(capsys, "info", SID)
    assert code == 0
    shown = json.loads(out)
    assert shown["status"] == "running"
    assert shown["new_field"] == 7  # fields the library does not know are kept
    assert shown["browser_address"] == "ws://127.0.0.1:9222/<redacted>"
    assert shown["downloaded_files"][0]["url"] == "https://files.example/f.pdf?<redacted>"
    assert "s3cr3t" not in out
    assert "f00d" not in out

    code, out, _ = cli(capsys, "info", SID, "--show-secrets")
    assert code == 0
    shown = json.loads(out)
    assert shown["browser_address"] == ADDRESS
    assert shown["downloaded_files"][0]["url"] == presigned


# ---- wait -----------------------------------------------------------------------------------


def test_wait_draws_a_live_status_line_on_a_terminal(api: ScriptedAPI, env: dict[str, str]) -> None:
    api.handle("GET", PATH, ready_after(0.8))
    master, slave = pty.openpty()
    with subprocess.Popen(
        [str(SCRIPT), "wait", SID],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    ) as proc:
        os.close(slave)
        terminal = b""
        while True:
            ready, _, _ = select.select([master], [], [], 30)
            assert ready, "no output on the terminal for 30 s"
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            terminal += chunk
        assert proc.stdout is not None
        out = proc.stdout.read().decode()
        assert proc.wait(30) == 0
    os.close(master)
    assert out == ADDRESS + "\n"  # stdout is not a terminal: just the address
    text = terminal.decode()
    # One line redrawn in place: a carriage return (not a newline) before each redraw,
    # with the status and a growing elapsed time; the last redraw says it is ready.
    redraws = re.findall(rf"(?<!\n)\r{SID}: created +(\d+\.\d)s", text)
    assert len(redraws) >= 3, text
    assert len(set(redraws)) >= 2, text
    assert re.search(rf"\r{SID}: ready +\d+\.\ds *\r\n$", text), text
    assert "s3cr3t" not in text


def test_wait_piped_prints_plain_lines_and_only_the_address(
    api: ScriptedAPI, env: dict[str, str], tmp_path: Path
) -> None:
    api.handle("GET", PATH, ready_after(0.3))
    progress = tmp_path / "progress.txt"
    script = 'addr=$("$0" wait "$1" 2>"$2") && printf "got:%s" "$addr"'
    done = subprocess.run(
        ["bash", "-c", script, str(SCRIPT), SID, str(progress)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"got:{ADDRESS}"
    lines = progress.read_text().splitlines()
    assert "\r" not in progress.read_text()
    assert re.fullmatch(rf"{SID}: created \(\d+\.\ds\)", lines[0]), lines
    assert re.fullmatch(rf"{SID}: ready \(\d+\.\ds\)", lines[-1]), lines


def test_wait_json_prints_the_ready_session(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.handle("GET", PATH, ready_after(0.0))
    code, out, _ = cli(capsys, "wait", SID, "--json")
    assert code == 0
    shown = json.loads(out)
    assert (shown["status"], shown["browser_address"]) == ("running", ADDRESS)


@pytest.mark.parametrize(
    ("reply", "code", "says"),
    [
        (Reply(404, {"detail": f"Browser session {SID} not found"}), 3, "was not found"),
        (Reply(403, {"detail": "Could not validate credentials"}), 3, "check the API key"),
        (Reply(200, session(SID, status="failed")), 4, "has ended (status 'failed')"),
        (Reply(200, session(SID)), 5, "was not ready within"),
        (Reply(200, session(SID, status="running", started_at=session(SID)["created_at"])), 5,
         "never set a browser_address"),
    ],
    ids=["not-found", "auth", "ended", "timed-out", "no-address"],
)
def test_wait_exit_codes(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str], reply: Reply, code: int, says: str
) -> None:
    api.script("GET", PATH, reply)
    got, out, err = cli(capsys, "wait", SID, "--timeout", "0.4")
    assert got == code
    assert out == ""
    assert says in assert_one_error_line(err)


def test_a_real_process_exits_with_the_code_and_one_line(
    api: ScriptedAPI, env: dict[str, str]
) -> None:
    api.script("GET", PATH, Reply(200, session(SID, status="timeout")))
    done = run(["wait", SID], env)
    assert done.returncode == 4
    assert done.stdout == ""
    assert "has ended (status 'timeout')" in assert_one_error_line(done.stderr)


def test_an_unreachable_api_is_one_clear_line(
    env: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with ScriptedAPI() as gone:
        url = gone.base_url  # a port that was just closed
    code, _, err = cli(capsys, "--base-url", url, "info", SID, "--timeout", "0.5")
    assert code == 1
    assert f"nothing answered at {url}" in assert_one_error_line(err)


# ---- commands that only talk to the API start without Playwright ---------------------------


def test_api_commands_never_import_playwright(api: ScriptedAPI, env: dict[str, str]) -> None:
    ready = session(SID, ready=True, browser_address=ADDRESS)
    api.script("GET", PATH, Reply(200, ready))
    api.script("GET", "/v1/browser_sessions", Reply(200, [ready]))
    api.script("POST", "/v1/browser_sessions", Reply(200, session(SID)))
    api.script("POST", f"{PATH}/close", Reply(200, {"message": "Browser session closed"}))
    api.script("POST", f"{PATH}/extend", Reply(200, {**ready, "timeout": 90}))
    commands = [["info", SID], ["wait", SID], ["close", SID], ["extend", SID, "30"], ["list"],
                ["launch"]]
    procs = [
        subprocess.Popen(
            [sys.executable, "-X", "importtime", str(SCRIPT), *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    results = [proc.communicate(timeout=60)[1] for proc in procs]
    for command, proc, err in zip(commands, procs, results, strict=True):
        assert proc.returncode == 0, (command, err[-500:])
        imported = {
            line.split("|")[-1].strip()
            for line in err.splitlines()
            if line.startswith("import time:")
        }
        assert "skyvern_cdp.client" in imported  # the measurement itself works
        heavy = {m for m in imported if m.split(".")[0] in ("playwright", "fastapi", "uvicorn")}
        assert not heavy, f"{command[0]} imported {sorted(heavy)[:5]}"


# ---- launch ---------------------------------------------------------------------------------


def test_launch_closes_a_session_that_does_not_become_ready(
    api: ScriptedAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    api.script("POST", "/v1/browser_sessions", Reply(200, session(SID)))
    api.script("GET", PATH, Reply(200, session(SID)))
    api.script("POST", f"{PATH}/close", Reply(200, {"message": "Browser session closed"}))
    code, out, err = cli(capsys, "launch", "--ready-timeout", "0.4", "--url", "http://127.0.0.1/")
    assert code == 5
    assert out == ""
    assert f"closed session {SID}" in err
    assert_one_error_line(err)
    assert api.count("POST", f"{PATH}/close") == 1
    create = next(r for r in api.requests if r.method == "POST" and r.path.endswith("sessions"))
    assert json.loads(create.body) == {"url": "http://127.0.0.1/"}


def test_an_interrupted_launch_closes_its_session(api: ScriptedAPI, env: dict[str, str]) -> None:
    api.script("POST", "/v1/browser_sessions", Reply(200, session(SID)))
    api.script("GET", PATH, Reply(200, session(SID)))
    api.script("POST", f"{PATH}/close", Reply(200, {"message": "Browser session closed"}))
    with subprocess.Popen(
        [str(SCRIPT), "launch"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as proc:
        assert wait_for(lambda: api.count("GET", PATH) >= 1, timeout=30)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert out == ""
    assert err.splitlines()[-1] == "skyvern-cdp: interrupted"
    assert "Traceback" not in err
    assert api.count("POST", f"{PATH}/close") == 1


# ---- the whole life of a session, on the local backend with real Chromium ------------------


class _Page(BaseHTTPRequestHandler):
    BODY = (
        b"<!doctype html><title>cli smoke</title><body style='margin:0;background:#e33'>"
        b"<h1 style='font:64px sans-serif;color:#fff'>skyvern-cdp screenshot</h1>"
        b"<div style='height:300px;background:linear-gradient(90deg,#03f,#0c6)'></div>"
    )

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(self.BODY)))
        self.end_headers()
        self.wfile.write(self.BODY)

    def log_message(self, format: str, *args: Any) -> None:
        """No request log on stderr."""


@contextlib.contextmanager
def serve_page() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.browser
def test_a_session_from_launch_to_close(
    backend: Any, env: dict[str, str], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    env.update(SKYVERN_BASE_URL=backend.base_url, SKYVERN_API_KEY=LOCAL_API_KEY)
    monkeypatch.setenv("SKYVERN_BASE_URL", backend.base_url)
    monkeypatch.setenv("SKYVERN_API_KEY", LOCAL_API_KEY)
    with serve_page() as url:
        launched = run(["launch", "--timeout-minutes", "10", "--url", url], env)
        assert launched.returncode == 0, launched.stderr
        sid, address = launched.stdout.split()
        try:
            assert address.startswith("ws://127.0.0.1:")

            code, out, _ = cli(capsys, "info", sid)
            assert code == 0
            assert json.loads(out)["timeout"] == 10
            assert "devtools" not in out  # the address's path is redacted

            code, out, _ = cli(capsys, "list")
            assert code == 0
            assert re.search(rf"^{sid} +running +10 min ", out, re.M), out

            code, out, _ = cli(capsys, "extend", sid, "5")
            assert (code, out) == (0, f"{sid}: timeout is now 15 minutes\n")

            shot = tmp_path / "shot.png"
            code, out, err = cli(capsys, "screenshot", sid, str(shot), "--json")
            assert code == 0, err
            assert json.loads(out) == {"path": str(shot), "bytes": shot.stat().st_size, "url": url}
            png = shot.read_bytes()
            assert png[:8] == b"\x89PNG\r\n\x1a\n"
            width, height = struct.unpack(">II", png[16:24])
            assert width > 100 and height > 100
            assert len(png) > 3000  # a page with content, not an empty image

            # The screenshot detached without ending the session.
            code, out, _ = cli(capsys, "wait", sid, "--timeout", "10")
            assert (code, out) == (0, address + "\n")
        finally:
            code, out, _ = cli(capsys, "close", sid, "--json")
    assert code == 0
    assert json.loads(out) == {"browser_session_id": sid, "message": "Browser session closed"}

    code, out, err = cli(capsys, "wait", sid)
    assert code == 4
    assert "has ended (status 'completed')" in assert_one_error_line(err)
    code, out, _ = cli(capsys, "list", "--json")
    assert code == 0
    assert sid not in [s["browser_session_id"] for s in json.loads(out)]


def test_verbose_logs_go_to_stderr_without_secrets(api: ScriptedAPI, env: dict[str, str]) -> None:
    api.handle("GET", PATH, ready_after(0.2))
    done = run(["-v", "wait", SID, "--api-key", KEY], env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ADDRESS + "\n"
    assert re.search(r"^DEBUG skyvern_cdp\.client: GET /v1/browser_sessions/", done.stderr, re.M)
    assert KEY not in done.stderr
    assert "s3cr3t" not in done.stderr
