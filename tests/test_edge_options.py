"""``--allow-insecure-http`` and ``--trusted-host`` (and their variables and ini keys) reach the
CLI, the relay and the plugin; the plugin's mode follows the command line over the environment.

The API here is plain ``http://`` on this machine's own LAN address (not loopback, so the key
needs ``allow_insecure_http``), and the session's CDP router is on 127.0.0.1, another host (so
the key goes there only with ``trusted_hosts``): self-hosted Skyvern on a LAN, as users run it.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest

from skyvern_cdp.cli import main
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.pytest_plugin import resolve_options

from conftest import LOCAL_API_KEY
from scripted_api import Reply, ScriptedAPI

pytestmark = pytest.mark.browser


def _lan_ip() -> str:
    for addresses in psutil.net_if_addrs().values():
        for address in addresses:
            if address.family.name == "AF_INET" and not ipaddress.ip_address(
                address.address
            ).is_loopback:
                return str(address.address)
    raise AssertionError("this machine has no non-loopback IPv4 address to serve the API on")


@pytest.fixture
def lan(backend: LocalBackend) -> Iterator[tuple[ScriptedAPI, str]]:
    """(a plain-http API on the LAN address that answers for a running session, its id)."""
    with httpx.Client(base_url=backend.base_url, headers={"x-api-key": LOCAL_API_KEY},
                      trust_env=False, timeout=30) as http:
        sid = http.post("/v1/browser_sessions").json()["browser_session_id"]
        try:
            deadline = time.monotonic() + 30
            body = http.get(f"/v1/browser_sessions/{sid}").json()
            while body["status"] != "running":
                assert time.monotonic() < deadline, body
                body = http.get(f"/v1/browser_sessions/{sid}").json()
            with ScriptedAPI(host=_lan_ip()) as api:
                api.script("GET", f"/v1/browser_sessions/{sid}", Reply(200, body))
                yield api, sid
        finally:
            http.post(f"/v1/browser_sessions/{sid}/close")


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("SKYVERN_", "PYTEST_XDIST")):
            monkeypatch.delenv(name)


FLAGS = ["--allow-insecure-http", "--trusted-host", "127.0.0.1"]
ENV = {"SKYVERN_CDP_ALLOW_INSECURE_HTTP": "1",
       "SKYVERN_CDP_TRUSTED_HOSTS": "example.test,127.0.0.1"}


@pytest.mark.parametrize("how", ["flags", "env"])
def test_cli_screenshot_on_a_lan_server(
    lan: tuple[ScriptedAPI, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    clean_env: None, capsys: pytest.CaptureFixture[str], how: str,
) -> None:
    api, sid = lan
    out = tmp_path / "shot.png"
    base = ["screenshot", sid, str(out), "--base-url", api.base_url,
            "--api-key", LOCAL_API_KEY, "--timeout", "60"]
    assert main(base) == 2  # the key is not sent over plain http beyond loopback
    assert "plain http" in capsys.readouterr().err
    if how == "env":
        for name, value in ENV.items():
            monkeypatch.setenv(name, value)
        extra: list[str] = []
    else:
        extra = FLAGS
    assert main([*base, *extra]) == 0, capsys.readouterr().err
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert api.requests and all(r.headers.get("x-api-key") == LOCAL_API_KEY
                                for r in api.requests)


def test_cli_without_the_trusted_host_keeps_the_key_from_the_router(
    lan: tuple[ScriptedAPI, str], tmp_path: Path, clean_env: None,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api, sid = lan
    code = main(["screenshot", sid, str(tmp_path / "x.png"), "--base-url",
                 api.base_url, "--api-key", LOCAL_API_KEY, "--allow-insecure-http",
                 "--timeout", "30"])
    err = capsys.readouterr().err
    assert code != 0 and "401" in err, err  # the router refused: no key for 127.0.0.1


def test_relay_command_on_a_lan_server(lan: tuple[ScriptedAPI, str]) -> None:
    api, sid = lan
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKYVERN_")}
    env["PYTHONUNBUFFERED"] = "1"
    proc = subprocess.Popen(
        [sys.executable, "-m", "skyvern_cdp.cli", "relay", sid, "--port", "0",
         "--base-url", api.base_url, "--api-key", LOCAL_API_KEY, *FLAGS],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), proc.stderr.read() if proc.stderr else ""
        assert httpx.get(f"{url}/json/version", trust_env=False).status_code == 200
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=10)


PLUGIN_TEST = '''
def test_on_the_lan_session(skyvern_page):
    assert skyvern_page.evaluate("1 + 1") == 2
'''


@pytest.mark.parametrize("how", ["flags", "env", "ini"])
def test_plugin_on_a_lan_server(
    lan: tuple[ScriptedAPI, str], pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch,
    clean_env: None, how: str,
) -> None:
    api, sid = lan
    ini = "[pytest]\n"
    args = ["--skyvern-session", sid, "--skyvern-base-url", api.base_url]
    if how == "flags":
        args += ["--skyvern-allow-insecure-http", "--skyvern-trusted-host", "127.0.0.1"]
    elif how == "env":
        for name, value in ENV.items():
            monkeypatch.setenv(name, value)
    else:
        ini += "skyvern_allow_insecure_http = true\nskyvern_trusted_hosts = 127.0.0.1\n"
    pytester.makeini(ini)
    pytester.makepyfile(PLUGIN_TEST)
    monkeypatch.setenv("SKYVERN_API_KEY", LOCAL_API_KEY)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args, timeout=120)
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*1 passed*"])


# ---- mode precedence ------------------------------------------------------------------------


def test_launch_on_the_command_line_wins_over_a_session_in_the_environment(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, clean_env: None
) -> None:
    pytester.makeini("[pytest]\nskyvern_session = pbs_fromini\n")
    monkeypatch.setenv("SKYVERN_CDP_SESSION", "pbs_fromenv")
    monkeypatch.setenv("SKYVERN_API_KEY", "k")
    options = resolve_options(pytester.parseconfig("--skyvern-launch"))
    assert options is not None and (options.launch, options.session_id) == (True, None)
    options = resolve_options(pytester.parseconfig("--skyvern-session", "pbs_fromcli"))
    assert options is not None and (options.launch, options.session_id) == (False, "pbs_fromcli")
    options = resolve_options(pytester.parseconfig())
    assert options is not None and options.session_id == "pbs_fromenv"  # env over ini
    monkeypatch.delenv("SKYVERN_CDP_SESSION")
    monkeypatch.setenv("SKYVERN_CDP_LAUNCH", "1")
    options = resolve_options(pytester.parseconfig())
    assert options is not None and (options.launch, options.session_id) == (True, None)
    # the same layer naming both is still a usage error
    monkeypatch.setenv("SKYVERN_CDP_SESSION", "pbs_fromenv")
    with pytest.raises(pytest.UsageError, match="exclude each other"):
        resolve_options(pytester.parseconfig())

    pytester.makepyfile("def test_nothing(): pass")
    monkeypatch.delenv("SKYVERN_CDP_LAUNCH")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--skyvern-launch",
                                           "--skyvern-base-url", "http://127.0.0.1:9")
    assert result.ret == 0, result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["skyvern_cdp: launch a session per worker*"])
