"""What a session's Chromium saved: ``FileInfo`` entries with a URL, sha256, size and time.

>>> from pathlib import Path
>>> from skyvern_cdp.local.downloads import DownloadIndex
>>> index = DownloadIndex()
>>> index.list(Path("/nonexistent"), url_prefix="http://127.0.0.1:8000/sessions/pbs_1/files")
[]

Files still being written (``*.crdownload``) and hidden files are left out. Checksums are
cached per (path, size, mtime), so polling a session does not re-hash its files.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["DownloadIndex", "safe_child", "unique_name"]

_PARTIAL_SUFFIXES = (".crdownload", ".part", ".tmp")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _is_listed(entry: os.DirEntry[str]) -> bool:
    name = entry.name
    return (
        not name.startswith(".")
        and not name.endswith(_PARTIAL_SUFFIXES)
        and entry.is_file(follow_symlinks=False)
    )


def safe_child(directory: Path, name: str) -> Path | None:
    """``directory / name`` when ``name`` is a plain file name in it; otherwise ``None``."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\x00" in name:
        return None
    path = directory / name
    if path.parent != directory or not path.is_file() or path.is_symlink():
        return None
    return path


def unique_name(directory: Path, wanted: str) -> Path:
    """A path in ``directory`` for ``wanted`` that does not exist yet (``name (1).ext``…)."""
    name = os.path.basename(wanted.replace("\\", "/")).strip() or "download"
    if name in (".", "..") or name.startswith("."):
        name = "download" + (name if name not in (".", "..") else "")
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext = name, ""
    candidate = directory / name
    counter = 1
    while candidate.exists():
        candidate = directory / (f"{stem} ({counter}).{ext}" if ext else f"{stem} ({counter})")
        counter += 1
    return candidate


class DownloadIndex:
    """Lists download directories as ``FileInfo`` dicts, caching checksums. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._checksums: dict[tuple[str, int, int], str] = {}

    def list(
        self, directory: Path | None, *, url_prefix: str, url_query: str = ""
    ) -> list[dict[str, Any]]:
        """``FileInfo`` dicts for the finished files in ``directory``, oldest first."""
        if directory is None:
            return []
        try:
            entries = [entry for entry in os.scandir(directory) if _is_listed(entry)]
        except OSError:
            return []
        files = []
        for entry in entries:
            try:
                stat = entry.stat(follow_symlinks=False)
                checksum = self._checksum(Path(entry.path), stat.st_size, stat.st_mtime_ns)
            except OSError:
                continue
            modified = datetime.fromtimestamp(stat.st_mtime, tz=timezone.utc)
            files.append(
                (
                    stat.st_mtime_ns,
                    {
                        "url": f"{url_prefix}/{quote(entry.name, safe='')}{url_query}",
                        "checksum": checksum,
                        "filename": entry.name,
                        "file_size": stat.st_size,
                        "modified_at": modified.isoformat(),
                        "artifact_id": None,
                    },
                )
            )
        files.sort(key=lambda item: (item[0], item[1]["filename"]))
        return [info for _, info in files]

    def _checksum(self, path: Path, size: int, mtime_ns: int) -> str:
        key = (str(path), size, mtime_ns)
        with self._lock:
            cached = self._checksums.get(key)
        if cached is not None:
            return cached
        value = _sha256(path)
        with self._lock:
            self._checksums[key] = value
        return value

    @staticmethod
    def adopt(source: Path, directory: Path, suggested_name: str) -> Path | None:
        """Copy a file Chromium saved elsewhere (a CDP client redirected it) into ``directory``.

        Returns the new path, or ``None`` when the source is already in ``directory`` or gone.
        """
        try:
            if source.resolve().parent == directory.resolve():
                return None
            if not source.is_file():
                return None
            target = unique_name(directory, suggested_name)
            partial = target.with_name(target.name + ".part")
            shutil.copyfile(source, partial)
            os.replace(partial, target)
            return target
        except OSError:
            return None
