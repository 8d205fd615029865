"""Every example under examples/ runs, as a user runs it, and does what it says."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from skyvern_cdp import SkyvernClient

from conftest import LOCAL_API_KEY

pytestmark = pytest.mark.browser

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
SESSION_ID = r"pbs_[A-Za-z0-9_-]+"
PLANTS = [
    {"name": "Fern", "price": 12.5},
    {"name": "Monstera", "price": 34.0},
    {"name": "Cactus", "price": 8.25},
]


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SKYVERN_")}


@pytest.fixture
def env(backend: Any) -> dict[str, str]:
    """An environment naming the shared local backend, as a user would for any server."""
    return {**_clean_env(), "SKYVERN_BASE_URL": backend.base_url, "SKYVERN_API_KEY": LOCAL_API_KEY}


@pytest.fixture
def client(backend: Any) -> Iterator[SkyvernClient]:
    with SkyvernClient(LOCAL_API_KEY, backend.base_url) as http:
        yield http


def run_example(name: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    return done.stdout


def assert_closed(client: SkyvernClient, session_id: str) -> None:
    assert client.get_browser_session(session_id).status == "completed"
    assert session_id not in [s.browser_session_id for s in client.list_browser_sessions()]


def test_attach_async(env: dict[str, str], client: SkyvernClient) -> None:
    out = run_example("attach_async.py", env)
    match = re.fullmatch(
        rf"created ({SESSION_ID})\n"
        r"heading: Hello from skyvern-cdp\n"
        r"detached; the session is still running\n"
        r"closed \1\n",
        out,
    )
    assert match, out
    assert_closed(client, match[1])


def test_attach_sync(env: dict[str, str], client: SkyvernClient) -> None:
    out = run_example("attach_sync.py", env)
    match = re.fullmatch(
        rf"created ({SESSION_ID})\nname: Ada\nnewsletter: True\nclosed \1\n", out
    )
    assert match, out
    assert_closed(client, match[1])


def _scraped(out: str) -> tuple[str, list[Any]]:
    lines = out.splitlines()
    launched = re.fullmatch(rf"launched ({SESSION_ID})", lines[0])
    assert launched, out
    assert lines[1] == f"closed {launched[1]}"
    return launched[1], [json.loads(line) for line in lines[2:]]


def test_launch_and_scrape(env: dict[str, str], client: SkyvernClient) -> None:
    session_id, plants = _scraped(run_example("launch_and_scrape.py", env))
    assert plants == PLANTS  # both pages, in order
    assert_closed(client, session_id)


def test_an_example_needs_no_configuration_at_all() -> None:
    # No SKYVERN_* at all: the example starts a local backend in its own process.
    _, plants = _scraped(run_example("launch_and_scrape.py", _clean_env()))
    assert plants == PLANTS


def result(nb: Any, starts: str) -> str:
    """What the code cell whose source starts with ``starts`` evaluated to."""
    [cell] = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(starts)]
    [value] = [o for o in cell.outputs if o.output_type == "execute_result"]
    text: str = value["data"]["text/plain"]
    return text


def test_the_notebook(
    env: dict[str, str], client: SkyvernClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    nb = nbformat.read(EXAMPLES / "notebook.ipynb", as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells)  # committed without outputs
    NotebookClient(
        nb, kernel_name="python3", timeout=120, resources={"metadata": {"path": str(EXAMPLES)}}
    ).execute()
    session_id = result(nb, "session = await client.create_browser_session").strip("'")
    assert re.fullmatch(SESSION_ID, session_id)
    assert result(nb, "page = await default_page(browser)") == "['one', 'two']"
    [show] = [c for c in nb.cells if c.source.startswith("view = notebook.show(browser)")]
    shown = [o for o in show.outputs if o.output_type == "display_data"]
    assert len(shown) == 1  # one display (its updates by id: tests/test_notebook_view.py)
    assert result(nb, 'await page.locator("h1").evaluate') == "'Changed while you watch'"
    assert result(nb, "live = notebook.show(browser, interactive=True)") == "True"
    [live] = [c for c in nb.cells if c.source.startswith("live = notebook.show(browser")]
    [framed] = [o for o in live.outputs if o.output_type == "display_data"]
    assert "<iframe" in framed["data"]["text/html"]  # a browser in it: test_notebook_frame.py
    assert result(nb, "(await notebook.attach(session_id)) is browser") == "True"
    assert_closed(client, session_id)


def test_the_pytest_suite(env: dict[str, str], client: SkyvernClient) -> None:
    suite = EXAMPLES / "pytest_suite"
    if not (suite / "conftest.py").exists():
        pytest.skip("examples/pytest_suite is not there yet")
    live_before = {s.browser_session_id for s in client.list_browser_sessions()}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--skyvern-launch"],
        cwd=suite,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert re.search(r"\b(\d+) passed\b", done.stdout), done.stdout
    assert " failed" not in done.stdout and " error" not in done.stdout
    # Every session the suite launched is closed again.
    assert {s.browser_session_id for s in client.list_browser_sessions()} == live_before
