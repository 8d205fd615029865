"""The ledger of launched sessions: files that the controller and every xdist worker append
to, so that the controller can close what a killed or interrupted worker left open.

>>> ledger = Ledger(Path(tmp))          # doctest: +SKIP
>>> ledger.record("created", "pbs_1")   # doctest: +SKIP
>>> ledger.read()                       # doctest: +SKIP
(['pbs_1'], {})
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

__all__ = ["Ledger"]


class Ledger:
    """Which sessions were launched, closed or kept, in files every process can append to.

    The controller (or the only process) owns the directory; xdist workers get its path
    through ``workerinput``. At the end the controller closes every session a worker created
    but never closed or kept: a worker killed by Ctrl-C or a crash leaves nothing open.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._file = directory / f"{os.getpid()}.log"

    def record(self, event: str, session_id: str, extra: str = "") -> None:
        line = f"{event} {session_id} {extra}".rstrip() + "\n"
        with open(self._file, "a", encoding="utf-8") as out:
            out.write(line)
            out.flush()

    def read(self) -> tuple[list[str], dict[str, str]]:
        """Sessions still open (created, not closed or kept), and the kept ones → app_url."""
        created: list[str] = []
        done: set[str] = set()
        kept: dict[str, str] = {}
        for path in sorted(self.directory.glob("*.log")):
            with contextlib.suppress(OSError):
                for line in path.read_text(encoding="utf-8").splitlines():
                    event, _, rest = line.partition(" ")
                    sid, _, extra = rest.partition(" ")
                    if event == "created":
                        created.append(sid)
                    elif event == "closed":
                        done.add(sid)
                    elif event == "kept":
                        done.add(sid)
                        kept[sid] = extra
        return [sid for sid in created if sid not in done], kept
