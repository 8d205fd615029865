"""Session recordings of the local backend: a real video of what the page showed, served safely.

Real Chromium, real Playwright, a real HTTP server; the videos are decoded with PyAV and
their frames' colours read with Pillow.
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from playwright.sync_api import Page, sync_playwright

from skyvern_cdp.errors import InvalidArgumentError, InvalidArgumentTypeError
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS
from skyvern_cdp.local.tokens import session_token

pytestmark = pytest.mark.browser

Check = Callable[[Any], Any]
RED, BLUE, GREEN = (255, 0, 0), (0, 0, 255), (0, 128, 0)


def page_url(color: str) -> str:
    return f"data:text/html,<body style='margin:0;background:{color}'>recorded</body>"


def client(backend: LocalBackend) -> httpx.Client:
    headers = {"x-api-key": backend.api_key} if backend.api_key else {}
    return httpx.Client(base_url=backend.base_url, headers=headers, trust_env=False, timeout=30)


def create(http: httpx.Client, url: str) -> dict[str, Any]:
    body: dict[str, Any] = http.post("/v1/browser_sessions", json={"url": url}).json()
    sid = body["browser_session_id"]
    deadline = time.monotonic() + 30
    while body["status"] != "running":
        assert body["status"] == "created" and time.monotonic() < deadline, body
        time.sleep(0.02)
        body = http.get(f"/v1/browser_sessions/{sid}").json()
    return body


def repainted(page: Page) -> None:
    """Return once the page has painted its current state (two animation frames later)."""
    page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


def paint(page: Page, color: str) -> tuple[float, float]:
    """Set the page's colour; the wall-clock times just before and once it has painted."""
    before = time.time()
    page.evaluate(f"document.body.style.background = '{color}'")
    repainted(page)
    return before, time.time()


def decode(data: bytes) -> list[tuple[float, tuple[int, int, int]]]:
    """Each frame's time (s) and the colour at the centre of the video."""
    frames = []
    with av.open(io.BytesIO(data)) as container:
        for frame in container.decode(video=0):
            image = frame.to_image()
            pixel = image.getpixel((image.width // 2, image.height // 2))
            assert isinstance(pixel, tuple)
            frames.append((float(frame.time or 0.0), (pixel[0], pixel[1], pixel[2])))
    return frames


def near(pixel: tuple[int, int, int], color: tuple[int, int, int]) -> bool:
    return all(abs(a - b) <= 24 for a, b in zip(pixel, color, strict=True))


def first_time(frames: list[tuple[float, tuple[int, int, int]]], color: tuple[int, int, int]
               ) -> float:
    times = [t for t, pixel in frames if near(pixel, color)]
    assert times, f"no frame shows {color}: {frames}"
    return times[0]


def seconds_since(start: str, moment: float) -> float:
    return moment - datetime.fromisoformat(start).timestamp()


def close(http: httpx.Client, sid: str) -> dict[str, Any]:
    assert http.post(f"/v1/browser_sessions/{sid}/close").status_code == 200
    body: dict[str, Any] = http.get(f"/v1/browser_sessions/{sid}").json()
    return body


@pytest.fixture
def playwright_cdp() -> Iterator[Callable[[dict[str, Any], str | None], Any]]:
    """``attach(session, key)``: a Playwright Browser over the session's CDP address."""
    with sync_playwright() as pw:
        browsers: list[Any] = []

        def attach(session: dict[str, Any], key: str | None) -> Any:
            headers = {"x-api-key": key} if key else None
            browser = pw.chromium.connect_over_cdp(session["browser_address"], headers=headers)
            browsers.append(browser)
            return browser

        yield attach
        for browser in browsers:
            browser.close()


def test_a_session_is_a_video_of_what_its_page_showed_at_the_times_it_showed_it(
    backend: LocalBackend, check_session: Check, playwright_cdp: Any
) -> None:
    with client(backend) as http:
        session = create(http, page_url("red"))
        sid = session["browser_session_id"]
        browser = playwright_cdp(session, backend.api_key)
        page = browser.contexts[0].pages[0]
        repainted(page)
        blue_from, _ = paint(page, "blue")
        time.sleep(0.5)  # the page stays blue this long
        green_from, _ = paint(page, "green")
        browser.close()
        closing = time.time()
        ended = check_session(close(http, sid))

    assert len(ended["recordings"]) == 1
    info = ended["recordings"][0]
    assert info["filename"] == f"{sid}.mp4" and info["url"].endswith(
        f"/sessions/{sid}/recordings/{sid}.mp4?token={session_token(backend.api_key or '', sid)}"
    )
    served = httpx.get(info["url"], trust_env=False)  # the URL alone opens it: a person's browser
    assert served.status_code == 200 and served.headers["content-type"] == "video/mp4"
    assert info["file_size"] == len(served.content)
    assert info["checksum"] == hashlib.sha256(served.content).hexdigest()

    frames = decode(served.content)
    assert near(frames[0][1], RED), frames  # the page as it was from the start
    blue, green = first_time(frames, BLUE), first_time(frames, GREEN)
    assert all(near(pixel, RED) for t, pixel in frames if t < blue)
    # real timing: time 0 is started_at, and blue shows from when it was painted until green
    assert seconds_since(ended["started_at"], blue_from) <= blue + 0.02
    assert blue < seconds_since(ended["started_at"], green_from) <= green + 0.02
    # the video lasts until the session's end: its last frame is from when the close began
    length = seconds_since(ended["started_at"], datetime.fromisoformat(
        ended["completed_at"]).timestamp())
    assert seconds_since(ended["started_at"], closing) <= frames[-1][0] <= length, (
        frames[-1], length)


def test_the_newest_page_is_recorded_and_the_one_before_when_it_closes(
    backend: LocalBackend, playwright_cdp: Any
) -> None:
    with client(backend) as http:
        session = create(http, page_url("red"))
        sid = session["browser_session_id"]
        browser = playwright_cdp(session, backend.api_key)
        context = browser.new_context()  # what the pytest plugin does for each test
        page = context.new_page()
        page.goto(page_url("green"))
        repainted(page)
        time.sleep(0.3)  # a test that takes its time: the green page is on screen this long
        context.close()
        first = browser.contexts[0].pages[0]
        paint(first, "blue")
        browser.close()
        ended = close(http, sid)
    frames = decode(httpx.get(ended["recordings"][0]["url"], trust_env=False).content)
    green, blue = first_time(frames, GREEN), first_time(frames, BLUE)
    assert green < blue
    assert not [t for t, pixel in frames if t > blue and not near(pixel, BLUE)], frames


def test_a_running_session_lists_its_recording_in_progress_and_what_is_written_plays(
    backend: LocalBackend, check_session: Check, playwright_cdp: Any
) -> None:
    with client(backend) as http:
        session = create(http, page_url("red"))
        sid = session["browser_session_id"]
        page = playwright_cdp(session, backend.api_key).contexts[0].pages[0]
        paint(page, "blue")
        running = check_session(http.get(f"/v1/browser_sessions/{sid}").json())
        try:
            (info,) = running["recordings"]
            assert info["checksum"] is None and info["file_size"] is None  # still growing
            # what is written so far plays, and soon holds the page's last state
            deadline = time.monotonic() + 10
            while not (frames := decode_url(info["url"])) or not near(frames[-1][1], BLUE):
                assert time.monotonic() < deadline, frames
                time.sleep(0.05)
        finally:
            close(http, sid)


@pytest.fixture(scope="module")
def ended_pair(backend: LocalBackend) -> tuple[str, str, str]:
    """Two ended sessions: the URL of the first one's recording, and both ids."""
    with client(backend) as http:
        sid = create(http, page_url("red"))["browser_session_id"]
        other = create(http, page_url("blue"))["browser_session_id"]
        close(http, other)
        info = close(http, sid)["recordings"][0]
    return info["url"], sid, other


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"headers": {"host": "evil.example:80"}}, 403),  # DNS rebinding
        ({"headers": {"origin": "https://evil.example", "sec-fetch-site": "cross-site"}}, 403),
        ({"drop_token": True}, 403),
        ({"token": "0" * 32}, 403),
        ({"other_session": True}, 403),  # one session's token opens no other's files
        ({"drop_token": True, "headers": {"x-api-key": "wrong"}}, 403),
        ({"drop_token": True, "headers": {"x-api-key": "KEY"}}, 200),
        ({}, 200),
    ],
)
def test_the_recording_route_refuses_a_foreign_host_and_a_wrong_key_or_token(
    backend: LocalBackend, ended_pair: tuple[str, str, str], change: dict[str, Any], status: int
) -> None:
    url, sid, other = ended_pair
    path, _, _ = url.partition("?")
    token = change.get("token", session_token(backend.api_key or "", other if change.get(
        "other_session") else sid))
    params = {} if change.get("drop_token") else {"token": token}
    headers = {k: (backend.api_key or "") if v == "KEY" else v
               for k, v in change.get("headers", {}).items()}
    answer = httpx.get(path, params=params, headers=headers, trust_env=False)
    assert answer.status_code == status, answer.text
    if status == 403:
        assert b"ftyp" not in answer.content  # no byte of the video


def test_recordings_off_and_bad_arguments(tmp_path: Path, check_session: Check) -> None:
    with pytest.raises(InvalidArgumentTypeError):
        LocalBackend(recordings="yes")  # type: ignore[arg-type]
    (tmp_path / "file").write_text("x")
    with pytest.raises(InvalidArgumentError):
        LocalBackend(recordings_dir=tmp_path / "file")
    with pytest.raises(InvalidArgumentError, match="a file"):  # before: NotADirectoryError
        LocalBackend(recordings_dir=tmp_path / "file" / "videos")  # at start
    with LocalBackend(recordings=False, chromium_args=CLOSED_NETWORK_ARGS) as backend, client(
        backend
    ) as http:
        sid = create(http, page_url("red"))["browser_session_id"]
        assert check_session(close(http, sid))["recordings"] == []
        assert backend.root is not None and not (backend.root / "recordings").exists()


def test_without_pyav_recordings_are_off_with_one_log_line(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "av", None)  # `import av` raises ImportError
    caplog.set_level(logging.WARNING, logger="skyvern_cdp.local.recordings")
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS) as backend, client(backend) as http:
        sid = create(http, page_url("red"))["browser_session_id"]
        assert close(http, sid)["recordings"] == []
    lines = [r for r in caplog.records if r.name == "skyvern_cdp.local.recordings"]
    assert len(lines) == 1 and "PyAV" in lines[0].getMessage()


def test_nothing_is_left_behind_and_a_recordings_dir_outlives_the_backend(
    tmp_path: Path, playwright_cdp: Any
) -> None:
    kept = tmp_path / "videos"
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS, recordings_dir=kept) as backend, client(
        backend
    ) as http:
        root = backend.root
        session = create(http, page_url("red"))
        sid = session["browser_session_id"]
        paint(playwright_cdp(session, None).contexts[0].pages[0], "blue")
        still_running = create(http, page_url("green"))["browser_session_id"]
    # the backend stopped with a session still running: both videos are complete and kept
    assert root is not None and not root.exists()
    assert sorted(p.name for p in kept.iterdir()) == sorted([f"{sid}.mp4", f"{still_running}.mp4"])
    assert near(decode((kept / f"{sid}.mp4").read_bytes())[-1][1], BLUE)
    assert near(decode((kept / f"{still_running}.mp4").read_bytes())[0][1], GREEN)


def test_temporary_recordings_go_with_the_backend(playwright_cdp: Any) -> None:
    with LocalBackend(chromium_args=CLOSED_NETWORK_ARGS) as backend, client(backend) as http:
        root = backend.root
        sid = create(http, page_url("red"))["browser_session_id"]
        video = Path(close(http, sid)["recordings"][0]["filename"])
        assert root is not None and (root / "recordings" / video).is_file()
    assert not root.exists()


def test_a_killed_chromium_still_leaves_a_complete_video(backend: LocalBackend) -> None:
    with client(backend) as http:
        running = create(http, page_url("red"))
        sid = running["browser_session_id"]
        pid = backend.chromium_pid(sid)
        assert pid is not None
        deadline = time.monotonic() + 20  # the browser dies once its page is on the video
        while not decode_url(running["recordings"][0]["url"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        os.killpg(os.getpgid(pid), signal.SIGKILL)
        deadline = time.monotonic() + 20
        while (body := http.get(f"/v1/browser_sessions/{sid}").json())["status"] == "running":
            assert time.monotonic() < deadline
            time.sleep(0.02)
    assert body["status"] == "failed"
    (info,) = body["recordings"]
    data = httpx.get(info["url"], trust_env=False).content
    assert info["checksum"] == hashlib.sha256(data).hexdigest()
    frames = decode(data)
    assert near(frames[0][1], RED) and len(frames) >= 2  # and the closing frame


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_signalled_serve_leaves_a_playable_video_in_the_recordings_dir(
    tmp_path: Path, sig: signal.Signals
) -> None:
    kept = tmp_path / "videos"
    command = [sys.executable, "-m", "skyvern_cdp.cli", "serve", "--port", "0",
               "--recordings-dir", str(kept), "--profiles-dir", str(tmp_path / "profiles"),
               *(f"--chromium-arg={arg}" for arg in CLOSED_NETWORK_ARGS)]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "SKYVERN_API_KEY": ""})
    try:
        assert proc.stdout is not None
        base_url = proc.stdout.readline().strip()
        assert base_url.startswith("http://127.0.0.1:"), base_url
        with httpx.Client(base_url=base_url, trust_env=False, timeout=30) as http:
            sid = create(http, page_url("red"))["browser_session_id"]
            # a frame is on disk once the running session lists its video with a size > 0
            deadline = time.monotonic() + 20
            while not (kept / f"{sid}.mp4").exists() or not decode_ok(kept / f"{sid}.mp4"):
                assert time.monotonic() < deadline
                time.sleep(0.05)
        proc.send_signal(sig)
        assert proc.wait(60) == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    frames = decode((kept / f"{sid}.mp4").read_bytes())
    assert near(frames[0][1], RED)
    if sig == signal.SIGTERM:  # stopped cleanly: the closing frame, at the session's end
        assert len(frames) >= 2


def decode_url(url: str) -> list[tuple[float, tuple[int, int, int]]]:
    answer = httpx.get(url, trust_env=False)
    if answer.status_code == 404:  # not written yet
        return []
    assert answer.status_code == 200
    try:
        return decode(answer.content)
    except av.FFmpegError:
        return []


def decode_ok(path: Path) -> bool:
    try:
        return bool(decode(path.read_bytes()))
    except (av.FFmpegError, OSError):
        return False


def test_the_cli_lists_and_saves_recordings_checked_and_without_printing_the_token(
    backend: LocalBackend, playwright_cdp: Any, tmp_path: Path,
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    from skyvern_cdp.cli import main

    monkeypatch.setenv("SKYVERN_API_KEY", backend.api_key or "")
    base = ["--base-url", backend.base_url]
    with client(backend) as http:
        session = create(http, page_url("red"))
        sid = session["browser_session_id"]
        paint(playwright_cdp(session, backend.api_key).contexts[0].pages[0], "blue")
        deadline = time.monotonic() + 20  # the recorder writes frames as they come
        while not decode_url(session["recordings"][0]["url"]):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        # while it runs: saved as far as written, and said so
        assert main([*base, "files", sid, "--save", str(tmp_path / "early")]) == 0
        early = capsys.readouterr()
        assert f"{sid}.mp4 is still being recorded" in early.err
        assert decode_ok(tmp_path / "early" / f"{sid}.mp4")
        info = close(http, sid)["recordings"][0]
    token = session_token(backend.api_key or "", sid)

    assert main([*base, "files", sid]) == 0
    listing = capsys.readouterr().out
    assert f"recording  {sid}.mp4  {info['file_size']} bytes  " in listing
    assert token not in listing and "?<redacted>" in listing

    assert main([*base, "files", sid, "--save", str(tmp_path / "out")]) == 0
    saved = Path(capsys.readouterr().out.strip())
    assert saved == tmp_path / "out" / f"{sid}.mp4"
    data = saved.read_bytes()
    assert hashlib.sha256(data).hexdigest() == info["checksum"] and len(data) == info["file_size"]
    assert near(decode(data)[-1][1], BLUE)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [f"{sid}.mp4"]  # no .part


async def test_the_recorder_leaves_no_cdp_session_on_a_page_it_no_longer_watches(
    backend: LocalBackend,
) -> None:
    import asyncio

    from skyvern_cdp.cdp_client import CDPConnection

    with client(backend) as http:
        session = await asyncio.to_thread(create, http, page_url("red"))
        sid = session["browser_session_id"]
        headers = {"x-api-key": backend.api_key or ""}
        try:
            async with await CDPConnection.open(session["browser_address"], headers=headers) as cdp:

                async def attached() -> dict[str, bool]:
                    infos = (await cdp.send("Target.getTargets"))["targetInfos"]
                    return {t["targetId"]: t["attached"] for t in infos if t["type"] == "page"}

                async def until(wanted: dict[str, bool]) -> None:
                    deadline = time.monotonic() + 10
                    while (now := await attached()) != wanted:
                        assert time.monotonic() < deadline, now
                        await asyncio.sleep(0.02)

                (first,) = await attached()
                await until({first: True})  # the recorder watches the only page
                second = (await cdp.send("Target.createTarget", {"url": page_url("blue")}))[
                    "targetId"
                ]
                await until({first: False, second: True})  # it moved, and let go of the first
                await cdp.send("Target.closeTarget", {"targetId": second})
                await until({first: True})  # back on the first page
        finally:
            await asyncio.to_thread(close, http, sid)
