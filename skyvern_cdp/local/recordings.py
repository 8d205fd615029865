"""Every session's recording on one backend: start, stop, list as ``FileInfo``, find to serve.

>>> from skyvern_cdp.local.recordings import Recordings
>>> recordings = Recordings(Path("/tmp/scdp-b/recordings"), MP4)      # doctest: +SKIP
>>> recordings.start("pbs_1", ws_endpoint, started_at)                 # doctest: +SKIP
>>> await recordings.stop("pbs_1")                                     # doctest: +SKIP
>>> recordings.files("pbs_1", "http://127.0.0.1:8000/sessions/pbs_1/recordings")  # doctest: +SKIP
[{'url': '…/pbs_1.mp4', 'checksum': '9f2c…', 'filename': 'pbs_1.mp4', 'file_size': 48213, …}]

A session's video is ``<directory>/<session id>.mp4`` (``.webm`` where PyAV has no H.264
encoder). While the session runs it is listed with ``checksum`` and ``file_size`` unset
(the file grows; what is written so far plays); once the session has ended it is complete,
with its SHA-256 and size. A session whose page never painted leaves no file. Runs on the
backend's event loop; :meth:`Recordings.files` may hash a file, so call it in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

from skyvern_cdp.local.recorder import DEFAULT_MAX_FPS, SessionRecorder
from skyvern_cdp.local.video import VideoFormat, choose_format

__all__ = ["Recordings", "make_recordings"]

logger = logging.getLogger("skyvern_cdp.local.recordings")


@dataclass
class _Entry:
    recorder: SessionRecorder
    starting: asyncio.Task[None]
    final: bool = False
    kept: bool = True
    checksum: str | None = None


class Recordings:
    """The recordings of one backend's sessions, under ``directory``."""

    def __init__(
        self, directory: Path, fmt: VideoFormat, *, max_fps: float = DEFAULT_MAX_FPS
    ) -> None:
        self.directory = directory
        self.fmt = fmt
        self.max_fps = max_fps
        self._entries: dict[str, _Entry] = {}
        self._lock = threading.Lock()  # files() runs in threads

    def start(self, session_id: str, ws_endpoint: str, started_at: datetime) -> None:
        """Start recording ``session_id`` (in the background); once per session.

        The video's time 0 is ``started_at``: a moment of the session is that far into it.
        """
        if session_id in self._entries:
            return
        t0 = started_at.timestamp()
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"{session_id}{self.fmt.extension}"
        recorder = SessionRecorder(ws_endpoint, path, self.fmt, t0=t0, max_fps=self.max_fps)
        task = asyncio.create_task(recorder.start(), name=f"record-{session_id}")
        task.add_done_callback(lambda t: _log_start_failure(session_id, t))
        with self._lock:
            self._entries[session_id] = _Entry(recorder, task)

    async def stop(self, session_id: str) -> None:
        """Stop recording and finalize the file (or remove it, if it has no frame)."""
        entry = self._entries.get(session_id)
        if entry is None or entry.final:
            return
        await asyncio.wait([entry.starting])
        has_frames = await entry.recorder.stop()
        path = entry.recorder.path
        checksum = await asyncio.to_thread(_sha256, path) if has_frames else None
        if not has_frames or checksum is None:
            with contextlib.suppress(OSError):
                path.unlink()
        with self._lock:
            entry.final, entry.kept, entry.checksum = True, has_frames and bool(checksum), checksum
        logger.info(
            "session %s: recording %s", session_id,
            f"saved as {path.name} ({entry.recorder.frames_written} frames)"
            if entry.kept else "had no frame; removed",
        )

    async def aclose(self) -> None:
        """Stop every recording still running."""
        await asyncio.gather(*(self.stop(sid) for sid in list(self._entries)))

    def recording(self) -> list[str]:
        """Ids of the sessions being recorded now."""
        with self._lock:
            return [sid for sid, entry in self._entries.items() if not entry.final]

    def is_final(self, session_id: str) -> bool:
        """Whether the session's recording is complete (it will not change any more)."""
        with self._lock:
            entry = self._entries.get(session_id)
            return entry is not None and entry.final

    def path(self, session_id: str, filename: str) -> Path | None:
        """The file to serve for ``filename`` of ``session_id``, if it is its recording."""
        with self._lock:
            entry = self._entries.get(session_id)
        if entry is None or not entry.kept or entry.recorder.path.name != filename:
            return None
        path = entry.recorder.path
        return path if path.is_file() else None

    def files(self, session_id: str, url_prefix: str, query: str = "") -> list[dict[str, Any]]:
        """``FileInfo`` dicts of the session's recording (none, or one)."""
        with self._lock:
            entry = self._entries.get(session_id)
            if entry is None or not entry.kept:
                return []
            final, checksum = entry.final, entry.checksum
        path = entry.recorder.path
        try:
            stat = path.stat()
        except OSError:
            if final:
                return []
            stat = None  # not written yet: listed all the same, the session is recorded
        modified = (
            datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc).isoformat() if stat else None
        )
        return [
            {
                "url": f"{url_prefix}/{quote(path.name, safe='')}{query}",
                "checksum": checksum if final else None,
                "filename": path.name,
                "file_size": stat.st_size if final and stat else None,
                "modified_at": modified,
                "artifact_id": None,
            }
        ]


def make_recordings(directory: Path) -> Recordings | None:
    """Recordings under ``directory`` (created), or ``None`` and one warning without PyAV."""
    fmt = choose_format()
    if fmt is None:
        logger.warning(
            "recordings are off: PyAV is not installed or encodes neither H.264 nor VP8"
            " (pip install 'skyvern-cdp[local]')"
        )
        return None
    directory.mkdir(parents=True, exist_ok=True)
    return Recordings(directory, fmt)


def _sha256(path: Path) -> str | None:
    digest = hashlib.sha256()
    try:
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def _log_start_failure(session_id: str, task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("session %s: recording did not start: %s", session_id, task.exception())
