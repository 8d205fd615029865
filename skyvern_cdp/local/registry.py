"""The local backend's sessions: their state, and every lifecycle decision, without I/O.

>>> from skyvern_cdp.local.registry import Registry, grant_timeout, grant_extension
>>> grant_timeout(None), grant_timeout(300)[0], grant_extension(200, 500)[0]
((60, None), 240, 360)
>>> reg = Registry(organization_id="o_local", max_sessions=2)
>>> rec = reg.create(timeout=10, download_dir=None)
>>> rec.status, rec.browser_session_id.startswith("pbs_"), reg.live_count()
('created', True, 1)
>>> reg.mark_running(rec.browser_session_id, "ws://127.0.0.1:9/devtools/browser/x", now=5.0)
>>> rec.deadline(minute_seconds=60.0)  # timeout applies from the start: 5 s + 10 min
605.0

Status moves one way: ``created`` → ``running`` → one of ``completed``, ``timeout``,
``failed`` (a session can also go straight from ``created`` to a final status). A final
session stays readable (``GET`` answers it) but leaves the list of live sessions.
The :class:`Registry` is not thread-safe by design: the backend mutates it from its event
loop only; the read-only counters (``get_count``, ``ready_monotonic``) may be read anywhere.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from skyvern_cdp.config import redact_address

__all__ = [
    "DEFAULT_TIMEOUT_MINUTES",
    "FINAL",
    "LIVE",
    "MAX_LIFETIME_MINUTES",
    "MAX_TIMEOUT_MINUTES",
    "MIN_TIMEOUT_MINUTES",
    "CapacityError",
    "Registry",
    "SessionRecord",
    "browser_exit_outcome",
    "grant_extension",
    "grant_timeout",
    "is_session_id",
    "new_session_id",
]

MIN_TIMEOUT_MINUTES = 5
DEFAULT_TIMEOUT_MINUTES = 60
MAX_TIMEOUT_MINUTES = 240
MAX_LIFETIME_MINUTES = 360

CREATED = "created"
RUNNING = "running"
COMPLETED = "completed"
FAILED = "failed"
TIMEOUT = "timeout"

#: Statuses of a session that still holds (or is about to hold) a browser.
LIVE: frozenset[str] = frozenset({CREATED, RUNNING})
#: Statuses a session never leaves.
FINAL: frozenset[str] = frozenset({COMPLETED, FAILED, TIMEOUT})

_ID_RE = re.compile(r"pbs_[A-Za-z0-9_-]{1,124}")


def new_session_id() -> str:
    """``pbs_`` and 24 random digits (about 80 bits from :mod:`secrets`): unguessable."""
    first = secrets.choice("123456789")
    return "pbs_" + first + "".join(secrets.choice("0123456789") for _ in range(23))


def is_session_id(value: str) -> bool:
    """Whether ``value`` is shaped like a session id (``pbs_`` + letters, digits, ``_-``)."""
    return _ID_RE.fullmatch(value) is not None


def browser_exit_outcome(returncode: int | None) -> tuple[str, str]:
    """How a session ends when its Chromium exits by itself: ``(status, reason)``.

    Exit code 0 is a browser closed on request (``Browser.close``: Puppeteer's
    ``browser.close()``, a CDP client's own close): the session ends ``completed``, as a
    cloud session whose browser a client closed does. Anything else (a crash, a kill) fails it.

    >>> browser_exit_outcome(0)
    ('completed', 'the browser was closed on request (Browser.close)')
    >>> browser_exit_outcome(-9)[0]
    'failed'
    """
    if returncode == 0:
        return COMPLETED, "the browser was closed on request (Browser.close)"
    return FAILED, f"Chromium exited unexpectedly (code {returncode})"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def grant_timeout(requested: int | None) -> tuple[int, str | None]:
    """The lifetime (minutes) a new session gets, and a warning when it was capped.

    ``None`` means the default (60). Values below 5 are rejected earlier, by validation.
    """
    if requested is None:
        return DEFAULT_TIMEOUT_MINUTES, None
    if requested < MIN_TIMEOUT_MINUTES:
        raise ValueError(f"timeout must be at least {MIN_TIMEOUT_MINUTES} minutes")
    if requested > MAX_TIMEOUT_MINUTES:
        return MAX_TIMEOUT_MINUTES, (
            f"timeout {requested} exceeds the maximum of {MAX_TIMEOUT_MINUTES} minutes;"
            f" the session was created with a timeout of {MAX_TIMEOUT_MINUTES} minutes"
        )
    return requested, None


def grant_extension(current: int, additional: int) -> tuple[int, str | None]:
    """The new lifetime after asking for ``additional`` minutes, capped at 360 in total."""
    if additional < 1:
        raise ValueError("additional_minutes must be at least 1")
    wanted = current + additional
    if wanted > MAX_LIFETIME_MINUTES:
        granted = max(current, MAX_LIFETIME_MINUTES)
        return granted, (
            f"the total lifetime of a session is capped at {MAX_LIFETIME_MINUTES} minutes;"
            f" granted {granted - current} of the {additional} additional minutes asked for"
        )
    return wanted, None


#: Live sessions a local backend runs at once unless told otherwise (``--max-sessions``): a
#: Chromium each, so a runaway loop, or a web page that got through, cannot exhaust the machine.
DEFAULT_MAX_SESSIONS = 8


class CapacityError(Exception):
    """The server already holds ``max_sessions`` live sessions."""

    def __init__(self, max_sessions: int) -> None:
        super().__init__(
            f"too many live browser sessions: this server runs at most {max_sessions} at a"
            " time; close one and retry"
        )
        self.max_sessions = max_sessions


@dataclass
class SessionRecord:
    """One session as the API reports it, plus the bookkeeping the backend needs."""

    browser_session_id: str
    organization_id: str
    timeout: int
    created_at: datetime
    modified_at: datetime
    download_dir: Path | None
    status: str = CREATED
    url: str | None = None
    browser_address: str | None = None
    started_at: datetime | None = None
    completed_at: datetime | None = None
    extensions: list[str] | None = None
    browser_type: str | None = None
    browser_profile_id: str | None = None
    generate_browser_profile: bool = False
    failure_reason: str | None = None
    #: ``time.monotonic()`` when the session became ``running``.
    ready_monotonic: float | None = None
    #: How many ``GET /v1/browser_sessions/{id}`` were served for it.
    get_count: int = 0

    @property
    def is_live(self) -> bool:
        return self.status in LIVE

    @property
    def is_final(self) -> bool:
        return self.status in FINAL

    def deadline(self, minute_seconds: float) -> float | None:
        """The ``time.monotonic()`` at which the session times out (``None`` before it runs)."""
        if self.ready_monotonic is None:
            return None
        return self.ready_monotonic + self.timeout * minute_seconds

    def remaining_seconds(self, now: float, minute_seconds: float) -> float | None:
        """``remaining_lifetime_seconds`` at ``now`` (``time.monotonic()``), in real seconds.

        ``None`` before the session runs (its lifetime starts then), 0 once it has ended.

        >>> rec = SessionRecord("pbs_1", "o", 10, utcnow(), utcnow(), None, ready_monotonic=5.0)
        >>> rec.status = RUNNING
        >>> rec.remaining_seconds(now=6.0, minute_seconds=0.5)  # 10 minutes of 0.5 s, 1 s in
        4.0
        """
        if self.is_final:
            return 0.0
        deadline = self.deadline(minute_seconds)
        if deadline is None:
            return None
        return round(max(0.0, deadline - now), 3)

    def redacted_address(self) -> str | None:
        return redact_address(self.browser_address) if self.browser_address else None

    def to_wire(
        self, *, app_url: str | None, downloaded_files: Sequence[dict[str, Any]] = ()
    ) -> dict[str, Any]:
        """The JSON body of ``BrowserSessionResponse`` (timestamps in UTC, with their zone)."""
        return {
            "browser_session_id": self.browser_session_id,
            "organization_id": self.organization_id,
            "status": self.status,
            "runnable_type": None,
            "runnable_id": None,
            "timeout": self.timeout,
            "browser_address": self.browser_address,
            "app_url": app_url,
            "extensions": list(self.extensions) if self.extensions is not None else None,
            "browser_type": self.browser_type,
            "browser_profile_id": self.browser_profile_id,
            "generate_browser_profile": self.generate_browser_profile,
            "vnc_streaming_supported": True,  # the live view at app_url (interactive)
            "download_path": str(self.download_dir) if self.download_dir else None,
            "downloaded_files": list(downloaded_files),
            "recordings": [],
            "started_at": _iso(self.started_at),
            "completed_at": _iso(self.completed_at),
            "created_at": _iso(self.created_at),
            "modified_at": _iso(self.modified_at),
            "deleted_at": None,
        }


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if value is not None else None


@dataclass
class Registry:
    """Every session of one server, and the rules for creating, running and ending them."""

    organization_id: str = "o_local"
    max_sessions: int | None = None
    _sessions: dict[str, SessionRecord] = field(default_factory=dict)

    def __iter__(self) -> Iterator[SessionRecord]:
        return iter(list(self._sessions.values()))

    def live_count(self) -> int:
        return sum(1 for rec in self._sessions.values() if rec.is_live)

    def live(self) -> list[SessionRecord]:
        """Live sessions, oldest first."""
        return [rec for rec in self._sessions.values() if rec.is_live]

    def get(self, session_id: str) -> SessionRecord | None:
        return self._sessions.get(session_id)

    def create(
        self,
        *,
        timeout: int | None,
        download_dir: Path | None,
        url: str | None = None,
        extensions: list[str] | None = None,
        browser_type: str | None = None,
        browser_profile_id: str | None = None,
        generate_browser_profile: bool = False,
        session_id: str | None = None,
    ) -> SessionRecord:
        """A new ``created`` session, or :class:`CapacityError` past ``max_sessions``."""
        if self.max_sessions is not None and self.live_count() >= self.max_sessions:
            raise CapacityError(self.max_sessions)
        minutes, _ = grant_timeout(timeout)
        now = utcnow()
        sid = session_id or new_session_id()
        while sid in self._sessions:  # pragma: no cover - 80 random bits
            sid = new_session_id()
        rec = SessionRecord(
            browser_session_id=sid,
            organization_id=self.organization_id,
            timeout=minutes,
            created_at=now,
            modified_at=now,
            download_dir=download_dir,
            url=url,
            extensions=extensions,
            browser_type=browser_type,
            browser_profile_id=browser_profile_id,
            generate_browser_profile=generate_browser_profile,
        )
        self._sessions[sid] = rec
        return rec

    def _require(self, session_id: str) -> SessionRecord:
        rec = self._sessions.get(session_id)
        if rec is None:
            raise KeyError(session_id)
        return rec

    def mark_running(self, session_id: str, browser_address: str, *, now: float) -> None:
        """``created`` → ``running``; ``now`` is the ``time.monotonic()`` of readiness."""
        rec = self._require(session_id)
        if rec.status != CREATED:
            raise ValueError(f"session {session_id} is {rec.status}, not created")
        stamp = utcnow()
        rec.status = RUNNING
        rec.browser_address = browser_address
        rec.started_at = stamp
        rec.modified_at = stamp
        rec.ready_monotonic = now

    def mark_final(self, session_id: str, status: str, reason: str | None = None) -> bool:
        """Move a live session to a final status; ``False`` when it was already final."""
        if status not in FINAL:
            raise ValueError(f"{status!r} is not a final status")
        rec = self._require(session_id)
        if rec.is_final:
            return False
        stamp = utcnow()
        rec.status = status
        rec.completed_at = stamp
        rec.modified_at = stamp
        rec.failure_reason = reason
        return True

    def extend(self, session_id: str, additional_minutes: int) -> str | None:
        """Add minutes to a live session's lifetime; returns the warning, if capped."""
        rec = self._require(session_id)
        if not rec.is_live:
            raise ValueError(f"session {session_id} is {rec.status}")
        rec.timeout, warning = grant_extension(rec.timeout, additional_minutes)
        rec.modified_at = utcnow()
        return warning

    def expired(self, now: float, minute_seconds: float) -> list[SessionRecord]:
        """Running sessions whose lifetime has run out at ``now`` (``time.monotonic()``)."""
        found = []
        for rec in self._sessions.values():
            deadline = rec.deadline(minute_seconds)
            if rec.status == RUNNING and deadline is not None and now >= deadline:
                found.append(rec)
        return found

    def next_deadline(self, minute_seconds: float) -> float | None:
        """The earliest deadline among running sessions."""
        deadlines = [
            d
            for rec in self._sessions.values()
            if rec.status == RUNNING and (d := rec.deadline(minute_seconds)) is not None
        ]
        return min(deadlines, default=None)
