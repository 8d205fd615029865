"""Measure browser profiles on the local backend (real Chromium); prints a markdown table.

    scripts/bench_profiles            # one run, a few minutes

1. A suite of 20 tests behind a login, run by pytest with the plugin (``--skyvern-launch``):
   logging in once per run (a ``pytest_skyvern_login`` hook, the profile captured anew:
   ``--skyvern-login-max-age 0``), the rerun that reuses that profile, and a login in every
   test (a fixture that logs in on a fresh context before each test).
2. The time to capture a profile (``sync_api.capture_profile`` with a scripted login: launch,
   log in, close, wait for the save, create).
3. The size on disk of a fresh profile, next to the user-data directory of the live session
   it was saved from (the caches a profile leaves out).

The login is a form on a loopback site: it costs a page load and a redirect, far less than a
real one (SSO redirects, MFA), so the gap measured here is a lower bound.
"""

from __future__ import annotations

import http.server
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from skyvern_cdp import SkyvernClient
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS
from skyvern_cdp.sync_api import capture_profile, default_page

TESTS = 20


class _Site(http.server.BaseHTTPRequestHandler):
    def _send(self, status: int, body: bytes = b"", **headers: str) -> None:
        self.send_response(status)
        for name, value in {"Content-Type": "text/html", **headers}.items():
            self.send_header(name.replace("_", "-"), value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path.startswith("/home"):
            if "auth=ok" in (self.headers.get("Cookie") or ""):
                self._send(200, b"<title>home</title><h1 id=welcome>welcome</h1>")
            else:
                self._send(302, Location="/login")
            return
        self._send(
            200,
            b"<title>login</title><form method=post action=/login>"
            b"<input id=user name=user><input id=password name=password type=password>"
            b"<button id=go>Sign in</button></form>",
        )

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self._send(303, Location="/home", Set_Cookie="auth=ok; Max-Age=3600; Path=/")

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


LOGIN = '''
def log_in(page, site):
    page.goto(site + "login")
    page.fill("#user", "me")
    page.fill("#password", "hunter2")
    page.click("#go")
    page.wait_for_url("**/home")
'''

ONCE_CONFTEST = LOGIN + '''
import os

def pytest_skyvern_login(browser):
    log_in(browser.contexts[0].pages[0], os.environ["SITE"])
'''

EVERY_CONFTEST = LOGIN + '''
import os, pytest

@pytest.fixture
def logged_in(skyvern_page):
    log_in(skyvern_page, os.environ["SITE"])
    return skyvern_page
'''

ONCE_TEST = '''
import os, pytest

@pytest.mark.parametrize("n", range({tests}))
def test_behind_the_login(skyvern_page, n):
    skyvern_page.goto(os.environ["SITE"] + "home")
    assert skyvern_page.inner_text("#welcome") == "welcome"
'''

EVERY_TEST = '''
import os, pytest

@pytest.mark.parametrize("n", range({tests}))
def test_behind_the_login(logged_in, n):
    logged_in.goto(os.environ["SITE"] + "home")
    assert logged_in.inner_text("#welcome") == "welcome"
'''


def log(message: str) -> None:
    print(f"bench_profiles: {message}", file=sys.stderr, flush=True)


def suite_run(directory: Path, env: dict[str, str], *args: str) -> float:
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         *args],
        cwd=directory, env=env, capture_output=True, text=True, timeout=600,
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0 or f"{TESTS} passed" not in done.stdout:
        raise SystemExit(f"the suite failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return elapsed


def make_suite(root: Path, name: str, conftest: str, test: str) -> Path:
    directory = root / name
    directory.mkdir()
    (directory / "conftest.py").write_text(conftest)
    (directory / "test_suite.py").write_text(test.format(tests=TESTS))
    (directory / "pytest.ini").write_text("[pytest]\n")
    return directory


def size_of(path: Path) -> tuple[int, int]:
    files = [p for p in path.rglob("*") if p.is_file() and not p.is_symlink()]
    return sum(p.stat().st_size for p in files), len(files)


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="bench-profiles-"))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Site)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    site = f"http://localhost:{server.server_address[1]}/"
    rows: list[tuple[str, str]] = []
    try:
        with LocalBackend(
            api_key="sk-bench", chromium_args=CLOSED_NETWORK_ARGS, profiles_dir=work / "profiles"
        ) as backend, SkyvernClient(backend.api_key, backend.base_url) as client:
            env = {k: v for k, v in os.environ.items() if not k.startswith(("SKYVERN_", "PYTEST"))}
            env.update(SKYVERN_BASE_URL=backend.base_url, SKYVERN_API_KEY="sk-bench", SITE=site)

            log("capturing a profile (scripted login)")

            def log_in(browser: Any) -> None:
                page = default_page(browser)
                page.goto(site + "login")
                page.fill("#user", "me")
                page.fill("#password", "hunter2")
                page.click("#go")
                page.wait_for_url("**/home")
                # the live session's user-data dir, caches included, before it is saved
                manager = backend._manager
                assert manager is not None
                for runtime in manager._runtimes.values():
                    if runtime.process is not None and runtime.record.is_live:
                        live_sizes.append(size_of(runtime.process.profile_dir))

            live_sizes: list[tuple[int, int]] = []
            started = time.monotonic()
            made = capture_profile("bench-capture", client=client, login=log_in).run()
            capture_seconds = time.monotonic() - started
            saved_bytes, saved_files = size_of(work / "profiles" / made.browser_profile_id)
            live_bytes, live_files = live_sizes[0]
            client.delete_browser_profile(made.browser_profile_id)

            once = make_suite(work, "once", ONCE_CONFTEST, ONCE_TEST)
            every = make_suite(work, "every", EVERY_CONFTEST, EVERY_TEST)
            log(f"{TESTS} tests, logging in once (profile captured anew)")
            once_first = suite_run(
                once, env, "--skyvern-profile", "bench-suite", "--skyvern-login-max-age", "0"
            )
            log(f"{TESTS} tests, rerun reusing the profile")
            once_reused = suite_run(once, env, "--skyvern-profile", "bench-suite")
            log(f"{TESTS} tests, a login in every test")
            every_time = suite_run(every, env, "--skyvern-launch")
            found = client.find_browser_profile("bench-suite")
            if found is not None:
                client.delete_browser_profile(found.browser_profile_id)
    finally:
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)

    rows += [
        (f"suite of {TESTS} tests, a login in every test", f"{every_time:.1f} s"),
        (f"suite of {TESTS} tests, log in once (captured in the run)", f"{once_first:.1f} s"),
        (f"suite of {TESTS} tests, log in once (rerun, profile reused)", f"{once_reused:.1f} s"),
        ("capture a profile (launch, log in, close, save, create)", f"{capture_seconds:.1f} s"),
        ("fresh profile on disk", f"{saved_bytes / 1024:.0f} KiB in {saved_files} files"),
        (
            "its session's live user-data dir (caches included)",
            f"{live_bytes / 1024:.0f} KiB in {live_files} files",
        ),
    ]
    print("| measure (one run, local backend, real Chromium) | value |")
    print("| --- | --- |")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
