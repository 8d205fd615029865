"""``skyvern-cdp demo``: prints the page title and the phase table, exits 0, leaves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from skyvern_cdp.local import LocalBackend

pytestmark = pytest.mark.browser


def demo(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "skyvern_cdp.cli", "demo", *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=90)


@pytest.fixture
def env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("SKYVERN_")}
    return clean


def test_demo_runs_on_the_local_backend_even_with_a_key_set(env: dict[str, str]) -> None:
    done = demo({**env, "SKYVERN_API_KEY": "sk-someone-elses-cloud-key"})
    assert done.returncode == 0, done.stderr
    assert "page title: skyvern-cdp demo page" in done.stdout
    lines = done.stdout.splitlines()
    for phase in ("create", "wait", "connect", "first page", "total"):
        row = next(line for line in lines if line.startswith(phase + " "))
        assert float(row.split()[-1]) >= 0.0
    assert "the Playwright driver started while the session was polled" in done.stdout
    assert "built-in local backend" in done.stderr
    assert "--cloud" in done.stderr, "it says how to use the key's server instead"
    assert "sk-someone-elses-cloud-key" not in done.stdout + done.stderr


def test_demo_cloud_uses_the_configured_server(
    backend: LocalBackend, env: dict[str, str]
) -> None:
    # Any Skyvern-compatible server stands in for the cloud: here, the shared local backend.
    key = backend.api_key
    assert key is not None
    cloud = {**env, "SKYVERN_API_KEY": key, "SKYVERN_BASE_URL": backend.base_url}
    done = demo(cloud, "--cloud", "--json")
    assert done.returncode == 0, done.stderr
    assert f"using Skyvern at {backend.base_url} (--cloud)" in done.stderr
    result = json.loads(done.stdout)
    assert result["server"] == "cloud"
    assert result["title"] == "skyvern-cdp demo page"
    assert set(result["seconds"]) == {"create", "wait", "connect", "first page"}
    assert backend.live_chromium_pids() == []


def test_demo_cloud_without_a_key_is_a_usage_error(env: dict[str, str]) -> None:
    done = demo(env, "--cloud")
    assert done.returncode == 2
    assert "SKYVERN_API_KEY" in done.stderr
