"""SIGTERM as Ctrl-C while the plugin may hold launched sessions.

A CI system that cancels a job sends SIGTERM; by default that ends pytest at once, and every
session the run launched lives on (and costs money) until its own timeout. Turned into a
``KeyboardInterrupt``, it takes the path Ctrl-C takes: pytest stops, tears its fixtures
down, and the plugin closes its session (the xdist controller sweeps its workers' ledger).

>>> guard = SigtermAsInterrupt()
>>> guard.install()       # doctest: +SKIP
>>> guard.restore()       # the previous handler is back
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType
from typing import Any

__all__ = ["SigtermAsInterrupt"]

logger = logging.getLogger("skyvern_cdp.pytest_plugin")


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


class SigtermAsInterrupt:
    """Installs the handler only where it can (the main thread) and only over the default
    one: a handler that the user's code or another plugin set is left alone."""

    def __init__(self) -> None:
        self._previous: Any = None
        self.installed = False

    def install(self) -> None:
        if self.installed or threading.current_thread() is not threading.main_thread():
            return
        if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
            logger.debug("SIGTERM already has a handler; leaving it")
            return
        self._previous = signal.signal(signal.SIGTERM, _interrupt)
        self.installed = True

    def restore(self) -> None:
        if not self.installed:
            return
        self.installed = False
        if signal.getsignal(signal.SIGTERM) is _interrupt:
            signal.signal(signal.SIGTERM, self._previous)
