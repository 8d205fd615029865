"""The local backend's browser profiles on disk: one directory per profile, shared safely by
every ``serve`` that names the same ``--profiles-dir``.

>>> from skyvern_cdp.local.profile_store import ProfileStore, is_cache
>>> store = ProfileStore(Path("/tmp/scdp-profiles-doc"))  # doctest: +SKIP
>>> made = store.create("crm", None, source=None)   # a blank profile   # doctest: +SKIP
>>> store.get(made["browser_profile_id"])["name"]   # doctest: +SKIP
'crm'
>>> is_cache(Path("Default/Cache/Cache_Data/f_000001")), is_cache(Path("Default/Cookies"))
(True, False)

A directory the store creates is readable by its owner only (0700: profiles hold login
cookies). Layout: ``<root>/<bp_id>/profile.json`` (the ``BrowserProfile`` body, plus when
its state was last written) and ``<root>/<bp_id>/state/`` (a Chromium user-data directory,
caches left out). Every change is made in ``<root>/.staging`` and renamed into place, under
an exclusive ``fcntl.flock`` of ``<root>/.lock``, so a reader never sees half a profile and
two servers never interleave. Everything here blocks: the backend calls it in threads.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import secrets
import shutil
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path, PurePath
from typing import Any

__all__ = [
    "CACHE_NAMES",
    "NameTakenError",
    "ProfileStore",
    "copy_state",
    "default_profiles_dir",
    "is_cache",
    "new_profile_id",
]

logger = logging.getLogger("skyvern_cdp.local.profiles")

#: Entries of a user-data directory that are caches, locks or crash data, not browser state:
#: a profile leaves them out (they are large, and rebuilt by the next Chromium).
CACHE_NAMES: frozenset[str] = frozenset(
    {
        "Cache",
        "Code Cache",
        "GPUCache",
        "DawnCache",
        "DawnGraphiteCache",
        "DawnWebGPUCache",
        "GrShaderCache",
        "GraphiteDawnCache",
        "ShaderCache",
        "CacheStorage",
        "ScriptCache",
        "component_crx_cache",
        "extensions_crx_cache",
        "Crashpad",
        "CrashpadMetrics-active.pma",
        "BrowserMetrics",
        "BrowserMetrics-spare.pma",
        "Safe Browsing",
        "Snapshots",
        "DevToolsActivePort",
        "SingletonCookie",
        "SingletonLock",
        "SingletonSocket",
        "optimization_guide_model_store",
        "segmentation_platform",
    }
)

_ID_RE = re.compile(r"bp_[A-Za-z0-9_-]{1,124}")
_META = "profile.json"
_STATE = "state"


def is_cache(relative: PurePath) -> bool:
    """Whether a path inside a user-data directory is a cache (or lock) a profile leaves out."""
    return any(part in CACHE_NAMES for part in relative.parts)


def copy_state(source: Path, destination: Path) -> None:
    """Copy a user-data directory without its caches and locks (symlinks are not followed)."""

    def ignore(directory: str, names: list[str]) -> list[str]:
        return [name for name in names if name in CACHE_NAMES]

    shutil.copytree(source, destination, symlinks=True, ignore=ignore, dirs_exist_ok=True)


def prune_caches(directory: Path) -> None:
    """Remove the caches and locks of a user-data directory in place."""
    for path in sorted(directory.rglob("*"), key=lambda p: len(p.parts)):
        if path.name in CACHE_NAMES:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(OSError):
                    path.unlink()


def new_profile_id() -> str:
    """``bp_`` and 20 random digits (from :mod:`secrets`)."""
    return "bp_" + secrets.choice("123456789") + "".join(
        secrets.choice("0123456789") for _ in range(19)
    )


def default_profiles_dir() -> Path:
    """Where ``skyvern-cdp serve`` keeps profiles unless told: the user's data directory
    (``$XDG_DATA_HOME`` or ``~/.local/share`` on Linux, ``~/Library/Application Support`` on
    macOS, ``%LOCALAPPDATA%`` on Windows), then ``skyvern-cdp/profiles``."""
    if os.name == "nt":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif os.uname().sysname == "Darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "skyvern-cdp" / "profiles"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()


class NameTakenError(Exception):
    """A live profile has that name already."""


class ProfileStore:
    """The profiles under one directory (created if missing)."""

    def __init__(self, root: Path, *, organization_id: str = "o_local") -> None:
        self.root = root
        self.organization_id = organization_id
        if not self.root.exists():
            # Profiles hold login cookies: only their owner may read them.
            self.root.mkdir(parents=True, mode=0o700)
        self._staging = self.root / ".staging"
        self._staging.mkdir(exist_ok=True)
        with self._locked():
            # What a killed server left half-made is not a profile: start clean.
            for leftover in self._staging.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.root / ".lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _dir(self, profile_id: str) -> Path:
        return self.root / profile_id

    def _read(self, directory: Path) -> dict[str, Any] | None:
        try:
            data: dict[str, Any] = json.loads((directory / _META).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data

    def _all(self) -> list[dict[str, Any]]:
        found = []
        for child in self.root.iterdir():
            if child.name.startswith("bp_") and child.is_dir():
                meta = self._read(child)
                if meta is not None:
                    found.append(meta)
        return found

    @staticmethod
    def wire(meta: dict[str, Any]) -> dict[str, Any]:
        """The ``BrowserProfile`` body of a stored profile."""
        return {k: v for k, v in meta.items() if not k.startswith("_")}

    # ---- reading ------------------------------------------------------------------------

    def get(self, profile_id: str) -> dict[str, Any] | None:
        if not _ID_RE.fullmatch(profile_id):
            return None
        meta = self._read(self._dir(profile_id))
        return self.wire(meta) if meta is not None else None

    def list(self, *, page: int, page_size: int, search_key: str | None) -> list[dict[str, Any]]:
        """Newest first; ``search_key`` matches a substring of the name or the description,
        ignoring case."""
        items = sorted(self._all(), key=lambda m: str(m.get("created_at")), reverse=True)
        if search_key:
            key = search_key.lower()
            items = [
                m
                for m in items
                if key in str(m.get("name", "")).lower()
                or key in str(m.get("description") or "").lower()
            ]
        start = (page - 1) * page_size
        return [self.wire(m) for m in items[start : start + page_size]]

    def name_taken(self, name: str) -> bool:
        return any(m.get("name") == name for m in self._all())

    # ---- changing -----------------------------------------------------------------------

    def create(
        self,
        name: str,
        description: str | None,
        *,
        source: Path | None,
        from_profile: str | None = None,
        source_browser_type: str | None = None,
    ) -> dict[str, Any]:
        """A new profile holding a copy of ``source`` (a user-data directory) or of the state
        of profile ``from_profile``, or blank.

        Raises :class:`NameTakenError` when a profile has that name already, and
        :class:`FileNotFoundError` when ``from_profile`` is gone.
        """
        staging = Path(os.path.realpath(self._staging)) / f"new-{secrets.token_hex(6)}"
        (staging / _STATE).mkdir(parents=True)
        try:
            if source is not None:
                copy_state(source, staging / _STATE)
            with self._locked():
                if self.name_taken(name):
                    raise NameTakenError(name)
                if from_profile is not None:
                    state = self._dir(from_profile) / _STATE
                    if not state.is_dir():
                        raise FileNotFoundError(from_profile)
                    copy_state(state, staging / _STATE)
                profile_id = new_profile_id()
                now = _now()
                meta = {
                    "browser_profile_id": profile_id,
                    "organization_id": self.organization_id,
                    "name": name,
                    "description": description,
                    "source_browser_type": source_browser_type,
                    "proxy_location": None,
                    "proxy_session_id": None,
                    "is_managed": False,
                    "created_at": now,
                    "modified_at": now,
                    "deleted_at": None,
                    "_state_ended_at": 0.0,
                }
                (staging / _META).write_text(json.dumps(meta), encoding="utf-8")
                staging.rename(self._dir(profile_id))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        logger.info("browser profile %s created (%r)", profile_id, name)
        return self.wire(meta)

    def delete(self, profile_id: str) -> bool:
        """Remove the profile and its state; ``False`` when there was none."""
        if self.get(profile_id) is None:
            return False
        with self._locked():
            directory = self._dir(profile_id)
            if not directory.exists():
                return False
            gone = self._staging / f"deleted-{secrets.token_hex(6)}"
            directory.rename(gone)
        shutil.rmtree(gone, ignore_errors=True)
        logger.info("browser profile %s deleted", profile_id)
        return True

    def seed(self, profile_id: str, destination: Path) -> bool:
        """Copy the profile's state into ``destination`` (a new Chromium's user-data
        directory); ``False`` when the profile is gone."""
        with self._locked():
            state = self._dir(profile_id) / _STATE
            if not state.is_dir():
                return False
            copy_state(state, destination)
        return True

    def write_back(self, profile_id: str, source: Path, *, ended_at: float) -> bool:
        """Replace the profile's state with ``source`` (a session's user-data directory, its
        caches pruned), unless a session that ended later wrote it already: the last to end
        wins. ``source`` is moved, not copied. ``False`` when nothing was written."""
        with self._locked():
            directory = self._dir(profile_id)
            meta = self._read(directory)
            if meta is None or float(meta.get("_state_ended_at", 0.0)) > ended_at:
                shutil.rmtree(source, ignore_errors=True)
                return False
            old = self._staging / f"old-{secrets.token_hex(6)}"
            (directory / _STATE).rename(old)
            source.rename(directory / _STATE)
            meta["modified_at"] = _now()
            meta["_state_ended_at"] = ended_at
            tmp = directory / f".{_META}.tmp"
            tmp.write_text(json.dumps(meta), encoding="utf-8")
            tmp.replace(directory / _META)
        shutil.rmtree(old, ignore_errors=True)
        logger.info("browser profile %s: state written back", profile_id)
        return True

    def staging_dir(self) -> Path:
        """A fresh directory on the store's file system (so a rename into place is atomic)."""
        path = self._staging / f"in-{secrets.token_hex(6)}"
        path.mkdir()
        return path

