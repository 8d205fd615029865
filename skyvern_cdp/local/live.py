"""The interactive live view behind ``app_url``: each viewer's screencast, input and control.

>>> from skyvern_cdp.local.live import LiveViews
>>> views = LiveViews()                                           # one per backend
>>> await views.serve(websocket, "pbs_1", browser_ws_endpoint)    # doctest: +SKIP
>>> views.viewers("pbs_1"), views.taken("pbs_1")
(0, False)

Each viewer (a browser tab on ``/sessions/{id}``) gets its own CDP connection to the
session's Chromium, so a viewer that goes away takes its CDP sessions with it: closing the
connection detaches everything it attached. On it the viewer watches one page (the session's
first page, or the tab it picked) with ``Page.startScreencast``: Chromium sends a frame only
when the page repaints, and holding the acknowledgement bounds the rate to ``max_fps``
(:mod:`skyvern_cdp.policy.screencast`). Frames go to the page as JSON with the JPEG in
base64 and the page's CSS size, which the viewer maps its mouse coordinates to.

Control is per session: one viewer at a time holds it (taking it from another is allowed: a
person at the keyboard wins); only that viewer's input is dispatched, and while it holds
control the CDP router holds the automation's input (:meth:`LiveViews.wait_until_free`, see
:mod:`skyvern_cdp.policy.liveview`). A holder that goes away gives control back.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from skyvern_cdp._wait_within import wait_within
from skyvern_cdp.cdp_client import CDPConnection, CDPError
from skyvern_cdp.policy.liveview import input_command
from skyvern_cdp.policy.screencast import may_have_dropped, quiet_period, wait_before_showing

__all__ = ["DEFAULT_MAX_FPS", "LiveViews", "Socket"]

logger = logging.getLogger("skyvern_cdp.local.live")

#: Frames sent per second at most while a page animates.
DEFAULT_MAX_FPS = 30.0
JPEG_QUALITY = 70
#: The largest frame Chromium is asked for (CSS pixels; a bigger viewport is scaled down).
MAX_FRAME = (1920, 1920)
COMMAND_TIMEOUT = 5.0


class Socket(Protocol):
    """What a viewer's websocket offers (Starlette's ``WebSocket`` has it)."""

    async def send_text(self, data: str) -> None: ...
    async def receive_text(self) -> str: ...


@dataclass
class _Control:
    holder: int | None = None
    free: asyncio.Event = field(default_factory=asyncio.Event)
    viewers: dict[int, _Viewer] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.free.set()


class LiveViews:
    """All viewers of one backend; see the module docstring."""

    def __init__(self, *, max_fps: float = DEFAULT_MAX_FPS) -> None:
        self.max_fps = max_fps
        self._sessions: dict[str, _Control] = {}
        self._ids = itertools.count(1)

    def viewers(self, session_id: str) -> int:
        control = self._sessions.get(session_id)
        return len(control.viewers) if control is not None else 0

    def taken(self, session_id: str) -> bool:
        control = self._sessions.get(session_id)
        return control is not None and control.holder is not None

    async def wait_until_free(self, session_id: str) -> None:
        """Return once no person holds control of ``session_id`` (at once if none does)."""
        control = self._sessions.get(session_id)
        if control is not None and control.holder is not None:
            await control.free.wait()

    def session_ended(self, session_id: str) -> None:
        """Release whatever waits on the session's control; its viewers end with Chromium."""
        control = self._sessions.get(session_id)
        if control is not None:
            control.holder = None
            control.free.set()

    async def serve(self, ws: Socket, session_id: str, endpoint: str) -> None:
        """Run one viewer until it leaves or the session's browser goes away."""
        control = self._sessions.setdefault(session_id, _Control())
        viewer = _Viewer(next(self._ids), ws, self, session_id)
        control.viewers[viewer.id] = viewer
        try:
            await viewer.run(endpoint)
        finally:
            del control.viewers[viewer.id]
            if control.holder == viewer.id:
                self._set_holder(session_id, None)
            if not control.viewers and control.holder is None:
                self._sessions.pop(session_id, None)

    def _set_holder(self, session_id: str, holder: int | None) -> None:
        control = self._sessions[session_id]
        control.holder = holder
        if holder is None:
            control.free.set()
        else:
            control.free.clear()
        logger.info("session %s: control %s", session_id,
                    "taken by a person" if holder is not None else "given back")
        for viewer in list(control.viewers.values()):
            viewer.tell({"type": "control", "taken": holder is not None,
                         "mine": holder == viewer.id})

    def _holder(self, session_id: str) -> int | None:
        control = self._sessions.get(session_id)
        return control.holder if control is not None else None


class _Viewer:
    def __init__(self, viewer_id: int, ws: Socket, views: LiveViews, session_id: str) -> None:
        self.id = viewer_id
        self.ws = ws
        self.views = views
        self.session_id = session_id
        self.cdp: CDPConnection | None = None
        self.pages: dict[str, dict[str, str]] = {}  # targetId -> {title, url}, oldest first
        self.target: str | None = None
        self.cdp_session: str | None = None
        self.frame: dict[str, Any] | None = None  # the newest frame not yet shown
        self.unacked: list[tuple[str, int]] = []  # (cdp session, ack id)
        self.maybe_dropped = False
        self.first_pending = False  # a page is watched and no frame of it was shown yet
        self.outbox: asyncio.Queue[str] = asyncio.Queue(maxsize=64)
        self.wake = asyncio.Event()
        self.tasks: set[asyncio.Future[None]] = set()

    def tell(self, message: dict[str, Any]) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a viewer that reads nothing misses news
            self.outbox.put_nowait(json.dumps(message))

    async def run(self, endpoint: str) -> None:
        async with await CDPConnection.open(endpoint, on_event=self._on_event) as cdp:
            self.cdp = cdp
            await cdp.send("Target.setDiscoverTargets", {"discover": True})
            targets = await cdp.send("Target.getTargets")
            for info in targets.get("targetInfos", []):
                self._note_page(info)
            holder = self.views._holder(self.session_id)
            self.tell({"type": "control", "taken": holder is not None, "mine": False})
            if self.pages:
                await self._watch(next(iter(self.pages)))
            tasks = [asyncio.create_task(coro) for coro in
                     (self._receive(), self._send(), self._frames(), cdp.wait_closed())]
            try:
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (*tasks, *self.tasks):
                    task.cancel()
                await asyncio.gather(*tasks, *self.tasks, return_exceptions=True)

    # ---- Chromium -> viewer -------------------------------------------------------------

    def _note_page(self, info: dict[str, Any]) -> bool:
        if info.get("type") != "page" or not isinstance(info.get("targetId"), str):
            return False
        self.pages[info["targetId"]] = {"title": str(info.get("title", "")),
                                        "url": str(info.get("url", ""))}
        return True

    def _tabs(self) -> None:
        tabs = [{"id": tid, **page} for tid, page in self.pages.items()]
        self.tell({"type": "tabs", "tabs": tabs, "current": self.target})

    def _on_event(self, method: str, params: dict[str, Any], session: str | None) -> None:
        if method == "Page.screencastFrame" and session is not None:
            self.unacked.append((session, int(params.get("sessionId", 0))))
            if session == self.cdp_session:
                self.frame = params
                self.maybe_dropped = self.maybe_dropped or may_have_dropped(len(self.unacked))
                self.wake.set()
        elif method in ("Target.targetCreated", "Target.targetInfoChanged"):
            if self._note_page(params.get("targetInfo") or {}):
                self._tabs()
        elif method == "Target.targetDestroyed":
            gone = params.get("targetId")
            if self.pages.pop(str(gone), None) is not None:
                if gone == self.target:
                    self.target = self.cdp_session = None
                    if self.pages:
                        task = asyncio.ensure_future(self._switch(next(iter(self.pages))))
                        self.tasks.add(task)
                        task.add_done_callback(self.tasks.discard)
                self._tabs()

    async def _watch(self, target_id: str) -> None:
        """Watch ``target_id``: attach, start its screencast (the old one's session detached)."""
        assert self.cdp is not None
        old, self.cdp_session, self.target = self.cdp_session, None, target_id
        if old is not None:
            with contextlib.suppress(CDPError):
                await self.cdp.send("Target.detachFromTarget", {"sessionId": old},
                                    timeout=COMMAND_TIMEOUT)
        attached = await self.cdp.send(
            "Target.attachToTarget", {"targetId": target_id, "flatten": True},
            timeout=COMMAND_TIMEOUT)
        session = str(attached["sessionId"])
        if self.target != target_id:  # switched again meanwhile
            with contextlib.suppress(CDPError):
                await self.cdp.send("Target.detachFromTarget", {"sessionId": session})
            return
        self.cdp_session = session
        self._tabs()
        await self.cdp.send("Page.enable", session_id=session, timeout=COMMAND_TIMEOUT)
        await self.cdp.send("Page.startScreencast", {
            "format": "jpeg", "quality": JPEG_QUALITY, "maxWidth": MAX_FRAME[0],
            "maxHeight": MAX_FRAME[1], "everyNthFrame": 1}, session_id=session,
            timeout=COMMAND_TIMEOUT)
        # A quiet page may send no frame when the screencast starts: then a screenshot.
        self.first_pending = True
        self.wake.set()

    async def _switch(self, target_id: str) -> None:
        try:
            await self._watch(target_id)
        except CDPError as exc:
            logger.debug("live view of %s: could not watch a page: %s", self.session_id, exc)

    async def _ack(self) -> None:
        assert self.cdp is not None
        acks, self.unacked = self.unacked, []
        for session, ack in acks:
            with contextlib.suppress(CDPError):
                await self.cdp.send("Page.screencastFrameAck", {"sessionId": ack},
                                    session_id=session, timeout=COMMAND_TIMEOUT)

    async def _frames(self) -> None:
        """Show the newest frame at most ``max_fps`` times a second, then acknowledge."""
        last: float | None = None
        quiet = quiet_period(self.views.max_fps)
        while True:
            try:
                await wait_within(
                    self.wake.wait(), quiet if self.maybe_dropped or self.first_pending else None)
            except asyncio.TimeoutError:  # quiet after a burst that may have lost the last
                self.maybe_dropped = self.first_pending = False  # paint, or no first frame
                await self._catch_up()
                continue
            self.wake.clear()
            delay = wait_before_showing(time.monotonic(), last, self.views.max_fps)
            if delay:
                await asyncio.sleep(delay)  # the throttle: Chromium waits for the ack
            frame, self.frame = self.frame, None
            if frame is not None:
                meta = frame.get("metadata") or {}
                self.tell({"type": "frame", "data": frame.get("data", ""),
                           "width": meta.get("deviceWidth"), "height": meta.get("deviceHeight")})
                last = time.monotonic()
                self.first_pending = False
            await self._ack()

    async def _catch_up(self) -> None:
        if self.cdp is None or self.cdp_session is None:
            return
        with contextlib.suppress(CDPError, KeyError):
            metrics = await self.cdp.send("Page.getLayoutMetrics", session_id=self.cdp_session)
            shot = await self.cdp.send("Page.captureScreenshot", {
                "format": "jpeg", "quality": JPEG_QUALITY}, session_id=self.cdp_session,
                timeout=COMMAND_TIMEOUT)
            view = metrics.get("cssVisualViewport") or {}
            self.tell({"type": "frame", "data": shot["data"], "width": view.get("clientWidth"),
                       "height": view.get("clientHeight")})

    async def _send(self) -> None:
        while True:
            await self.ws.send_text(await self.outbox.get())

    # ---- viewer -> Chromium -------------------------------------------------------------

    async def _receive(self) -> None:
        while True:
            raw = await self.ws.receive_text()
            try:
                message = json.loads(raw)
            except ValueError:
                continue
            if isinstance(message, dict):
                await self._handle(message)

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "control":
            mine = self.views._holder(self.session_id) == self.id
            if message.get("take") is True:
                self.views._set_holder(self.session_id, self.id)
            elif message.get("take") is False and mine:
                self.views._set_holder(self.session_id, None)
        elif kind == "tab":
            target = message.get("id")
            if isinstance(target, str) and target in self.pages and target != self.target:
                await self._switch(target)
                if self.views._holder(self.session_id) == self.id and self.cdp is not None:
                    with contextlib.suppress(CDPError):
                        await self.cdp.send("Target.activateTarget", {"targetId": target})
        elif self.views._holder(self.session_id) == self.id and self.cdp_session is not None:
            command = input_command(message)
            if command is not None and self.cdp is not None:
                try:
                    await self.cdp.send(command[0], command[1], session_id=self.cdp_session,
                                        timeout=COMMAND_TIMEOUT)
                except CDPError as exc:
                    logger.debug("live view input %s failed: %s", command[0], exc)
