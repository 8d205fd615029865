"""See a session's page live in a notebook cell: one image, updated in place.

>>> from skyvern_cdp import notebook
>>> browser = await notebook.attach("pbs_123")  # doctest: +SKIP
>>> view = notebook.show()  # doctest: +SKIP
>>> view.stop()  # doctest: +SKIP

:func:`show` displays the page with ``display(..., display_id=True)`` and then updates that
one display by its id as the page changes (JupyterLab, the classic Notebook and VS Code all
apply ``update_display_data``). Frames come from Chromium's screencast
(``Page.startScreencast`` over a CDP session of the page): Chromium sends a frame only when
the page repaints, so an idle page costs no frames and no CPU. Frames are throttled to
``max_fps`` by holding each frame's acknowledgement (Chromium sends no more until it gets
one) and dropping stale or unchanged ones.

The view stops on :meth:`LiveView.stop`, when the Browser disconnects or the page closes, and
when a newer :func:`show` of the same page replaces it (re-running the cell does not stack
views). Outside a notebook it says so in one line and names the session's ``app_url``.

``show(interactive=True)`` shows the session's interactive live view instead (its
``app_url`` in a frame: take control, type, give back), where the backend and the front end
allow it: see :mod:`skyvern_cdp.notebook_embed`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import math
import time
import weakref
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, cast, overload

from playwright.async_api import Browser, CDPSession, Page

from skyvern_cdp._wait_within import wait_within
from skyvern_cdp.errors import InvalidArgumentError, InvalidArgumentTypeError
from skyvern_cdp.policy.screencast import (
    may_have_dropped,
    quiet_period,
    wait_before_showing,
)

__all__ = [
    "DEFAULT_MAX_FPS",
    "FrameStats",
    "LiveView",
    "frame_changed",
    "in_notebook",
    "may_have_dropped",
    "notice",
    "quiet_period",
    "show",
    "wait_before_showing",
]

if TYPE_CHECKING:
    from skyvern_cdp.notebook_embed import InteractiveView

logger = logging.getLogger("skyvern_cdp.notebook_view")

#: Frames shown per second at most, by default ("a few").
DEFAULT_MAX_FPS = 4.0
#: The largest frame Chromium is asked for (it scales the page down to fit).
MAX_FRAME_SIZE = (1024, 768)
JPEG_QUALITY = 70
#: Seconds the clean-up (stop the screencast, detach) may take.
STOP_TIMEOUT = 5.0

# -- decisions (the screencast's own are in skyvern_cdp.policy.screencast) ---------------


def frame_changed(previous: str | None, current: str) -> bool:
    """Whether a frame (its base64 JPEG) differs from the one on display.

    >>> frame_changed(None, "AAAA"), frame_changed("AAAA", "AAAA"), frame_changed("AAAA", "BBBB")
    (True, False, True)
    """
    return previous != current


def _check_fps(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidArgumentTypeError(f"max_fps must be a number, not {type(value).__name__}")
    fps = float(value)
    if math.isnan(fps) or not 0 < fps <= 30:
        raise InvalidArgumentError(f"max_fps must be > 0 and at most 30, got {value!r}")
    return fps


# -- where we are ---------------------------------------------------------------------------


def in_notebook() -> bool:
    """Whether this runs in a Jupyter kernel (a frontend that can show images)."""
    try:
        # the defining module, through a typed view: older IPython exports it untyped
        from IPython.core.getipython import get_ipython
    except ImportError:
        return False
    shell = cast("Callable[[], object]", get_ipython)()
    return shell is not None and getattr(shell, "kernel", None) is not None


def notice(text: str) -> None:
    """The notebook's one-line notices, its only output besides the live image.

    In a kernel they go to the cell's output as plain text; elsewhere to stdout.
    """
    if in_notebook():
        from IPython.display import display

        display({"text/plain": text}, raw=True)  # type: ignore[no-untyped-call]
    else:
        print(text, flush=True)


# -- the view -------------------------------------------------------------------------------


@dataclass
class FrameStats:
    """What a view did: frames Chromium sent, frames shown, frames skipped (and why)."""

    received: int = 0
    shown: int = 0
    stale: int = 0
    unchanged: int = 0
    #: Screenshots taken after Chromium may have skipped the page's last repaint.
    catch_ups: int = 0


@dataclass
class _Frame:
    data: str
    session_id: int


_views: weakref.WeakKeyDictionary[Page, LiveView] = weakref.WeakKeyDictionary()


class LiveView:
    """What :func:`show` returns: a running view of one page. Call :meth:`stop` to end it."""

    def __init__(
        self,
        browser: Browser | None,
        page: Page | None,
        max_fps: float,
        handle: Any,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.page = page
        self.max_fps = max_fps
        self.stats = FrameStats()
        #: Why the view stopped (``None`` while it runs).
        self.stopped_because: str | None = None
        self._browser = browser
        self._handle = handle
        self._clock = clock
        self._frames: deque[_Frame] = deque()
        self._arrived = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._acked = 0
        self._maybe_dropped = False

    def __repr__(self) -> str:
        state = "running" if self.running else f"stopped: {self.stopped_because}"
        return f"<LiveView {self.display_id} {state}, {self.stats.shown} frames shown>"

    @property
    def display_id(self) -> str | None:
        """The id of the display this view updates (``None`` outside a notebook)."""
        return getattr(self._handle, "display_id", None)

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def stop(self, reason: str = "stopped") -> None:
        """Stop updating the image (it keeps its last frame). Idempotent; never raises."""
        if self.stopped_because is None:
            self.stopped_because = reason
        if self._task is not None and not self._task.done():
            self._task.cancel()

    async def wait_stopped(self) -> None:
        """Wait until the view and its clean-up are done (after :meth:`stop`, or a disconnect)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    def _start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="skyvern-live-view")
        if self._browser is not None:
            self._browser.once("disconnected", lambda _: self.stop("the Browser disconnected"))

    async def _run(self) -> None:
        from skyvern_cdp.async_api import default_page

        cdp: CDPSession | None = None
        try:
            if self.page is None:
                assert self._browser is not None
                self.page = await default_page(self._browser)
            page = self.page
            previous = _views.get(page)
            if previous is not None and previous is not self:
                previous.stop("replaced by a newer show() of the same page")
            _views[page] = self
            page.once("close", lambda _: self.stop("the page closed"))
            cdp = await page.context.new_cdp_session(page)
            cdp.on("Page.screencastFrame", self._on_frame)
            width, height = MAX_FRAME_SIZE
            await cdp.send(
                "Page.startScreencast",
                {"format": "jpeg", "quality": JPEG_QUALITY, "maxWidth": width, "maxHeight": height},
            )
            await self._pump(cdp)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never raise into the notebook: say why, stop
            self.stopped_because = self.stopped_because or f"{type(exc).__name__}: {exc}"
            logger.info("the live view stopped: %s", self.stopped_because)
        finally:
            if cdp is not None:
                await _shielded_cleanup(cdp)
            if self.page is not None and _views.get(self.page) is self:
                del _views[self.page]

    def _on_frame(self, params: dict[str, Any]) -> None:
        self.stats.received += 1
        if may_have_dropped(self.stats.received - self._acked):
            self._maybe_dropped = True
        self._frames.append(_Frame(str(params.get("data", "")), int(params.get("sessionId", 0))))
        self._arrived.set()

    async def _pump(self, cdp: CDPSession) -> None:
        """Show the newest frame at most ``max_fps`` times a second; ack every frame."""
        last_shown: float | None = None
        on_display: str | None = None
        while True:
            if not self._maybe_dropped:
                await self._arrived.wait()
            else:
                try:
                    await wait_within(self._arrived.wait(), quiet_period(self.max_fps))
                except asyncio.TimeoutError:  # quiet now: catch up with the page's last state
                    self._maybe_dropped = False
                    shot = await cdp.send(
                        "Page.captureScreenshot", {"format": "jpeg", "quality": JPEG_QUALITY}
                    )
                    self.stats.catch_ups += 1
                    if frame_changed(on_display, shot["data"]):
                        self._show(shot["data"])
                        on_display, last_shown = shot["data"], self._clock()
                    continue
            self._arrived.clear()
            while self._frames:
                hold = wait_before_showing(self._clock(), last_shown, self.max_fps)
                if hold > 0:
                    await asyncio.sleep(hold)  # the ack waits too: Chromium slows down
                frame = self._frames.popleft()
                if self._frames:
                    self.stats.stale += 1  # a newer one is waiting
                elif not frame_changed(on_display, frame.data):
                    self.stats.unchanged += 1
                else:
                    self._show(frame.data)
                    on_display, last_shown = frame.data, self._clock()
                await cdp.send("Page.screencastFrameAck", {"sessionId": frame.session_id})
                self._acked += 1

    def _show(self, data: str) -> None:
        from IPython.display import Image

        image = Image(data=base64.b64decode(data), format="jpeg")  # type: ignore[no-untyped-call]
        self._handle.update(image)
        self.stats.shown += 1


async def _shielded_cleanup(cdp: CDPSession) -> None:
    async def cleanup() -> None:
        with contextlib.suppress(Exception):
            await cdp.send("Page.stopScreencast")
        with contextlib.suppress(Exception):
            await cdp.detach()

    task = asyncio.ensure_future(wait_within(cleanup(), STOP_TIMEOUT))
    with contextlib.suppress(BaseException):
        await asyncio.shield(task)


def _latest_browser() -> Browser:
    from skyvern_cdp import notebook

    for browser in reversed(notebook.live_browsers()):
        if browser.is_connected():
            return browser
    raise InvalidArgumentError(
        "no Browser to show: attach one first (`browser = await notebook.attach(id)`) or pass"
        " one (`notebook.show(browser)`)"
    )


def _app_url(browser: Browser | None) -> str | None:
    from skyvern_cdp.async_api import session_of

    if browser is None:
        return None
    try:
        return session_of(browser).app_url
    except InvalidArgumentTypeError:
        return None


@overload
def show(
    browser: Browser | None = None, *, page: Page | None = None,
    max_fps: float = DEFAULT_MAX_FPS, interactive: Literal[False] = False, height: None = None,
) -> LiveView: ...
@overload
def show(
    browser: Browser | None = None, *, interactive: Literal[True], height: int | None = None
) -> InteractiveView: ...
def show(
    browser: Browser | None = None,
    *,
    page: Page | None = None,
    max_fps: float = DEFAULT_MAX_FPS,
    interactive: bool = False,
    height: int | None = None,
) -> LiveView | InteractiveView:
    """Show ``page`` live in this cell's output, as one image updated in place.

    >>> view = notebook.show()  # doctest: +SKIP
    >>> view = notebook.show(interactive=True)  # take control from the cell  # doctest: +SKIP

    The page is the default page (as :func:`~skyvern_cdp.async_api.default_page`) of
    ``browser``, or of the most recently attached Browser of :mod:`skyvern_cdp.notebook`.
    At most ``max_fps`` frames a second are shown, and only when the page changes.
    Returns a :class:`LiveView`; it stops by itself when the Browser disconnects, the page
    closes, or a newer ``show`` of the same page replaces it.

    ``interactive=True`` frames the session's live view (``app_url``) instead, ``height``
    CSS pixels high, and returns an :class:`~skyvern_cdp.notebook_embed.InteractiveView`
    (:mod:`skyvern_cdp.notebook_embed`); ``page`` and ``max_fps`` are the picture's only
    (the live view has its own tab strip and frame rate).
    """
    if not isinstance(interactive, bool):
        raise InvalidArgumentTypeError(
            f"interactive must be True or False, not {type(interactive).__name__}"
        )
    if interactive:
        return _interactive(browser, page, max_fps, height)
    if height is not None:
        raise InvalidArgumentError("height is the interactive view's: pass interactive=True")
    if browser is not None and not isinstance(browser, Browser):
        raise InvalidArgumentTypeError(
            f"browser must be an async Playwright Browser, not {type(browser).__name__}"
        )
    if page is not None and not isinstance(page, Page):
        raise InvalidArgumentTypeError(
            f"page must be an async Playwright Page, not {type(page).__name__}"
        )
    fps = _check_fps(max_fps)
    if page is not None:
        if browser is not None and page.context.browser is not browser:
            raise InvalidArgumentError("page does not belong to browser")
        browser = page.context.browser
    elif browser is None:
        browser = _latest_browser()
    if not in_notebook():
        url = _app_url(browser)
        where = f"watch it at {url}" if url else "it has no app_url to watch"
        notice(f"skyvern_cdp: not in a notebook, so there is nothing to show here; {where}")
        view = LiveView(browser, page, fps, None)
        view.stopped_because = "not in a notebook"
        return view
    from IPython.display import display

    asyncio.get_running_loop()  # raises RuntimeError outside a loop, before displaying
    placeholder = {"text/plain": "live view: waiting for the first frame"}
    handle = display(placeholder, raw=True, display_id=True)  # type: ignore[no-untyped-call]
    view = LiveView(browser, page, fps, handle)
    view._start()
    return view


def _interactive(
    browser: Browser | None, page: Page | None, max_fps: float, height: int | None
) -> InteractiveView:
    from skyvern_cdp.notebook_embed import DEFAULT_HEIGHT, check_height, embed

    if page is not None or _check_fps(max_fps) != DEFAULT_MAX_FPS:
        raise InvalidArgumentError(
            "page and max_fps are the picture's (interactive=False): the interactive view has"
            " its own tab strip and frame rate"
        )
    if browser is not None and not isinstance(browser, Browser):
        raise InvalidArgumentTypeError(
            f"browser must be an async Playwright Browser, not {type(browser).__name__}"
        )
    height = DEFAULT_HEIGHT if height is None else check_height(height)  # before any lookup
    return embed(browser or _latest_browser(), height)
