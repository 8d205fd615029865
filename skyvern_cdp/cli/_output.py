"""What the commands print: a session as (redacted) JSON, warnings, and :class:`Progress`,
the live line of a wait on stderr.

>>> from skyvern_cdp.config import redact_query
>>> redact_query("https://files.example/a.pdf?X-Amz-Signature=abc")
'https://files.example/a.pdf?<redacted>'
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from types import TracebackType
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from skyvern_cdp.client import SkyvernClient
    from skyvern_cdp.models import BrowserSessionResponse

from skyvern_cdp.cli._args import PROG, PROGRESS_INTERVAL

logger = logging.getLogger("skyvern_cdp.cli")


def _client(args: argparse.Namespace) -> SkyvernClient:
    from skyvern_cdp.cli._args import network_options
    from skyvern_cdp.client import SkyvernClient

    return SkyvernClient(api_key=args.api_key, base_url=args.base_url, **network_options(args))


def _secrets(args: argparse.Namespace) -> list[str | None]:
    from skyvern_cdp.config import API_KEY_ENV

    return [args.api_key, os.environ.get(API_KEY_ENV)]


def _session_data(session: BrowserSessionResponse, *, show_address: bool) -> dict[str, Any]:
    """The session as JSON-ready data; ``browser_address`` and the query of file URLs redacted
    unless ``show_address``."""
    from skyvern_cdp.config import redact_address, redact_query

    data: dict[str, Any] = session.model_dump(mode="json")
    if not show_address and data.get("browser_address"):
        data["browser_address"] = redact_address(data["browser_address"])
    if not show_address:  # presigned file URLs carry their signature in the query
        for name in ("downloaded_files", "recordings"):
            for item in data.get(name) or ():
                if isinstance(item, dict) and isinstance(item.get("url"), str):
                    item["url"] = redact_query(item["url"])
    return data


def _print_json(data: object, args: argparse.Namespace, *, redact: bool = True) -> None:
    from skyvern_cdp.config import redact_text

    text = json.dumps(data, indent=2, sort_keys=False)
    print(redact_text(text, _secrets(args)) if redact else text)


def _warn_if_any(session: BrowserSessionResponse) -> None:
    warning = (session.model_extra or {}).get("warning")
    if warning:
        print(f"{PROG}: warning: {warning}", file=sys.stderr)


class Progress:
    """The state of a wait, on stderr: one live line on a terminal, plain lines otherwise.

    >>> with Progress(sys.stderr, "pbs_123") as progress:  # doctest: +SKIP
    ...     session = client.wait_for_browser_session("pbs_123", on_status=progress.update)
    ...     progress.ready()

    On a terminal the line ``pbs_123: created  1.4s`` is redrawn in place (carriage return)
    every :data:`PROGRESS_INTERVAL`; piped, each status change is one plain line.
    """

    def __init__(self, stream: IO[str], session_id: str, *, live: bool | None = None) -> None:
        self.stream = stream
        self.session_id = session_id
        self.live = _isatty(stream) if live is None else live
        self.status = "waiting"
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._width = 0
        self._thread: threading.Thread | None = None

    def __enter__(self) -> Progress:
        self.started = time.monotonic()
        if self.live:
            self._draw()
            self._thread = threading.Thread(target=self._tick, name="skyvern-cdp-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._finish(None)

    def update(self, session: BrowserSessionResponse) -> None:
        """``on_status`` callback: the session's status changed."""
        from skyvern_cdp.policy import missing_for_ready

        status = session.status or "unknown"
        if status == "running" and "browser_address" in missing_for_ready(session):
            status = "running, no browser_address yet"
        with self._lock:
            if status == self.status:
                return
            self.status = status
            if self.live:
                self._draw_locked()
            else:
                self._line(f"{self.session_id}: {status} ({self._elapsed():.1f}s)")

    def ready(self, word: str = "ready") -> None:
        """The wait is over: say so (``word``) and end the line."""
        self._finish(word)

    def _elapsed(self) -> float:
        return time.monotonic() - self.started

    def _tick(self) -> None:
        while not self._stop.wait(PROGRESS_INTERVAL):
            self._draw()

    def _draw(self) -> None:
        with self._lock:
            if not self._stop.is_set():
                self._draw_locked()

    def _draw_locked(self, status: str | None = None) -> None:
        text = f"{self.session_id}: {status or self.status}  {self._elapsed():.1f}s"
        pad = " " * max(0, self._width - len(text))
        self._width = len(text)
        self._write("\r" + text + pad)

    def _line(self, text: str) -> None:
        self._write(text + "\n")

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):  # stderr went away: progress is optional
            pass

    def _finish(self, final: str | None) -> None:
        if self._stop.is_set():
            return
        with self._lock:
            self._stop.set()
            if self.live:
                self._draw_locked(final)
                self._write("\n")
            elif final is not None:
                self._line(f"{self.session_id}: {final} ({self._elapsed():.1f}s)")
        if self._thread is not None:
            self._thread.join()


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
