"""The watchdog alone: what it kills and removes when its parent's pipe closes."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from skyvern_cdp.local.watchdog import Watchdog


def sleeper(*args: str) -> subprocess.Popen[bytes]:
    """A process that leads its own group, like a Chromium, with ``args`` on its command line."""
    code = "import time; time.sleep(60)"
    return subprocess.Popen([sys.executable, "-c", code, *args], start_new_session=True)


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="scdp-test-"))
    yield path
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def test_end_of_file_kills_known_groups_and_removes_known_dirs(workdir: Path) -> None:
    kept, known, forgotten = workdir / "kept", workdir / "known", workdir / "forgotten"
    for path in (kept, known, forgotten):
        path.mkdir()
    victim, spared = sleeper(), sleeper()
    try:
        dog = Watchdog.start()
        dog.add_dir(known)
        dog.add_dir(forgotten)
        dog.forget_dir(forgotten)
        dog.add_group(victim.pid)
        dog.add_group(spared.pid)
        dog.forget_group(spared.pid)
        dog.stop()  # closes the pipe, as the parent's death would
        assert victim.wait(10) == -9
        assert spared.poll() is None, "a forgotten group is left alone"
        assert not known.exists()
        assert kept.exists()
        assert forgotten.exists()
    finally:
        for proc in (victim, spared):
            proc.kill()
            proc.wait()


def test_a_process_in_a_known_dir_is_found_without_its_pid(workdir: Path) -> None:
    """The parent died between starting Chromium and telling the watchdog its pid."""
    root = workdir / "chromium-root"
    (root / "profile").mkdir(parents=True)
    orphan = sleeper(f"--user-data-dir={root / 'profile'}")
    bystander = sleeper(f"--user-data-dir={workdir / 'elsewhere' / 'profile'}")
    try:
        dog = Watchdog.start()
        dog.add_dir(root)
        dog.stop()
        assert orphan.wait(10) == -9
        assert bystander.poll() is None
        assert not root.exists()
    finally:
        for proc in (orphan, bystander):
            proc.kill()
            proc.wait()
