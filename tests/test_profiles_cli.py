"""``skyvern-cdp profile …``, ``launch --profile`` and ``relay --launch --profile`` against the
local backend: outputs, --json, exit codes; and bad input as usage errors."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import pytest

from skyvern_cdp import SkyvernClient
from skyvern_cdp.cli import EXIT_AUTH_OR_NOT_FOUND, EXIT_ERROR, EXIT_OK, EXIT_USAGE, main
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.relay import relay


@pytest.fixture
def pointed(backend: LocalBackend, monkeypatch: pytest.MonkeyPatch) -> Iterator[SkyvernClient]:
    """SKYVERN_BASE_URL / SKYVERN_API_KEY point at the backend; a client of it."""
    monkeypatch.setenv("SKYVERN_BASE_URL", backend.base_url)
    monkeypatch.setenv("SKYVERN_API_KEY", backend.api_key or "")
    with SkyvernClient(backend.api_key, backend.base_url) as client:
        yield client


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_profile_commands_round_trip(
    pointed: SkyvernClient, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"cli-{uuid.uuid4().hex[:8]}"
    code, out, err = cli(capsys, "profile", "create", name, "--description", "from the cli")
    assert code == EXIT_OK, err
    pid = out.strip()
    assert pid.startswith("bp_")

    code, out, _ = cli(capsys, "profile", "list", "--search", name)
    assert code == EXIT_OK
    assert out.splitlines()[0].split() == ["ID", "NAME", "MODIFIED", "DESCRIPTION"]
    assert pid in out and name in out
    code, out, _ = cli(capsys, "profile", "list", "--search", name, "--json")
    assert [p["browser_profile_id"] for p in json.loads(out)] == [pid]

    code, out, _ = cli(capsys, "profile", "get", name)  # by name
    assert code == EXIT_OK
    assert json.loads(out)["browser_profile_id"] == pid
    code, out, _ = cli(capsys, "profile", "get", pid, "--json")  # by id
    assert json.loads(out)["description"] == "from the cli"

    code, _, err = cli(capsys, "profile", "create", name)
    assert code == EXIT_ERROR
    assert "already exists" in err and "Traceback" not in err

    code, out, _ = cli(capsys, "profile", "delete", name, "--json")
    assert code == EXIT_OK
    assert json.loads(out) == {"browser_profile_id": pid, "deleted": True}
    code, _, err = cli(capsys, "profile", "get", pid)
    assert code == EXIT_AUTH_OR_NOT_FOUND
    assert pid in err
    code, _, err = cli(capsys, "profile", "delete", name)
    assert code == EXIT_AUTH_OR_NOT_FOUND


def test_create_from_a_session_that_saves_nothing_fails_at_once(
    pointed: SkyvernClient, capsys: pytest.CaptureFixture[str]
) -> None:
    sid = pointed.create_browser_session().browser_session_id
    pointed.close_browser_session(sid)
    code, _, err = cli(capsys, "profile", "create", "never", "--from", sid)
    assert code == EXIT_ERROR
    assert "not configured to generate a browser profile" in err
    code, _, err = cli(capsys, "profile", "create", "never", "--from", "pbs_404404")
    assert code == EXIT_AUTH_OR_NOT_FOUND


@pytest.mark.parametrize(
    "args",
    [
        ["profile", "create", ""],
        ["profile", "create", "bp_123"],
        ["profile", "create", "ok", "--from", "not-a-session"],
        ["profile", "get", "bp_"],
        ["profile", "delete", "bp_a/b"],
        ["profile", "frobnicate"],
        ["launch", "--profile", "bp_"],
        ["relay", "pbs_1", "--profile", "crm"],
    ],
)
def test_bad_input_is_a_usage_error(capsys: pytest.CaptureFixture[str], args: list[str]) -> None:
    code, _, err = cli(capsys, *args)
    assert code == EXIT_USAGE, err
    assert "Traceback" not in err


def test_launch_with_a_profile_name(
    pointed: SkyvernClient, capsys: pytest.CaptureFixture[str]
) -> None:
    name = f"cli-launch-{uuid.uuid4().hex[:8]}"
    pid = pointed.create_browser_profile(name).browser_profile_id
    try:
        code, out, err = cli(capsys, "launch", "--profile", name)
        assert code == EXIT_OK, err
        sid = out.split()[0]
        try:
            assert pointed.get_browser_session(sid).browser_profile_id == pid
        finally:
            pointed.close_browser_session(sid)
        code, _, err = cli(capsys, "launch", "--profile", name + "-missing")
        assert code == EXIT_AUTH_OR_NOT_FOUND
        assert "no browser profile is named" in err
        assert pointed.list_browser_sessions() == []
    finally:
        pointed.delete_browser_profile(pid)


async def test_relay_launch_with_a_profile(backend: LocalBackend) -> None:
    name = f"relay-{uuid.uuid4().hex[:8]}"
    with SkyvernClient(backend.api_key, backend.base_url) as client:
        pid = client.create_browser_profile(name).browser_profile_id
        try:
            async with relay(
                create={"browser_profile": name},
                port=0,
                timeout=60,
                api_key=backend.api_key,
                base_url=backend.base_url,
            ) as endpoint:
                assert endpoint.launched
                seen = client.get_browser_session(endpoint.session_id)
                assert seen.browser_profile_id == pid
            assert client.list_browser_sessions() == []
        finally:
            client.delete_browser_profile(pid)


def test_the_log_in_once_example_runs(pointed: SkyvernClient) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    example = Path(__file__).resolve().parents[1] / "examples" / "log_in_once.py"
    done = subprocess.run(
        [sys.executable, str(example)], env=dict(os.environ), capture_output=True, text=True,
        timeout=110,
    )
    try:
        assert done.returncode == 0, done.stderr[-3000:]
        lines = done.stdout.splitlines()
        assert lines[0].startswith("captured bp_")
        assert lines[-2:] == ["signed in as ada", "localStorage: ada"]
        assert pointed.list_browser_sessions() == []
    finally:
        found = pointed.find_browser_profile("example-shop-login")
        if found is not None:
            pointed.delete_browser_profile(found.browser_profile_id)
