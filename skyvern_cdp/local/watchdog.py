"""Clean up after a backend whose process died: kill its Chromiums, remove its directories.

>>> from skyvern_cdp.local.watchdog import Watchdog
>>> dog = Watchdog.start()            # doctest: +SKIP
>>> dog.add_dir("/tmp/scdp-abc")      # doctest: +SKIP
>>> dog.add_group(12345)              # a Chromium started with start_new_session=True
>>> dog.forget_group(12345)           # it was stopped normally
>>> dog.stop()                        # the backend shut down: the watchdog exits

The watchdog is a small separate process (this file, run by path with only the standard
library, so it starts fast). It reads one JSON object per line on stdin from its parent.
When stdin reaches end of file, whether because the parent closed it or because the parent
died (even by SIGKILL), it SIGKILLs every process group it still knows and removes every
directory it still knows, then exits. It ignores SIGINT (a Ctrl-C in the terminal is the
parent's to handle) and treats SIGTERM like end of file.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import IO, Any

__all__ = ["Watchdog", "main"]


class Watchdog:
    """The parent's handle on a watchdog process. Thread-safe; every method is idempotent."""

    def __init__(self, process: subprocess.Popen[bytes]) -> None:
        self._process = process
        self._lock = threading.Lock()
        # A forked child (multiprocessing's "fork") must not keep the pipe open, or the
        # watchdog would not see end of file when this process dies.
        ref = weakref.ref(self)

        def close_in_child() -> None:
            dog = ref()
            stdin = dog._process.stdin if dog is not None else None
            if stdin is not None and not stdin.closed:
                # Point the descriptor at /dev/null: the pipe is released, the number stays.
                with contextlib.suppress(OSError):
                    devnull = os.open(os.devnull, os.O_WRONLY)
                    os.dup2(devnull, stdin.fileno(), inheritable=False)
                    os.close(devnull)

        os.register_at_fork(after_in_child=close_in_child)

    @classmethod
    def start(cls) -> Watchdog:
        process = subprocess.Popen(
            [sys.executable, "-I", "-S", os.path.abspath(__file__)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            start_new_session=True,  # a terminal's Ctrl-C reaches the parent only
            close_fds=True,
        )
        return cls(process)

    @property
    def pid(self) -> int:
        return self._process.pid

    def _send(self, op: str, value: object) -> None:
        line = (json.dumps({"op": op, "value": value}) + "\n").encode()
        with self._lock:
            stdin = self._process.stdin
            if stdin is None or stdin.closed:
                return
            try:
                stdin.write(line)
                stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass

    def add_dir(self, path: str | os.PathLike[str]) -> None:
        self._send("add_dir", os.fspath(path))

    def forget_dir(self, path: str | os.PathLike[str]) -> None:
        self._send("forget_dir", os.fspath(path))

    def add_group(self, pgid: int) -> None:
        self._send("add_group", int(pgid))

    def forget_group(self, pgid: int) -> None:
        self._send("forget_group", int(pgid))

    def alive(self) -> bool:
        return self._process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """Close the pipe (the watchdog cleans what it still knows and exits) and reap it."""
        with self._lock:
            stdin = self._process.stdin
            if stdin is not None and not stdin.closed:
                with contextlib.suppress(OSError):
                    stdin.close()
        try:
            self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()


# ---- the watchdog process itself: standard library only ------------------------------------


def _processes_using(dirs: set[str]) -> set[int]:
    """Pids whose ``--user-data-dir`` lies in one of ``dirs`` (Linux ``/proc``; else none).

    This finds a Chromium whose parent died after starting it but before telling us its pid.
    """
    prefixes = tuple(path.rstrip("/") + "/" for path in dirs)
    found: set[int] = set()
    if not prefixes:
        return found
    try:
        entries = os.listdir("/proc")
    except OSError:
        return found
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                args = handle.read().split(b"\0")
        except OSError:
            continue
        for arg in args:
            if arg.startswith(b"--user-data-dir="):
                value = arg[len(b"--user-data-dir=") :].decode(errors="replace").rstrip("/") + "/"
                if value.startswith(prefixes):
                    found.add(int(entry))
    found.discard(os.getpid())
    return found


def _group_running(pgid: int) -> bool:
    """Whether a process of group ``pgid`` still runs (a zombie has stopped: it cannot write)."""
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        entries = os.listdir("/proc")
    except OSError:
        return True  # no /proc: assume so until the deadline
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # "pid (comm) state ppid pgrp ...": comm may hold spaces, so split after its ")".
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) >= 3 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False


def _kill_groups(groups: set[int]) -> None:
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pgid, signal.SIGKILL)
    deadline = time.monotonic() + 5.0
    for pgid in groups:
        while time.monotonic() < deadline and _group_running(pgid):
            time.sleep(0.01)


def _remove_dirs(dirs: set[str]) -> None:
    for path in dirs:
        # A process that was just killed may still be flushing into it: retry briefly.
        for _ in range(50):
            shutil.rmtree(path, ignore_errors=True)
            if not Path(path).exists():
                break
            time.sleep(0.02)


def _serve(stream: IO[bytes], groups: set[int], dirs: set[str]) -> None:
    for raw in stream:
        try:
            message: Any = json.loads(raw)
            op, value = message["op"], message["value"]
        except (ValueError, KeyError, TypeError):
            continue
        if op == "add_group" and isinstance(value, int) and value > 1:
            groups.add(value)
        elif op == "forget_group":
            groups.discard(value)
        elif op == "add_dir" and isinstance(value, str) and value.startswith("/"):
            dirs.add(value)
        elif op == "forget_dir":
            dirs.discard(value)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def on_term(signum: int, frame: object) -> None:
        # End the read loop as end of file would, so the clean-up below runs.
        raise EOFError

    signal.signal(signal.SIGTERM, on_term)
    groups: set[int] = set()
    dirs: set[str] = set()
    with contextlib.suppress(EOFError):
        _serve(sys.stdin.buffer, groups, dirs)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    for pid in _processes_using(dirs):
        with contextlib.suppress(OSError):
            pgid = os.getpgid(pid)
            # Chromium leads its own group; anything else is killed alone.
            if pgid == pid and pgid != os.getpgid(0):
                groups.add(pgid)
            else:
                os.kill(pid, signal.SIGKILL)
    _kill_groups(groups)
    _remove_dirs(dirs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
