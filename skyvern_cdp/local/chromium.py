"""Find a Chromium, start it with a CDP endpoint on loopback, stop it without leftovers.

>>> from skyvern_cdp.local.chromium import find_chromium, ChromiumProcess
>>> proc = ChromiumProcess.start(find_chromium(), extra_args=["--mute-audio"])  # doctest: +SKIP
>>> proc.ws_endpoint  # doctest: +SKIP
'ws://127.0.0.1:41234/devtools/browser/1f0c…'
>>> proc.stop()  # doctest: +SKIP

Where the browser comes from, in order: ``SKYVERN_CDP_CHROMIUM``, Playwright's own installed
build, then a system ``chromium`` / ``google-chrome`` on ``PATH``.

Run as ``python -m skyvern_cdp.local.chromium`` to print the executable that would be used
(exit 1 when there is none).
"""

from __future__ import annotations

import contextlib
import glob
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "CHROMIUM_ENV",
    "CLOSED_NETWORK_ARGS",
    "BrowserNotFoundError",
    "ChromiumProcess",
    "ChromiumStartError",
    "base_args",
    "find_chromium",
    "wait_for_json_version",
]

logger = logging.getLogger("skyvern_cdp.local.chromium")

CHROMIUM_ENV = "SKYVERN_CDP_CHROMIUM"

_SYSTEM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")

#: For tests and CI: no DNS lookups at all; pages come from loopback and ``data:`` only.
CLOSED_NETWORK_ARGS: tuple[str, ...] = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
)


class BrowserNotFoundError(RuntimeError):
    """No Chromium was found. Set ``SKYVERN_CDP_CHROMIUM`` or install one."""


class ChromiumStartError(RuntimeError):
    """Chromium exited, or did not open its CDP endpoint in time."""


def _playwright_builds(
    build: str = "chromium", platform: str = "chrome-linux*", names: Sequence[str] = ("chrome",)
) -> list[str]:
    """Executables of Playwright's installed ``build`` (``<build>-<number>/<platform>/<name>``),
    newest first: ``$PLAYWRIGHT_BROWSERS_PATH``, then ``~/.cache/ms-playwright``."""
    roots = []
    if os.environ.get("PLAYWRIGHT_BROWSERS_PATH") not in (None, "", "0"):
        roots.append(os.environ["PLAYWRIGHT_BROWSERS_PATH"])
    roots.append(os.path.expanduser("~/.cache/ms-playwright"))
    found: list[str] = []
    for root in roots:
        matches = [path for name in names
                   for path in glob.glob(os.path.join(root, f"{build}-*", platform, name))]
        found.extend(sorted(matches, key=_build_number, reverse=True))
    return [path for path in found if os.access(path, os.X_OK)]


def _build_number(path: str) -> int:
    """``.../chromium-1200/chrome-linux/chrome`` -> 1200 (so 1000 is newer than 999)."""
    build = Path(path).parent.parent.name.rsplit("-", 1)[-1]
    return int(build) if build.isdigit() else -1


def find_chromium() -> str:
    """The path of the Chromium to start, or :class:`BrowserNotFoundError`."""
    configured = os.environ.get(CHROMIUM_ENV)
    if configured:
        path = shutil.which(configured) or configured
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            raise BrowserNotFoundError(f"{CHROMIUM_ENV}={configured!r} is not an executable file")
        return path
    builds = _playwright_builds()
    if builds:
        return builds[0]
    for name in _SYSTEM_NAMES:
        system = shutil.which(name)
        if system:
            return system
    raise BrowserNotFoundError(no_chromium_message())


def no_chromium_message(checkout: Path | None = None) -> str:
    """What to do when no Chromium is found; ``scripts/setup`` only where a checkout has it.

    ``checkout`` is the directory above the package (an installed wheel has no scripts/ there).
    """
    root = checkout if checkout is not None else Path(__file__).resolve().parents[2]
    in_checkout = (root / "scripts" / "setup").is_file()
    setup = " run scripts/setup (which installs one)," if in_checkout else ""
    return (
        f"no Chromium found: set {CHROMIUM_ENV}=/path/to/chrome,{setup}"
        " or run `playwright install chromium`"
    )


def base_args() -> list[str]:
    """Flags every Chromium started here gets: headless, quiet, CDP on loopback only."""
    args = [
        "--headless=new",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-default-apps",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-quic",
        "--mute-audio",
        "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


def _read_active_port(profile: Path) -> tuple[int, str] | None:
    try:
        lines = (profile / "DevToolsActivePort").read_text().splitlines()
    except OSError:
        return None
    if len(lines) < 2 or not lines[0].strip().isdigit():
        return None
    return int(lines[0]), lines[1].strip()


@dataclass
class ChromiumProcess:
    """One headless Chromium with its own profile and temp directory, and its CDP endpoint."""

    process: subprocess.Popen[bytes]
    root: Path
    port: int
    ws_path: str
    _stopped: bool = field(default=False, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def http_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_endpoint(self) -> str:
        return f"ws://127.0.0.1:{self.port}{self.ws_path}"

    @property
    def profile_dir(self) -> Path:
        return self.root / "profile"

    @property
    def download_dir(self) -> Path:
        return self.root / "downloads"

    @classmethod
    def start(
        cls,
        executable: str | None = None,
        *,
        extra_args: Sequence[str] = (),
        url: str = "about:blank",
        start_timeout: float = 30.0,
        root_prefix: str = "scdp-",
        download_dir: Path | None = None,
        on_root: Callable[[Path], None] | None = None,
        on_spawn: Callable[[int, Path], None] | None = None,
        seed: Callable[[Path], None] | None = None,
    ) -> ChromiumProcess:
        """Start Chromium and wait until its CDP endpoint is written out.

        Each process gets a fresh directory under ``/tmp`` (short, so Chromium's socket paths
        fit) holding its profile, its ``TMPDIR`` and its downloads; :meth:`stop` removes it.
        Downloads go to ``download_dir`` (default: ``<root>/downloads``) unless a CDP client
        redirects them. So that a watchdog can learn what to clean up, ``on_root(root)`` is
        called once the directory exists and before the process does (Chromium names it in
        its ``--user-data-dir``), and ``on_spawn(pid, root)`` as soon as the process exists
        (its process-group id is its pid). ``seed(profile_dir)`` fills the user-data directory
        before Chromium starts (a browser profile's saved state).
        """
        exe = executable or find_chromium()
        tmp = "/tmp" if os.path.isdir("/tmp") else None
        root = Path(tempfile.mkdtemp(prefix=root_prefix, dir=tmp))
        if on_root is not None:
            try:
                on_root(root)
            except BaseException:
                shutil.rmtree(root, ignore_errors=True)
                raise
        for sub in ("profile", "tmp", "downloads"):
            (root / sub).mkdir()
        if seed is not None:
            try:
                seed(root / "profile")
            except BaseException:
                shutil.rmtree(root, ignore_errors=True)
                raise
        _write_preferences(root / "profile", download_dir or root / "downloads")
        env = dict(os.environ, TMPDIR=str(root / "tmp"))
        argv = [exe, *base_args(), f"--user-data-dir={root / 'profile'}", *extra_args, url]
        try:
            process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=env,
                start_new_session=True,  # its own process group: stop() reaps renderers too
            )
        except OSError as exc:
            shutil.rmtree(root, ignore_errors=True)
            raise ChromiumStartError(f"could not start {exe}: {exc}") from exc
        if on_spawn is not None:
            try:
                on_spawn(process.pid, root)
            except BaseException:
                _kill_group(process)
                shutil.rmtree(root, ignore_errors=True)
                raise
        deadline = time.monotonic() + start_timeout
        while True:
            found = _read_active_port(root / "profile")
            if found is not None:
                port, ws_path = found
                logger.debug("chromium pid %s listening on 127.0.0.1:%s", process.pid, port)
                return cls(process=process, root=root, port=port, ws_path=ws_path)
            code = process.poll()
            if code is not None or time.monotonic() > deadline:
                _kill_group(process)
                shutil.rmtree(root, ignore_errors=True)
                why = f"exited with code {code}" if code is not None else "timed out"
                raise ChromiumStartError(f"Chromium did not open its CDP endpoint: {why}")
            time.sleep(0.01)

    def alive(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the whole process group and remove the directory. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        _kill_group(self.process, timeout)
        shutil.rmtree(self.root, ignore_errors=True)


def _write_preferences(profile: Path, download_dir: Path) -> None:
    # The profile's own download directory: where files go when no CDP client has set a
    # download behaviour (Chromium resets it to this default when that client detaches).
    prefs: dict[str, dict[str, object]] = {
        "download": {
            "default_directory": str(download_dir),
            "prompt_for_download": False,
            "directory_upgrade": True,
        },
        "savefile": {"default_directory": str(download_dir)},
    }
    path = profile / "Default" / "Preferences"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:  # a profile's own preferences are kept; only the download directory is ours
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        kept = {}
    merged: dict[str, object] = kept if isinstance(kept, dict) else {}
    for key, value in prefs.items():
        section = merged.get(key)
        merged[key] = {**section, **value} if isinstance(section, dict) else value
    path.write_text(json.dumps(merged))


def _kill_group(process: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    try:
        pgid = os.getpgid(process.pid)
    except ProcessLookupError:
        pgid = None
    if pgid is not None and process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout)
    if pgid is not None:
        # Renderers and helpers that outlived the main process go too.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout)


def wait_for_json_version(process: ChromiumProcess, deadline: float) -> None:
    """Blocking: poll ``GET /json/version`` until it answers 200 or the deadline passes."""
    url = f"{process.http_endpoint}/json/version"
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    last: Exception | None = None
    while time.monotonic() < deadline:
        if not process.alive():
            raise RuntimeError(f"Chromium exited with code {process.process.returncode}")
        try:
            with opener.open(url, timeout=2.0) as answer:
                if answer.status == 200:
                    return
        except OSError as exc:
            last = exc
        time.sleep(0.02)
    raise TimeoutError(f"Chromium's /json/version did not answer in time ({last})")


def main(argv: Sequence[str] | None = None) -> int:
    try:
        print(find_chromium())
    except BrowserNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
