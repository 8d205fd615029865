"""notebook.show(): a real ipykernel spoken to directly, the shared local backend, real Chromium.

nbclient drops display updates that arrive after their cell finished, so these tests talk to
the kernel with jupyter_client and keep every iopub message: ``display_data`` with a
``transient.display_id``, then ``update_display_data`` with that id.
"""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psutil
import pytest
from notebook_kernel import Kernel
from PIL import Image

from skyvern_cdp import InvalidArgumentError, InvalidArgumentTypeError, SkyvernClient, notebook

from conftest import LOCAL_API_KEY, wait_for

pytestmark = pytest.mark.browser

COLORS = {
    "red": (255, 0, 0),
    "blue": (0, 0, 255),
    "green": (0, 160, 0),
    "yellow": (255, 255, 0),
    "white": (255, 255, 255),
}


def color_of(jpeg_b64: str) -> str:
    """The named color nearest to the middle of a JPEG frame."""
    image = Image.open(io.BytesIO(base64.b64decode(jpeg_b64))).convert("RGB")
    pixel = image.getpixel((image.width // 2, image.height // 2))
    assert isinstance(pixel, tuple)
    def distance(name: str) -> int:
        return sum((a - b) ** 2 for a, b in zip(COLORS[name], pixel, strict=True))

    return min(COLORS, key=distance)


@pytest.fixture(scope="module")
def backend(long_lived_pids: set[int]) -> Iterator[Any]:
    """A backend of this module's own, without recordings: these tests count every frame the
    view gets, and a recorder's catch-up screenshot after an animation is a repaint it sees."""
    from skyvern_cdp.local import LocalBackend
    from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

    with LocalBackend(
        api_key=LOCAL_API_KEY, chromium_args=CLOSED_NETWORK_ARGS, recordings=False
    ) as server:
        pid = server.watchdog_pid
        long_lived_pids.add(pid or -1)
        try:
            yield server
        finally:
            long_lived_pids.discard(pid or -1)


@pytest.fixture
def kernel(backend: Any) -> Iterator[Kernel]:
    env = {**os.environ, "SKYVERN_BASE_URL": backend.base_url, "SKYVERN_API_KEY": LOCAL_API_KEY}
    started = Kernel(env)
    pid = started.pid
    try:
        yield started
    finally:
        started.shutdown()
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def paint(color: str) -> str:
    r, g, b = COLORS[color]
    return f"await page.evaluate(\"document.body.style.background='rgb({r},{g},{b})'\")"


SETUP = """
import asyncio, json
from skyvern_cdp import notebook
from skyvern_cdp.async_api import default_page, session_of
browser = await notebook.launch(session_timeout_minutes=10)
page = await default_page(browser)
await page.set_content("<body style='margin:0;height:100vh'></body>")
sid = session_of(browser).browser_session_id

async def quiet(view, period=0.5, deadline=10.0):
    '''Wait until Chromium has sent no frame for `period` seconds.'''
    loop = asyncio.get_running_loop()
    end, last, since = loop.time() + deadline, view.stats.received, loop.time()
    while loop.time() < end:
        await asyncio.sleep(0.05)
        if view.stats.received != last:
            last, since = view.stats.received, loop.time()
        elif loop.time() - since >= period:
            return True
    return False

def stats(view):
    print(json.dumps({**view.stats.__dict__, "running": view.running,
                      "why": view.stopped_because}))
"""


def test_the_shown_image_follows_the_page_in_one_display_and_stops(
    kernel: Kernel, backend: Any
) -> None:
    kernel.run(SETUP + paint("red"))
    sid = kernel.run("print(sid)").strip()

    # One display in the cell's output, then updates of that display by its id.
    mark = len(kernel.messages)
    kernel.run("view = notebook.show(max_fps=4)")
    [display_id] = kernel.new_displays(mark)
    assert kernel.wait_until(lambda: "red" in map(color_of, kernel.updates(display_id)))
    mark = len(kernel.messages)
    kernel.run(paint("blue"))
    assert kernel.wait_until(lambda: "blue" in map(color_of, kernel.updates(display_id, mark)))

    # While the page animates, frames come at most max_fps a second.
    mark = len(kernel.messages)
    kernel.run(
        "await page.add_style_tag(content='@keyframes k {from {background: red}"
        " to {background: blue}} body {animation: k 0.3s infinite alternate}')"
    )
    kernel.listen(2.0)
    animated = len(kernel.updates(display_id, mark))
    assert 3 <= animated <= 2.0 * 4 + 2, animated

    # An idle page sends no frames at all: nothing arrives, nothing is shown.
    mark = len(kernel.messages)
    kernel.run("await page.set_content(\"<body style='margin:0;height:100vh'></body>\")\n"
               + paint("green"))
    assert kernel.wait_until(lambda: "green" in map(color_of, kernel.updates(display_id, mark)))
    assert kernel.run("print(await quiet(view))").strip() == "True"
    before = json.loads(kernel.run("stats(view)"))
    mark = len(kernel.messages)
    kernel.listen(2.0)
    assert kernel.updates(display_id, mark) == []
    after = json.loads(kernel.run("stats(view)"))
    assert after == before
    assert before["running"] is True
    # throttling held acks back: Chromium sent about what was shown, not 60 a second
    assert before["received"] <= before["shown"] + before["stale"] + before["unchanged"]
    assert before["received"] < 40, before

    # Re-running the cell replaces the view: one live display, the old one is stopped.
    mark = len(kernel.messages)
    kernel.run("old = view\nview = notebook.show(max_fps=4)")
    [second_id] = kernel.new_displays(mark)
    assert second_id != display_id
    assert kernel.wait_until(lambda: "green" in map(color_of, kernel.updates(second_id)))
    replaced = json.loads(kernel.run("await old.wait_stopped()\nstats(old)"))
    assert replaced["running"] is False
    assert replaced["why"] == "replaced by a newer show() of the same page"
    mark = len(kernel.messages)
    kernel.run(paint("yellow"))
    assert kernel.wait_until(lambda: "yellow" in map(color_of, kernel.updates(second_id, mark)))
    assert kernel.updates(display_id, mark) == []

    # stop(): the screencast ends; a change to the page sends nothing any more.
    stopped = json.loads(kernel.run("view.stop()\nawait view.wait_stopped()\nstats(view)"))
    assert stopped["running"] is False
    mark = len(kernel.messages)
    kernel.run(paint("red"))
    kernel.listen(1.0)
    assert kernel.updates(second_id, mark) == []
    assert json.loads(kernel.run("stats(view)")) == stopped

    # A Browser that disconnects stops its view.
    mark = len(kernel.messages)
    kernel.run("last = notebook.show()")
    [third_id] = kernel.new_displays(mark)
    assert kernel.wait_until(lambda: "red" in map(color_of, kernel.updates(third_id)))
    out = kernel.run(
        "await notebook.close()\nawait asyncio.wait_for(last.wait_stopped(), 10)\nstats(last)"
    )
    # (Playwright reports the page closed just before the Browser's disconnect: either stops it)
    disconnected = json.loads(out)
    assert disconnected["running"] is False
    assert disconnected["why"] in ("the page closed", "the Browser disconnected")
    with SkyvernClient(LOCAL_API_KEY, backend.base_url) as client:
        assert client.get_browser_session(sid).status == "completed"


def test_outside_a_notebook_it_says_so_in_one_line_with_the_app_url(backend: Any) -> None:
    script = (
        "import asyncio\n"
        "from skyvern_cdp import notebook\n"
        "async def main():\n"
        "    browser = await notebook.launch(session_timeout_minutes=10)\n"
        "    view = notebook.show()\n"
        "    print(repr(view.running), view.stopped_because, view.display_id)\n"
        "    await notebook.close()\n"
        "asyncio.run(main())\n"
    )
    env = {**os.environ, "SKYVERN_BASE_URL": backend.base_url, "SKYVERN_API_KEY": LOCAL_API_KEY}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=90
    )
    assert done.returncode == 0, done.stderr[-2000:]
    notice, state = done.stdout.splitlines()
    assert notice.startswith("skyvern_cdp: not in a notebook, so there is nothing to show here;")
    assert f"watch it at {backend.base_url}/sessions/pbs_" in notice
    assert state == "False not in a notebook None"
    assert LOCAL_API_KEY not in done.stdout + done.stderr


async def test_bad_input_to_show_is_refused_with_a_typed_error(backend: Any) -> None:
    with pytest.raises(InvalidArgumentTypeError, match="browser must be an async Playwright"):
        notebook.show("pbs_123")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentTypeError, match="page must be an async Playwright Page"):
        notebook.show(page=object())  # type: ignore[arg-type]
    for fps in (0, -1, 31, float("nan"), float("inf")):
        with pytest.raises(InvalidArgumentError, match="max_fps must be > 0 and at most 30"):
            notebook.show(max_fps=fps)
    for fps in ("4", True, None):
        with pytest.raises(InvalidArgumentTypeError, match="max_fps must be a number"):
            notebook.show(max_fps=fps)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match="no Browser to show: attach one first"):
        notebook.show()
    assert wait_for(lambda: True)
