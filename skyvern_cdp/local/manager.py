"""The running side of the local backend: one Chromium per session, a reaper, a live view.

>>> from skyvern_cdp.local.manager import SessionManager
>>> async def demo() -> None:  # doctest: +SKIP
...     manager = SessionManager(download_root=Path("/tmp/scdp-b"))
...     manager.start()
...     rec = manager.create(timeout=None)           # answers at once: "created"
...     ...                                          # later: "running", with browser_address
...     await manager.close(rec.browser_session_id)  # Chromium stopped, its directory removed
...     await manager.aclose()

Everything here runs on the backend's event loop; blocking work (starting and stopping
Chromium, hashing files) runs in threads. Decisions come from :mod:`.registry`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from skyvern_cdp._wait_within import wait_within
from skyvern_cdp.cdp_client import CDPConnection, CDPError
from skyvern_cdp.gateway.pipe import Upstream
from skyvern_cdp.gateway.router import Route, State
from skyvern_cdp.local.chromium import ChromiumProcess, wait_for_json_version
from skyvern_cdp.local.downloads import DownloadIndex
from skyvern_cdp.local.profiles import SessionProfiles
from skyvern_cdp.local.recordings import Recordings
from skyvern_cdp.local.registry import (
    COMPLETED,
    FAILED,
    RUNNING,
    TIMEOUT,
    Registry,
    SessionRecord,
    browser_exit_outcome,
)
from skyvern_cdp.local.watchdog import Watchdog

__all__ = ["NotRunningError", "SessionManager"]

logger = logging.getLogger("skyvern_cdp.local.manager")

#: Seconds a Chromium gets to open its CDP endpoint and answer ``/json/version``.
START_TIMEOUT = 30.0
#: The reaper checks for dead Chromiums at least this often (seconds).
REAPER_INTERVAL = 0.25
#: A screenshot younger than this (seconds) is served again instead of taking a new one.
SCREENSHOT_MAX_AGE = 0.4


class NotRunningError(Exception):
    """The session has no live browser (yet, or any more)."""


@dataclass
class _Runtime:
    """What the manager holds for one session besides its record."""

    record: SessionRecord
    close_requested: asyncio.Event = field(default_factory=asyncio.Event)
    provision_task: asyncio.Task[None] | None = None
    finish_task: asyncio.Task[None] | None = None
    process: ChromiumProcess | None = None
    cdp: CDPConnection | None = None
    first_target_id: str | None = None
    downloads: dict[str, str] = field(default_factory=dict)  # guid -> suggested file name
    shot_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    last_shot: tuple[float, bytes] | None = None
    chromium_root: Path | None = None  # Chromium's directory, as soon as it exists
    spawned: tuple[int, Path] | None = None  # (pid, root) as soon as Chromium exists


class SessionManager:
    """Owns the sessions of one server. Create it and call :meth:`start` inside its loop."""

    def __init__(
        self,
        *,
        download_root: Path,
        organization_id: str = "o_local",
        max_sessions: int | None = None,
        ready_delay: float | tuple[float, float] = 0.0,
        chromium_args: Sequence[str] = (),
        chromium_executable: str | None = None,
        minute_seconds: float = 60.0,
        watchdog: Watchdog | None = None,
    ) -> None:
        self.registry = Registry(organization_id=organization_id, max_sessions=max_sessions)
        self.download_root = download_root
        self.ready_delay = ready_delay
        self.chromium_args = tuple(chromium_args)
        self.chromium_executable = chromium_executable
        self.minute_seconds = minute_seconds
        self.watchdog = watchdog
        #: ``(session_id, chromium_ws_path) -> browser_address`` (the backend's CDP router).
        self.address_for: Callable[[str, str], str] | None = None
        #: Called with a session's id as soon as it starts ending (the router cuts it off).
        self.on_ended: Callable[[str], None] | None = None
        #: Browser profiles: seeds a session's Chromium, saves its state at its end.
        self.profiles: SessionProfiles | None = None
        #: Records each session from when it runs until it ends (``None``: recordings off).
        self.recordings: Recordings | None = None
        self.files = DownloadIndex()
        self._runtimes: dict[str, _Runtime] = {}
        self._reaper: asyncio.Task[None] | None = None
        self._wake_reaper = asyncio.Event()
        self._closed = False

    # ---- lifecycle of the manager ------------------------------------------------------

    def start(self) -> None:
        if self._reaper is None:
            self._reaper = asyncio.create_task(self._reap(), name="skyvern-cdp-reaper")

    async def aclose(self) -> None:
        """Stop every session (as ``completed``) and the reaper. Safe to call twice."""
        self._closed = True
        tasks = [
            self._begin_finish(rt, COMPLETED, "the backend shut down")
            for rt in list(self._runtimes.values())
            if rt.record.is_live or rt.finish_task is not None
        ]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        if self.profiles is not None:
            await self.profiles.drain()
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper

    # ---- the API's operations ----------------------------------------------------------

    def create(
        self,
        *,
        timeout: int | None,
        url: str | None = None,
        extensions: list[str] | None = None,
        browser_type: str | None = None,
        browser_profile_id: str | None = None,
        generate_browser_profile: bool = False,
    ) -> SessionRecord:
        """Register a ``created`` session and start provisioning it in the background.

        Raises :class:`~skyvern_cdp.local.registry.CapacityError` past ``max_sessions``.
        """
        if self._closed:
            raise RuntimeError("the backend is shutting down")
        rec = self.registry.create(
            timeout=timeout,
            download_dir=None,
            url=url,
            extensions=extensions,
            browser_type=browser_type,
            browser_profile_id=browser_profile_id,
            generate_browser_profile=generate_browser_profile,
        )
        rec.download_dir = self.download_root / rec.browser_session_id
        rec.download_dir.mkdir(parents=True, exist_ok=True)
        rt = _Runtime(record=rec)
        self._runtimes[rec.browser_session_id] = rt
        rt.provision_task = asyncio.create_task(
            self._provision(rt), name=f"provision-{rec.browser_session_id}"
        )
        logger.info("session %s created (timeout %s min)", rec.browser_session_id, rec.timeout)
        return rec

    def get(self, session_id: str) -> SessionRecord | None:
        return self.registry.get(session_id)

    async def close(self, session_id: str) -> None:
        """Stop the session's Chromium and remove its directory; returns once both are done."""
        rt = self._runtimes.get(session_id)
        if rt is None:
            raise KeyError(session_id)
        # Shielded: a caller that goes away mid-close does not leave a half-stopped browser.
        await asyncio.shield(self._begin_finish(rt, COMPLETED, None))

    def extend(self, session_id: str, additional_minutes: int) -> str | None:
        warning = self.registry.extend(session_id, additional_minutes)
        self._wake_reaper.set()
        return warning

    def downloaded_files(self, rec: SessionRecord, prefix: str, query: str) -> list[dict[str, Any]]:
        """Blocking (it may hash files): call it in a thread."""
        return self.files.list(rec.download_dir, url_prefix=prefix, url_query=query)

    def route(self, session_id: str) -> Route:
        """Where the CDP router sends a connection for ``session_id``, and whether it may."""
        rt = self._runtimes.get(session_id)
        if rt is None:
            return Route(State.UNKNOWN)
        if rt.finish_task is not None or rt.record.is_final:
            return Route(State.ENDED)
        process = rt.process
        if rt.record.status != RUNNING or process is None:
            return Route(State.STARTING)
        return Route(State.RUNNING, Upstream("127.0.0.1", process.port))

    # ---- instrumentation ---------------------------------------------------------------

    def chromium_pid(self, session_id: str) -> int | None:
        rt = self._runtimes.get(session_id)
        return rt.process.pid if rt is not None and rt.process is not None else None

    def live_chromium_pids(self) -> list[int]:
        return [
            rt.process.pid
            for rt in list(self._runtimes.values())
            if rt.process is not None and rt.process.alive()
        ]

    # ---- provisioning ------------------------------------------------------------------

    def _draw_delay(self) -> float:
        delay = self.ready_delay
        if isinstance(delay, tuple):
            return random.uniform(delay[0], delay[1])
        return delay

    async def _provision(self, rt: _Runtime) -> None:
        sid = rt.record.browser_session_id
        try:
            delay = self._draw_delay()
            if delay > 0:
                with contextlib.suppress(asyncio.TimeoutError):
                    await wait_within(rt.close_requested.wait(), delay)
            if rt.close_requested.is_set():
                return
            rt.process = await asyncio.to_thread(self._start_chromium, rt)
            if rt.close_requested.is_set():
                return  # the finisher stops it
            await self._attach(rt)
            if rt.close_requested.is_set():
                return
            address = (
                self.address_for(sid, rt.process.ws_path)
                if self.address_for is not None
                else rt.process.ws_endpoint
            )
            self.registry.mark_running(sid, address, now=time.monotonic())
            if self.recordings is not None and rt.record.started_at is not None:
                self.recordings.start(sid, rt.process.ws_endpoint, rt.record.started_at)
            self._wake_reaper.set()
            logger.info("session %s running (Chromium pid %s)", sid, rt.process.pid)
        except Exception as exc:
            if rt.close_requested.is_set():
                logger.debug("session %s: provisioning ended by close: %s", sid, exc)
            else:
                self._begin_finish(rt, FAILED, f"Chromium did not start: {exc}")

    def _start_chromium(self, rt: _Runtime) -> ChromiumProcess:
        """Blocking: start Chromium, then wait until ``/json/version`` answers."""
        rec = rt.record
        watchdog = self.watchdog

        def on_root(root: Path) -> None:
            # Known before Chromium exists: if we die before on_spawn, the watchdog still
            # finds the process by its --user-data-dir and removes the directory.
            rt.chromium_root = root
            if watchdog is not None:
                watchdog.add_dir(root)

        def on_spawn(pid: int, root: Path) -> None:
            rt.spawned = (pid, root)
            if watchdog is not None:
                watchdog.add_group(pid)

        deadline = time.monotonic() + START_TIMEOUT
        try:
            process = ChromiumProcess.start(
                self.chromium_executable,
                extra_args=self.chromium_args,
                url=rec.url or "about:blank",
                start_timeout=START_TIMEOUT,
                download_dir=rec.download_dir,
                on_root=on_root,
                on_spawn=on_spawn,
                seed=self.profiles.seeder(rec) if self.profiles is not None else None,
            )
        except Exception:
            # start() killed its process group and removed its directory already.
            if watchdog is not None:
                if rt.spawned is not None:
                    watchdog.forget_group(rt.spawned[0])
                if rt.chromium_root is not None:
                    watchdog.forget_dir(rt.chromium_root)
            raise
        try:
            wait_for_json_version(process, deadline)
        except Exception:
            self._stop_process(process)
            raise
        return process

    async def _attach(self, rt: _Runtime) -> None:
        """Open the backend's own CDP connection: download events and the live view."""
        assert rt.process is not None
        rt.cdp = await CDPConnection.open(
            rt.process.ws_endpoint, on_event=lambda m, p, s: self._on_event(rt, m, p)
        )
        # "default" keeps the profile's download directory (the session's download_path);
        # eventsEnabled lets us see downloads a CDP client (Playwright) redirects elsewhere.
        await rt.cdp.send(
            "Browser.setDownloadBehavior", {"behavior": "default", "eventsEnabled": True}
        )
        targets = await rt.cdp.send("Target.getTargets")
        pages = [t for t in targets.get("targetInfos", []) if t.get("type") == "page"]
        rt.first_target_id = pages[0]["targetId"] if pages else None

    def _on_event(self, rt: _Runtime, method: str, params: dict[str, Any]) -> None:
        if method == "Browser.downloadWillBegin":
            guid = str(params.get("guid", ""))
            rt.downloads[guid] = str(params.get("suggestedFilename") or "download")
        elif method == "Browser.downloadProgress" and params.get("state") == "completed":
            guid = str(params.get("guid", ""))
            path = params.get("filePath")
            name = rt.downloads.pop(guid, None) or "download"
            directory = rt.record.download_dir
            if isinstance(path, str) and directory is not None:
                task = asyncio.ensure_future(
                    asyncio.to_thread(self.files.adopt, Path(path), directory, name)
                )
                task.add_done_callback(lambda t: _log_adopted(rt.record.browser_session_id, t))

    # ---- ending ------------------------------------------------------------------------

    def _begin_finish(self, rt: _Runtime, status: str, reason: str | None) -> asyncio.Task[None]:
        """Start ending the session (once); returns the task to await."""
        if rt.finish_task is None:
            rt.close_requested.set()
            rt.finish_task = asyncio.create_task(
                self._finish(rt, status, reason), name=f"finish-{rt.record.browser_session_id}"
            )
            if self.on_ended is not None:
                self.on_ended(rt.record.browser_session_id)
        return rt.finish_task

    async def _finish(self, rt: _Runtime, status: str, reason: str | None) -> None:
        sid = rt.record.browser_session_id
        task = rt.provision_task
        if task is not None and task is not asyncio.current_task():
            # Provisioning sees close_requested and stops at its next step; a Chromium start
            # already in a thread runs to its end (bounded by START_TIMEOUT) and is then stopped.
            await asyncio.wait([task])
        if self.recordings is not None:  # before Chromium stops: the last frame, a clean end
            await self.recordings.stop(sid)
        process, profiles, taken = rt.process, self.profiles, None
        if profiles is not None and rt.cdp is not None and process is not None and status != FAILED:
            ended_at = time.time()
            taken = await profiles.take(rt.record, rt.cdp, process)  # a clean shutdown first
        if rt.cdp is not None:
            await rt.cdp.close()
        if process is not None:
            await asyncio.to_thread(self._stop_process, process)
        self.registry.mark_final(sid, status, reason)
        if profiles is not None and taken is not None:
            profiles.finish(rt.record, taken, ended_at)  # saved after the close answers
        rt.last_shot = None
        if status == FAILED:
            logger.error("session %s failed: %s", sid, reason)
        else:
            logger.info("session %s %s%s", sid, status, f" ({reason})" if reason else "")

    def _stop_process(self, process: ChromiumProcess) -> None:
        process.stop()
        if self.watchdog is not None:
            self.watchdog.forget_group(process.pid)
            self.watchdog.forget_dir(process.root)

    # ---- the reaper --------------------------------------------------------------------

    async def _reap(self) -> None:
        while True:
            self._wake_reaper.clear()
            now = time.monotonic()
            for rec in self.registry.expired(now, self.minute_seconds):
                rt = self._runtimes[rec.browser_session_id]
                self._begin_finish(rt, TIMEOUT, f"its {rec.timeout} minutes ran out")
            for rt in list(self._runtimes.values()):
                process = rt.process
                if (
                    rt.record.status == RUNNING
                    and rt.finish_task is None
                    and process is not None
                    and not process.alive()
                ):
                    self._begin_finish(rt, *browser_exit_outcome(process.process.returncode))
            wake = REAPER_INTERVAL
            deadline = self.registry.next_deadline(self.minute_seconds)
            if deadline is not None:
                wake = min(wake, max(0.005, deadline - time.monotonic()))
            with contextlib.suppress(asyncio.TimeoutError):
                await wait_within(self._wake_reaper.wait(), wake)

    # ---- live view ---------------------------------------------------------------------

    async def screenshot(self, session_id: str) -> bytes:
        """A JPEG of the session's first page (cached for a fraction of a second)."""
        rt = self._runtimes.get(session_id)
        if rt is None:
            raise KeyError(session_id)
        async with rt.shot_lock:
            if rt.record.status != RUNNING or rt.cdp is None or rt.cdp.closed:
                raise NotRunningError(f"the session is {rt.record.status}")
            if rt.last_shot is not None and time.monotonic() - rt.last_shot[0] < SCREENSHOT_MAX_AGE:
                return rt.last_shot[1]
            data = await self._capture(rt, rt.cdp)
            rt.last_shot = (time.monotonic(), data)
            return data

    async def _capture(self, rt: _Runtime, cdp: CDPConnection) -> bytes:
        targets = await cdp.send("Target.getTargets", timeout=5.0)
        pages = [t for t in targets.get("targetInfos", []) if t.get("type") == "page"]
        if not pages:
            raise NotRunningError("the browser has no page open")
        chosen = next((t for t in pages if t["targetId"] == rt.first_target_id), pages[0])
        attached = await cdp.send(
            "Target.attachToTarget", {"targetId": chosen["targetId"], "flatten": True}, timeout=5.0
        )
        cdp_session = attached["sessionId"]
        try:
            shot = await cdp.send(
                "Page.captureScreenshot",
                {"format": "jpeg", "quality": 70},
                session_id=cdp_session,
                timeout=10.0,
            )
        finally:
            with contextlib.suppress(CDPError):
                await cdp.send("Target.detachFromTarget", {"sessionId": cdp_session}, timeout=5.0)
        return base64.b64decode(shot["data"])


def _log_adopted(session_id: str, task: asyncio.Future[Path | None]) -> None:
    if task.cancelled() or task.exception() is not None:
        return
    path = task.result()
    if path is not None:
        logger.info("session %s: download saved as %s", session_id, path.name)
