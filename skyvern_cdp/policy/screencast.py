"""Decisions about Chromium's screencast (``Page.startScreencast``), without I/O.

>>> from skyvern_cdp.policy.screencast import wait_before_showing, frame_pts, follow_page
>>> wait_before_showing(10.1, 10.0, 4.0)          # hold the ack: at most 4 frames a second
0.15
>>> frame_pts(1000.25, t0=1000.0, last_pts=0)     # milliseconds into the video
250
>>> follow_page(["A", "B"], current="A")          # the newest page is the one to watch
'B'

Used by the notebook's view and the local backend's recorder: Chromium sends a frame only
when the page repaints and stops sending while it waits for acknowledgements, so holding
acks throttles it, and a page that repainted while acks were held may need one screenshot
to catch up once it is quiet.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "CHROMIUM_FRAMES_IN_FLIGHT",
    "fit_within",
    "follow_page",
    "frame_pts",
    "may_have_dropped",
    "quiet_period",
    "wait_before_showing",
]

#: Chromium captures no repaint while this many frames are unacknowledged (it drops them).
CHROMIUM_FRAMES_IN_FLIGHT = 3


def wait_before_showing(now: float, last_shown: float | None, max_fps: float) -> float:
    """Seconds to hold a frame so that at most ``max_fps`` are shown per second.

    >>> wait_before_showing(10.0, None, 4.0), wait_before_showing(10.1, 10.0, 4.0)
    (0.0, 0.15)
    >>> wait_before_showing(11.0, 10.0, 4.0)
    0.0
    """
    if last_shown is None:
        return 0.0
    return round(max(0.0, last_shown + 1.0 / max_fps - now), 6)


def may_have_dropped(unacknowledged: int) -> bool:
    """Whether Chromium may have skipped a repaint: it captures none with 3 frames unacked.

    Holding acks (the throttle) can hit that limit; then the page's last state may never
    come as a frame, and one screenshot catches up once the page is quiet.

    >>> may_have_dropped(2), may_have_dropped(3)
    (False, True)
    """
    return unacknowledged >= CHROMIUM_FRAMES_IN_FLIGHT


def quiet_period(max_fps: float) -> float:
    """Seconds without a frame after which the page counts as quiet (time to catch up).

    >>> quiet_period(4.0), quiet_period(30.0)
    (0.375, 0.2)
    """
    return max(0.2, 1.5 / max_fps)


def frame_pts(timestamp: float, *, t0: float, last_pts: int | None) -> int:
    """A frame's presentation time in milliseconds since ``t0`` (both wall-clock seconds).

    The first frame is at 0 whenever it came (it shows the page as it was from the start);
    every later one is its real time, and always after the one before (a container needs
    strictly increasing times).

    >>> frame_pts(5.5, t0=5.0, last_pts=None), frame_pts(5.5, t0=5.0, last_pts=100)
    (0, 500)
    >>> frame_pts(5.05, t0=5.0, last_pts=100)  # Chromium's clock stepped back: just after
    101
    """
    if last_pts is None:
        return 0
    return max(last_pts + 1, round((timestamp - t0) * 1000))


def follow_page(pages: Sequence[str], current: str | None) -> str | None:
    """Which page to record: the newest one open (``pages`` oldest first).

    A test opens a new page (or context) and drives it, a popup is where the action goes;
    when it closes, the next newest is watched again.

    >>> follow_page([], None), follow_page(["A"], None), follow_page(["A", "B"], "B")
    (None, 'A', 'B')
    """
    return pages[-1] if pages else None


def fit_within(width: int, height: int, box: tuple[int, int]) -> tuple[int, int]:
    """``width`` x ``height`` scaled to fit ``box`` keeping its shape, both sides even.

    >>> fit_within(1280, 720, (1280, 720)), fit_within(780, 437, (1280, 720))
    ((1280, 720), (1280, 716))
    >>> fit_within(390, 844, (1280, 720))
    (332, 720)
    """
    scale = min(box[0] / max(1, width), box[1] / max(1, height))
    fitted_w = max(2, min(box[0], int(width * scale)) // 2 * 2)
    fitted_h = max(2, min(box[1], int(height * scale)) // 2 * 2)
    return fitted_w, fitted_h
