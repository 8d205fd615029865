"""A real ipykernel for the notebook tests, spoken to with jupyter_client.

nbclient drops display updates that arrive after their cell finished, so the tests talk to
the kernel directly and keep every iopub message: ``display_data`` with a
``transient.display_id``, then ``update_display_data`` with that id.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable
from typing import Any

import pytest
from jupyter_client import KernelManager


class Kernel:
    """A real ipykernel; every iopub message is kept, also those after their cell finished."""

    def __init__(self, env: dict[str, str]) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.shutdown_wait_time = 30.0  # a graceful exit runs the kernel's atexit
        self.manager.start_kernel(env=env)
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.messages: list[dict[str, Any]] = []

    @property
    def pid(self) -> int:
        pid = self.manager.provisioner.pid  # type: ignore[union-attr]
        assert isinstance(pid, int)
        return pid

    def _pump(self, timeout: float) -> bool:
        try:
            self.messages.append(self.client.get_iopub_msg(timeout=max(0.0, timeout)))
        except queue.Empty:
            return False
        return True

    def run(self, code: str, timeout: float = 60.0) -> str:
        """Execute one cell; what it printed. An error in the cell fails the test."""
        msg_id = self.client.execute(code)
        deadline = time.monotonic() + timeout
        while True:
            assert time.monotonic() < deadline, f"the cell did not finish: {code!r}"
            if not self._pump(deadline - time.monotonic()):
                continue
            m = self.messages[-1]
            if m["parent_header"].get("msg_id") != msg_id:
                continue
            if m["msg_type"] == "error":
                pytest.fail("\n".join(m["content"]["traceback"]))
            if m["msg_type"] == "status" and m["content"]["execution_state"] == "idle":
                break
        return "".join(
            m["content"]["text"]
            for m in self.messages
            if m["msg_type"] == "stream" and m["parent_header"].get("msg_id") == msg_id
        )

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return predicate()
            self._pump(min(0.1, deadline - time.monotonic()))
        return True

    def listen(self, seconds: float) -> None:
        """Keep every message for ``seconds``: how absence (no frames) is shown."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self._pump(deadline - time.monotonic())

    def updates(self, display_id: str, since: int = 0) -> list[str]:
        """The images (base64 JPEG) of ``update_display_data`` for ``display_id``."""
        return [
            m["content"]["data"]["image/jpeg"]
            for m in self.messages[since:]
            if m["msg_type"] == "update_display_data"
            and m["content"]["transient"]["display_id"] == display_id
        ]

    def new_displays(self, since: int = 0) -> list[str]:
        return [
            m["content"]["transient"]["display_id"]
            for m in self.messages[since:]
            if m["msg_type"] == "display_data" and "display_id" in m["content"].get("transient", {})
        ]

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)

    def displayed(self, mime: str, since: int = 0) -> list[str]:
        """The ``mime`` part of each ``display_data`` since message ``since``."""
        return [
            m["content"]["data"][mime]
            for m in self.messages[since:]
            if m["msg_type"] == "display_data" and mime in m["content"]["data"]
        ]
