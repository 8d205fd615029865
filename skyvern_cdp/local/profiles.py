"""Browser profiles in the local backend's session lifecycle: a session starts from a copy of
its profile, and at its end (after a clean Chromium shutdown, so cookies and localStorage are
on disk) its user-data directory is saved: as the session's archive when it was created with
``generate_browser_profile``, and written back to the profile it loaded.

>>> from skyvern_cdp.local.profiles import source_of_create
>>> source_of_create(generate=True, loaded=None, live=False, saving=False, archived=True,
...                  loaded_exists=False)
'archive'
>>> source_of_create(generate=True, loaded=None, live=False, saving=True, archived=False,
...                  loaded_exists=False)
'pending'

The save runs after the session's close has answered (the close does not wait for the copy),
as on Skyvern's servers: a ``POST /v1/browser_profiles`` in that window answers the transient
400, and a client retries it. Nothing is ever shared between two live sessions: each one
gets its own copy, and writes back a copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from skyvern_cdp.local.profile_store import ProfileStore, copy_state

if TYPE_CHECKING:
    from skyvern_cdp.cdp_client import CDPConnection
    from skyvern_cdp.local.chromium import ChromiumProcess
    from skyvern_cdp.local.registry import SessionRecord

__all__ = ["SHUTDOWN_TIMEOUT", "SessionProfiles", "profiles_for", "source_of_create"]

logger = logging.getLogger("skyvern_cdp.local.profiles")

#: Seconds a Chromium gets to shut down cleanly (flushing cookies and storage) at its end.
SHUTDOWN_TIMEOUT = 10.0

#: The details of the three 400s, as Skyvern's server words them.
NOT_CONFIGURED = (
    "This browser session was not configured to generate a browser profile. Start a session"
    " with generate_browser_profile enabled to capture a profile."
)
PENDING = (
    "Browser session does not have a persisted profile archive. Close the session and wait for"
    " upload before creating a browser profile."
)


def reused_unavailable(profile_id: str) -> str:
    return (
        f"This browser session reused profile {profile_id}, whose archive is unavailable. Create"
        " a profile from that session's source profile instead, or start a session with"
        " generate_browser_profile enabled to capture a new profile."
    )


def source_of_create(
    *,
    generate: bool,
    loaded: str | None,
    live: bool,
    saving: bool,
    archived: bool,
    loaded_exists: bool,
) -> str:
    """Where a profile created from a session comes from, or why it cannot be made:
    ``archive`` (the session's own save), ``loaded`` (the profile it loaded and wrote back),
    ``pending`` (not saved yet: transient), ``not_configured`` or ``reused_unavailable``."""
    if generate:
        if archived:
            return "archive"
        return "pending"
    if loaded is None:
        return "not_configured"
    if live or saving:
        return "pending"
    return "loaded" if loaded_exists else "reused_unavailable"


def _wait_exit(process: ChromiumProcess, timeout: float) -> bool:
    try:
        process.process.wait(timeout)
    except subprocess.TimeoutExpired:
        return False
    return True


class SessionProfiles:
    """What the session manager calls at a session's start and end (its ``profiles``)."""

    def __init__(self, store: ProfileStore, work: Path) -> None:
        self.store = store
        self.work = work
        self.work.mkdir(parents=True, exist_ok=True)
        self._archives: dict[str, Path] = {}
        self._saving: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @staticmethod
    def saves(rec: SessionRecord) -> bool:
        return rec.generate_browser_profile or rec.browser_profile_id is not None

    def seeder(self, rec: SessionRecord) -> Callable[[Path], None] | None:
        """What fills a new Chromium's user-data directory (before it starts), if anything."""
        profile_id = rec.browser_profile_id
        if profile_id is None:
            return None

        def seed(profile_dir: Path) -> None:
            if not self.store.seed(profile_id, profile_dir):
                raise RuntimeError(f"browser profile {profile_id} is gone")

        return seed

    # ---- the end of a session ---------------------------------------------------------

    async def take(
        self, rec: SessionRecord, cdp: CDPConnection, process: ChromiumProcess
    ) -> Path | None:
        """Shut Chromium down cleanly and move its user-data directory aside; ``None`` when
        this session saves nothing, or the shutdown was not clean (then nothing is saved)."""
        if not self.saves(rec):
            return None
        sid = rec.browser_session_id
        self._saving.add(sid)
        try:
            with contextlib.suppress(Exception):
                await cdp.send("Browser.close", timeout=SHUTDOWN_TIMEOUT)
            if not await asyncio.to_thread(_wait_exit, process, SHUTDOWN_TIMEOUT):
                logger.warning("session %s: Chromium did not shut down cleanly; not saved", sid)
                self._saving.discard(sid)
                return None
            taken = self.work / f"taken-{sid}-{secrets.token_hex(4)}"
            await asyncio.to_thread(shutil.move, str(process.profile_dir), str(taken))
        except BaseException:
            self._saving.discard(sid)
            raise
        return taken

    def finish(self, rec: SessionRecord, taken: Path | None, ended_at: float) -> None:
        """Save what :meth:`take` moved aside, in the background (the close answers first)."""
        if taken is None:
            return
        task = asyncio.ensure_future(self._save(rec, taken, ended_at))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _save(self, rec: SessionRecord, taken: Path, ended_at: float) -> None:
        sid = rec.browser_session_id
        try:
            await asyncio.to_thread(self._save_blocking, rec, taken, ended_at)
        except Exception:
            logger.exception("session %s: saving its browser state failed", sid)
        finally:
            self._saving.discard(sid)
            await asyncio.to_thread(shutil.rmtree, taken, True)

    def _save_blocking(self, rec: SessionRecord, taken: Path, ended_at: float) -> None:
        sid = rec.browser_session_id
        if rec.generate_browser_profile:
            archive = self.work / f"archive-{sid}"
            copy_state(taken, archive)
            self._archives[sid] = archive
            logger.info("session %s: browser state saved", sid)
        if rec.browser_profile_id is not None:
            staged = self.store.staging_dir()
            copy_state(taken, staged / "state")
            self.store.write_back(rec.browser_profile_id, staged / "state", ended_at=ended_at)
            shutil.rmtree(staged, ignore_errors=True)

    async def drain(self) -> None:
        """Wait for every save in progress (the backend is shutting down)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # ---- creating a profile from a session --------------------------------------------

    def source(self, rec: SessionRecord) -> tuple[str, Path | None]:
        """:func:`source_of_create` for ``rec``, with the archive's path when there is one."""
        sid = rec.browser_session_id
        loaded = rec.browser_profile_id
        kind = source_of_create(
            generate=rec.generate_browser_profile,
            loaded=loaded,
            live=rec.is_live,
            saving=sid in self._saving,
            archived=sid in self._archives,
            loaded_exists=loaded is not None and self.store.get(loaded) is not None,
        )
        return kind, self._archives.get(sid) if kind == "archive" else None


def profiles_for(directory: Path | None, root: Path, organization_id: str) -> SessionProfiles:
    """The profiles of one backend: under ``directory`` (kept), or under the backend's own
    temporary ``root`` (removed with it)."""
    store = ProfileStore(directory or root / "profiles", organization_id=organization_id)
    return SessionProfiles(store, root / "profile-work")
