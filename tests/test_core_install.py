"""`pip install skyvern-cdp` without an extra: the built wheel in a venv of its own, its
dependencies at the lowest versions the metadata allows, and no fastapi, starlette or uvicorn.

The venv comes from ``scripts/envs core`` (``$SKYVERN_CDP_CORE_PYTHON`` when scripts/test has
already made it). It attaches to the run's local backend, which runs here, in the dev venv.
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from skyvern_cdp.local import LocalBackend

REPO = Path(__file__).resolve().parent.parent
INSTALL_HINT = 'pip install "skyvern-cdp[local]"'


@pytest.fixture(scope="module")
def core_python() -> Iterator[Path]:
    given = os.environ.get("SKYVERN_CDP_CORE_PYTHON")
    if given:
        yield Path(given)
        return
    made = subprocess.run(
        [str(REPO / "scripts" / "envs"), "core"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert made.returncode == 0, f"scripts/envs core failed:\n{made.stderr}"
    yield Path(made.stdout.strip().splitlines()[-1])


def _run(python: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYVERN_", "PYTHON"))}
    env["PATH"] = f"{python.parent}:/usr/bin:/bin"
    # run from / so that this repository's sources can never shadow the installed wheel
    return subprocess.run(
        [str(python), *args], capture_output=True, text=True, timeout=timeout, env=env, cwd="/",
        check=False,
    )


def test_the_core_install_has_no_server_stack_and_imports_everything_else(
    core_python: Path,
) -> None:
    done = _run(core_python, "-c", textwrap.dedent("""
        import importlib, importlib.metadata, importlib.util, json
        import skyvern_cdp
        for name in ("skyvern_cdp.sync_api", "skyvern_cdp.async_api", "skyvern_cdp.client",
                     "skyvern_cdp.cli", "skyvern_cdp.relay", "skyvern_cdp.pytest_plugin",
                     "skyvern_cdp.notebook", "skyvern_cdp.local"):
            importlib.import_module(name)
        print(json.dumps({
            "file": skyvern_cdp.__file__,
            "versions": [skyvern_cdp.__version__, importlib.metadata.version("skyvern-cdp")],
            "missing": [m for m in ("fastapi", "starlette", "uvicorn")
                        if importlib.util.find_spec(m) is None],
        }))
    """))
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert "site-packages" in seen["file"]  # the wheel, not this checkout
    first, installed = seen["versions"]
    assert first == installed  # the metadata's version is __version__, written once
    assert seen["missing"] == ["fastapi", "starlette", "uvicorn"]


@pytest.mark.parametrize("command", [["serve", "--port", "0"], ["demo"]])
def test_serve_and_demo_without_the_extra_say_what_to_install_in_one_line(
    core_python: Path, command: list[str]
) -> None:
    done = _run(core_python.with_name("skyvern-cdp"), *command, timeout=60)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, done.stderr
    assert len(lines) == 1 and INSTALL_HINT in lines[0], done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""


def test_no_chromium_points_to_scripts_setup_only_in_a_checkout(core_python: Path) -> None:
    from skyvern_cdp.local.chromium import no_chromium_message

    assert "run scripts/setup" in no_chromium_message()  # this checkout
    installed = _run(core_python, "-c", (
        "from skyvern_cdp.local.chromium import no_chromium_message; print(no_chromium_message())"
    ))
    assert installed.returncode == 0, installed.stderr
    assert "scripts/" not in installed.stdout
    assert "SKYVERN_CDP_CHROMIUM=" in installed.stdout
    assert "playwright install chromium" in installed.stdout


def test_local_backend_without_the_extra_is_a_typed_import_error(core_python: Path) -> None:
    done = _run(core_python, "-c", textwrap.dedent("""
        from skyvern_cdp.errors import MissingExtraError
        from skyvern_cdp.local import LocalBackend
        try:
            LocalBackend()
        except MissingExtraError as exc:
            assert isinstance(exc, ImportError) and exc.extra == "local"
            print(exc)
    """))
    assert done.returncode == 0, done.stderr
    assert INSTALL_HINT in done.stdout and "LocalBackend" in done.stdout


@pytest.mark.browser
def test_the_core_install_launches_attaches_and_lists_against_a_local_backend(
    core_python: Path, backend: LocalBackend
) -> None:
    """Both shells and the CLI's session commands, as a user's project would run them."""
    script = textwrap.dedent("""
        import asyncio, sys
        from skyvern_cdp import async_api, sync_api
        base_url, key = sys.argv[1], sys.argv[2]
        with sync_api.launch(base_url=base_url, api_key=key, timeout=60) as browser:
            page = sync_api.default_page(browser)
            page.goto("data:text/html,<title>core-sync</title>")
            print(page.title(), sync_api.session_of(browser).browser_session_id)

        async def main():
            async with async_api.launch(base_url=base_url, api_key=key, timeout=60) as browser:
                page = await async_api.default_page(browser)
                await page.goto("data:text/html,<title>core-async</title>")
                print(await page.title())
        asyncio.run(main())
    """)
    assert backend.api_key is not None
    done = _run(core_python, "-c", script, backend.base_url, backend.api_key)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.split("\n")
    title, session_id = lines[0].split()
    assert title == "core-sync" and lines[1] == "core-async"

    listed = _run(
        core_python.with_name("skyvern-cdp"), "--base-url", backend.base_url,
        "--api-key", backend.api_key, "info", session_id, timeout=60,
    )
    assert listed.returncode == 0, listed.stderr
    assert json.loads(listed.stdout)["browser_session_id"] == session_id

