"""Record one session's browser as a video, from Chromium's screencast.

>>> from skyvern_cdp.local.recorder import SessionRecorder
>>> recorder = SessionRecorder(ws_endpoint, path, MP4, t0=started_at)  # doctest: +SKIP
>>> await recorder.start()                                             # doctest: +SKIP
>>> ...                                                                # the session runs
>>> await recorder.stop()       # the file is complete: True when it holds any frame

The recorder opens its own CDP connection to the session's Chromium, watches the newest
open page (:func:`~skyvern_cdp.policy.screencast.follow_page`: a test's new page, a popup;
the one before when it closes) and writes each screencast frame at the time Chromium took
it. Chromium sends frames only when the page repaints, so an idle page costs nothing; while
it animates, acknowledgements are held to ``max_fps`` (Chromium sends no more until it gets
one), and when that may have made Chromium skip the page's last repaint, one screenshot
catches up once the page is quiet. Half a second after the last frame it is written once
more, which puts it in the file (a container writes a frame out once the next one comes):
the file as it grows, or as a crash leaves it, holds the page's state until then. Decoding
and encoding run in a worker thread.

It ends on :meth:`SessionRecorder.stop` (the session's end), or by itself when Chromium goes
away; either way :meth:`stop` finalizes the file and closes the connection, leaving no CDP
session behind.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import time
from collections import deque
from pathlib import Path
from typing import Any

from skyvern_cdp.cdp_client import CDPConnection, CDPError
from skyvern_cdp.local.video import FRAME_BOX, VideoFormat, VideoWriter
from skyvern_cdp.policy.screencast import (
    follow_page,
    may_have_dropped,
    quiet_period,
    wait_before_showing,
)

__all__ = ["DEFAULT_MAX_FPS", "SessionRecorder"]

logger = logging.getLogger("skyvern_cdp.local.recorder")

#: Frames written per second at most while a page animates.
DEFAULT_MAX_FPS = 10.0
JPEG_QUALITY = 70
#: Seconds after the last frame at which it is repeated: MP4 writes a frame out only when
#: the next one comes, and this puts a quiet page's last state in the file.
FLUSH_AFTER = 0.5
#: Seconds one CDP command of the recorder may take.
COMMAND_TIMEOUT = 5.0


class SessionRecorder:
    """One session's recording; see the module docstring."""

    def __init__(
        self,
        ws_endpoint: str,
        path: Path,
        fmt: VideoFormat,
        *,
        t0: float,
        max_fps: float = DEFAULT_MAX_FPS,
    ) -> None:
        self.ws_endpoint = ws_endpoint
        self.path = path
        self.fmt = fmt
        self.t0 = t0
        self.max_fps = max_fps
        #: Frames written (the catch-up screenshots and the closing frame included).
        self.frames_written = 0
        self.catch_ups = 0
        self._cdp: CDPConnection | None = None
        self._writer: VideoWriter | None = None
        self._pages: list[str] = []
        self._target: str | None = None
        self._session: str | None = None
        self._frames: deque[tuple[str, int, float]] = deque()  # (data, ack id, timestamp)
        self._received = 0
        self._acked = 0
        self._maybe_dropped = False
        self._unflushed = False  # a frame was written that the file may not hold yet
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._pump_task: asyncio.Task[None] | None = None
        self._stopped = False

    @property
    def recording(self) -> bool:
        return self._pump_task is not None and not self._pump_task.done()

    async def start(self) -> None:
        """Open the connection and start recording; :class:`CDPError` if Chromium is gone."""
        self._writer = await asyncio.to_thread(VideoWriter, self.path, self.fmt, t0=self.t0)
        try:
            self._cdp = await CDPConnection.open(self.ws_endpoint, on_event=self._on_event)
            await self._cdp.send("Target.setDiscoverTargets", {"discover": True})
            targets = await self._cdp.send("Target.getTargets")
        except BaseException:
            await self._close_quietly()
            raise
        for info in targets.get("targetInfos", []):
            if _is_page(info) and info["targetId"] not in self._pages:
                self._pages.append(info["targetId"])
        self._pump_task = asyncio.create_task(self._pump(), name="skyvern-cdp-recorder")

    async def stop(self, *, end: float | None = None) -> bool:
        """Stop, finalize the file at ``end`` (now by default); whether it has any frame.

        Safe to call twice, and when :meth:`start` failed.
        """
        if self._stopped:
            return self.frames_written > 0
        self._stopped = True
        end = time.time() if end is None else end
        self._stopping.set()
        if self._pump_task is not None:
            await asyncio.wait([self._pump_task])
            # The page's last state: Chromium may not have sent (or we not written) it yet.
            pending = self._frames[-1] if self._frames else None
            if not await self._catch_up() and pending is not None:
                await self._write(base64.b64decode(pending[0]), pending[2])
        await self._detach()
        await self._close_quietly(end)
        return self.frames_written > 0

    async def _close_quietly(self, end: float | None = None) -> None:
        if self._cdp is not None:
            await self._cdp.close()
        writer, self._writer = self._writer, None
        if writer is not None:
            try:
                await asyncio.to_thread(writer.close, end=end)
            except Exception as exc:
                logger.warning("recording %s could not be finalized: %s", self.path.name, exc)
            self.frames_written = writer.frames

    # ---- events (in the CDP reader) -------------------------------------------------------

    def _on_event(self, method: str, params: dict[str, Any], session_id: str | None) -> None:
        if method == "Page.screencastFrame":
            if session_id is not None and session_id == self._session:
                self._received += 1
                if may_have_dropped(self._received - self._acked):
                    self._maybe_dropped = True
                stamp = (params.get("metadata") or {}).get("timestamp")
                when = float(stamp) if isinstance(stamp, (int, float)) else time.time()
                self._frames.append((str(params.get("data", "")), int(params["sessionId"]), when))
                self._wake.set()
        elif method == "Target.targetCreated":
            info = params.get("targetInfo") or {}
            if _is_page(info) and info["targetId"] not in self._pages:
                self._pages.append(info["targetId"])
                self._wake.set()
        elif method == "Target.targetDestroyed":
            target = params.get("targetId")
            if target in self._pages:
                self._pages.remove(target)
                self._wake.set()
        elif method == "Target.detachedFromTarget" and params.get("sessionId") == self._session:
            self._session = self._target = None
            self._wake.set()

    # ---- the pump ---------------------------------------------------------------------

    async def _pump(self) -> None:
        assert self._cdp is not None
        cdp = self._cdp
        closed = asyncio.ensure_future(cdp.wait_closed())
        stopping = asyncio.ensure_future(self._stopping.wait())
        last_written: float | None = None
        try:
            while not self._stopping.is_set() and not cdp.closed:
                wanted = follow_page(self._pages, self._target)
                if wanted != self._target or (wanted is not None and self._session is None):
                    await self._switch(wanted)
                    continue
                self._wake.clear()
                if not self._frames:
                    wake = asyncio.ensure_future(self._wake.wait())
                    quiet = quiet_period(self.max_fps) if self._maybe_dropped else (
                        FLUSH_AFTER if self._unflushed else None
                    )
                    done, _ = await asyncio.wait(
                        {wake, closed, stopping}, timeout=quiet,
                        return_when=asyncio.FIRST_COMPLETED,
                    )
                    wake.cancel()
                    if not done and self._maybe_dropped:  # quiet now: catch up with the page
                        self._maybe_dropped = False
                        await self._catch_up()
                        last_written = time.monotonic()
                    elif not done and self._unflushed:  # push the last frame into the file
                        await self._repeat_last()
                    continue
                while self._frames and not self._stopping.is_set():
                    hold = wait_before_showing(time.monotonic(), last_written, self.max_fps)
                    if hold > 0:
                        await asyncio.wait({stopping, closed}, timeout=hold)
                    data, ack, when = self._frames.popleft()
                    if not self._frames:  # the newest: write it (older ones are stale)
                        await self._write(base64.b64decode(data), when)
                        last_written = time.monotonic()
                    with contextlib.suppress(CDPError):  # the page may have gone meanwhile
                        await self._send("Page.screencastFrameAck", {"sessionId": ack})
                    self._acked += 1
        except CDPError as exc:
            logger.debug("recording %s: the browser went away: %s", self.path.name, exc)
        except Exception:
            logger.exception("recording %s stopped", self.path.name)
        finally:
            closed.cancel()
            stopping.cancel()

    async def _write(self, jpeg: bytes, when: float) -> None:
        writer = self._writer
        if writer is not None:
            self._unflushed = await asyncio.to_thread(writer.add_jpeg, jpeg, when)

    async def _repeat_last(self) -> None:
        writer = self._writer
        self._unflushed = False
        if writer is not None:
            await asyncio.to_thread(writer.repeat_last, time.time())

    async def _catch_up(self) -> bool:
        """Write a screenshot of the page as it is now; whether that worked."""
        if self._session is None or self._cdp is None or self._cdp.closed:
            return False
        try:
            shot = await self._send(
                "Page.captureScreenshot", {"format": "jpeg", "quality": JPEG_QUALITY}
            )
        except CDPError:
            return False
        self.catch_ups += 1
        await self._write(base64.b64decode(shot.get("data", "")), time.time())
        return True

    async def _switch(self, target: str | None) -> None:
        """Stop watching the current page and start on ``target``."""
        await self._detach()
        self._target = target
        if target is None:
            return
        assert self._cdp is not None
        try:
            attached = await self._cdp.send(
                "Target.attachToTarget", {"targetId": target, "flatten": True},
                timeout=COMMAND_TIMEOUT,
            )
            self._session = str(attached["sessionId"])
            width, height = FRAME_BOX
            await self._send(
                "Page.startScreencast",
                {"format": "jpeg", "quality": JPEG_QUALITY, "maxWidth": width,
                 "maxHeight": height},
            )
        except CDPError as exc:
            if self._cdp.closed:
                raise
            logger.debug("recording %s: page %s went away: %s", self.path.name, target, exc)
            if target in self._pages:
                self._pages.remove(target)
            self._target = self._session = None

    async def _detach(self) -> None:
        session, self._session = self._session, None
        self._frames.clear()
        self._received = self._acked = 0
        self._maybe_dropped = False
        cdp = self._cdp
        if session is None or cdp is None or cdp.closed:
            return
        with contextlib.suppress(CDPError):
            await cdp.send("Page.stopScreencast", session_id=session, timeout=COMMAND_TIMEOUT)
        with contextlib.suppress(CDPError):
            await cdp.send(
                "Target.detachFromTarget", {"sessionId": session}, timeout=COMMAND_TIMEOUT
            )

    async def _send(self, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert self._cdp is not None
        return await self._cdp.send(
            method, params, session_id=self._session, timeout=COMMAND_TIMEOUT
        )


def _is_page(info: dict[str, Any]) -> bool:
    url = str(info.get("url", ""))
    return info.get("type") == "page" and not url.startswith("devtools://") and bool(
        info.get("targetId")
    )
