"""The lines of a failed test's "skyvern session" section about its files, without I/O.

>>> from datetime import datetime, timezone
>>> from skyvern_cdp.models import FileInfo
>>> video = FileInfo(url="http://127.0.0.1:8000/sessions/pbs_1/recordings/pbs_1.mp4",
...                  filename="pbs_1.mp4", file_size=48213, checksum="9f2c")
>>> started = datetime(2026, 12, 2, 14, 0, 0, tzinfo=timezone.utc)
>>> zero = started.timestamp()
>>> print("\\n".join(file_lines("recordings", [video], session_id="pbs_1", started_at=started,
...                             test_span=(zero + 72.25, zero + 75.5))))
recordings:
  - pbs_1.mp4, 48213 bytes: http://127.0.0.1:8000/sessions/pbs_1/recordings/pbs_1.mp4
    this test: 1:12.2 to 1:15.5 into the video (0:00 is the session's started_at, 14:00:00 UTC)

A recording of a ``live`` session that is still being written (neither ``checksum`` nor
``file_size`` yet, as the local backend lists it) says how to get it once complete:
``skyvern-cdp files ID --save DIR``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from skyvern_cdp.config import redact_query

if TYPE_CHECKING:  # the plugin loads pydantic only once a session is asked for
    from skyvern_cdp.models import FileInfo

__all__ = [
    "LIVE_STATUSES",
    "NOT_FETCHED",
    "REPORT_GET_TIMEOUT",
    "app_url_shown",
    "file_lines",
    "is_unanswered",
    "report_get_timeout",
    "video_offset",
]

#: A session in one of these may still be recording.
LIVE_STATUSES = frozenset({"created", "running"})
#: Seconds the fresh GET behind a failure's report section may take (and never more than
#: ``--skyvern-timeout``): a report's extra, so it is short against a hung API.
REPORT_GET_TIMEOUT = 2.0
#: What a report says instead of the session's details once its GET went unanswered.
NOT_FETCHED = "(details not fetched: the API did not answer an earlier GET in this run)"


def app_url_shown(session_id: str, app_url: str | None) -> str:
    """``app_url`` as a report or the run's summary shows it: its query (a token) redacted.

    A local backend with a key puts the live view's token in the query; printing it would
    hand the view to whoever reads the CI log, so the line says how to see it instead.

    >>> app_url_shown("pbs_1", "http://h/sessions/pbs_1?token=s3cret")
    'http://h/sessions/pbs_1?<redacted> (with its token: skyvern-cdp info pbs_1 --show-secrets)'
    >>> app_url_shown("pbs_1", "https://app.skyvern.com/browser-session/pbs_1")
    'https://app.skyvern.com/browser-session/pbs_1'
    >>> app_url_shown("pbs_1", None)
    '(none)'
    """
    if not app_url:
        return "(none)"
    shown = redact_query(app_url)
    if shown == app_url:
        return app_url
    return f"{shown} (with its token: skyvern-cdp info {session_id} --show-secrets)"


def report_get_timeout(run_timeout: float, *, unanswered: bool) -> float | None:
    """How long a failure report's fresh GET may take; ``None``: do not send it, since one
    went unanswered earlier in this run (the fixture's wait, or an earlier report's: each try
    against a hung API would cost as much again).

    >>> report_get_timeout(30.0, unanswered=False), report_get_timeout(1.0, unanswered=False)
    (2.0, 1.0)
    >>> report_get_timeout(30.0, unanswered=True) is None
    True
    """
    return None if unanswered else min(REPORT_GET_TIMEOUT, run_timeout)


def is_unanswered(exc: BaseException) -> bool:
    """Whether a failed GET (or the session fixture's wait) means the API did not answer
    (timed out, unreachable, dropped), rather than answered with an error (a 404 or 401 is an
    answer: the next report may ask), or answered that the session is not ready yet.

    >>> from skyvern_cdp.errors import APITimeoutError, SessionNotFoundError
    >>> is_unanswered(APITimeoutError("slow")), is_unanswered(SessionNotFoundError("gone"))
    (True, False)
    """
    from skyvern_cdp.errors import APIConnectionError, SessionError

    if isinstance(exc, SessionError):  # a wait that never got an answer, for that reason
        cause = exc.__cause__
        return exc.session is None and cause is not None and is_unanswered(cause)
    return isinstance(exc, (APIConnectionError, TimeoutError, OSError))


def video_offset(seconds: float) -> str:
    """``m:ss.s`` (or ``h:mm:ss.s``) of a moment ``seconds`` into a video; never negative.

    >>> video_offset(0), video_offset(72.25), video_offset(3725.04), video_offset(-3)
    ('0:00.0', '1:12.2', '1:02:05.0', '0:00.0')
    """
    tenths = int(max(0.0, seconds) * 10)
    minutes, rest = divmod(tenths, 600)
    hours, minutes = divmod(minutes, 60)
    clock = f"{rest // 10:02d}.{rest % 10}"
    return f"{hours}:{minutes:02d}:{clock}" if hours else f"{minutes}:{clock}"


def file_lines(
    title: str,
    files: Sequence[FileInfo] | None,
    *,
    session_id: str,
    started_at: datetime | None = None,
    test_span: tuple[float, float] | None = None,
    live: bool = False,
) -> list[str]:
    """``title:`` and one entry per file; a recording also says where the test is in it.

    ``test_span`` is the test's (start, end) in wall-clock seconds; recordings start at the
    session's ``started_at``, as the local backend's do (in the cloud, about there).
    """
    if not files:
        return [f"{title}: (none)"]
    lines = [f"{title}:"]
    for info in files:
        size = f", {info.file_size} bytes" if info.file_size is not None else ""
        growing = live and title == "recordings" and info.checksum is None and not info.file_size
        note = " (still recording)" if growing else ""
        url = redact_query(info.url)  # a presigned URL's query is its signature, as in the CLI
        lines.append(f"  - {info.filename or '(unnamed)'}{size}{note}: {url}")
        if title == "recordings" and started_at is not None and test_span is not None:
            zero = started_at.timestamp()
            start, end = (video_offset(moment - zero) for moment in test_span)
            clock = started_at.astimezone(timezone.utc).strftime("%H:%M:%S")
            lines.append(
                f"    this test: {start} to {end} into the video"
                f" (0:00 is the session's started_at, {clock} UTC)"
            )
        if growing:
            lines.append(
                f"    complete once the session ends: skyvern-cdp files {session_id} --save DIR"
            )
    return lines
