"""Browser profiles end to end on the local backend with a real Chromium: what one session
logs in is there in the next, write-back carries a later login into a third, profiles survive
a restart of the server, and every error of the contract comes typed."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pages import serve_html

from skyvern_cdp import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    ProfileExistsError,
    ProfileNotFoundError,
    ProfileSourceError,
    ProfileUploadPendingError,
    SessionNotFoundError,
    SkyvernClient,
)
from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS
from skyvern_cdp.local.profile_store import is_cache
from skyvern_cdp.local.profiles import source_of_create
from skyvern_cdp.sync_api import default_page, launch

from conftest import wait_for

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with serve_html(b"<title>site</title><p>hello</p>") as url:
        yield url


def _client(server: LocalBackend) -> SkyvernClient:
    return SkyvernClient(server.api_key, server.base_url)


@contextlib.contextmanager
def _served(profiles_dir: Path) -> Iterator[SkyvernClient]:
    """A backend of its own on ``profiles_dir``, and a client of it."""
    with (
        LocalBackend(chromium_args=CLOSED_NETWORK_ARGS, profiles_dir=profiles_dir) as server,
        _client(server) as client,
    ):
        yield client


def _log_in(client: SkyvernClient, site: str, value: str, **fields: Any) -> str:
    """A session that sets a lasting cookie and a localStorage value; its id, once closed."""
    with launch(client=client, timeout=60, **fields) as browser:
        page = default_page(browser)
        page.goto(site)
        page.evaluate(
            "v => { document.cookie = 'login=' + v + '; max-age=3600; path=/';"
            " localStorage.setItem('token', v); }",
            value,
        )
        sid = browser_session_id(browser)
    return sid


def browser_session_id(browser: Any) -> str:
    from skyvern_cdp.sync_api import session_of

    return session_of(browser).browser_session_id


def _seen(client: SkyvernClient, site: str, profile_id: str) -> tuple[str, str | None]:
    with launch(client=client, timeout=60, browser_profile_id=profile_id) as browser:
        page = default_page(browser)
        page.goto(site)
        cookie = str(page.evaluate("document.cookie"))
        token = page.evaluate("localStorage.getItem('token')")
    return cookie, token


def test_login_travels_through_a_profile_and_back(site: str, tmp_path: Path) -> None:
    with _served(tmp_path) as client:
        first = _log_in(client, site, "alice", generate_browser_profile=True)
        made = client.create_browser_profile("site", browser_session_id=first, timeout=60)
        pid = made.browser_profile_id
        assert made.name == "site"
        assert client.resolve_browser_profile("site") == pid

        # The second session starts logged in, then logs in anew (write-back).
        before = made.modified_at
        with launch(client=client, timeout=60, browser_profile_id=pid) as browser:
            page = default_page(browser)
            page.goto(site)
            assert "login=alice" in str(page.evaluate("document.cookie"))
            assert page.evaluate("localStorage.getItem('token')") == "alice"
            page.evaluate(
                "() => { document.cookie = 'login=bob; max-age=3600; path=/';"
                " localStorage.setItem('token', 'bob'); }"
            )
        # The write-back lands just after the close answered: modified_at says when.
        assert wait_for(
            lambda: client.get_browser_profile(pid).modified_at != before, timeout=30
        )
        cookie, token = _seen(client, site, pid)
        assert "login=bob" in cookie
        assert token == "bob"

    # A restart of the server on the same directory keeps the profile and its state.
    with _served(tmp_path) as client:
        assert [p.browser_profile_id for p in client.list_browser_profiles()] == [pid]
        cookie, token = _seen(client, site, pid)
        assert "login=bob" in cookie
        assert token == "bob"
        client.delete_browser_profile(pid)
        with pytest.raises(ProfileNotFoundError):
            client.get_browser_profile(pid)
    assert not (tmp_path / pid).exists()
    saved = list(tmp_path.rglob("*"))
    assert not any(is_cache(p.relative_to(tmp_path)) for p in saved)


def test_every_error_of_the_contract_is_typed(backend: LocalBackend, site: str) -> None:
    with _client(backend) as client:
        # Not configured: a plain session cannot become a profile (final, answered at once).
        plain = _log_in(client, site, "x")
        with pytest.raises(ProfileSourceError) as info:
            client.create_browser_profile("errors-plain", browser_session_id=plain, timeout=20)
        assert info.value.reason == "not_configured"
        # Unknown session, unknown profile on create, duplicate name.
        with pytest.raises(SessionNotFoundError):
            client.create_browser_profile("errors-x", browser_session_id="pbs_404", timeout=10)
        with pytest.raises(ProfileNotFoundError, match="bp_nosuch"):
            client.create_browser_session(browser_profile_id="bp_nosuch", timeout=10)
        blank = client.create_browser_profile("errors-blank", timeout=10)
        with pytest.raises(ProfileExistsError):
            client.create_browser_profile("errors-blank", timeout=10)

        # A live session that will save: the transient 400, until the deadline.
        live = client.create_browser_session(browser_profile_id=blank.browser_profile_id)
        sid = live.browser_session_id
        try:
            with pytest.raises(ProfileUploadPendingError):
                client.create_browser_profile("errors-live", browser_session_id=sid, timeout=1)
            # Its profile is deleted meanwhile: the reused archive is gone (final).
            client.delete_browser_profile(blank.browser_profile_id)
        finally:
            client.close_browser_session(sid)
        with pytest.raises(ProfileSourceError) as info:
            client.create_browser_profile("errors-reused", browser_session_id=sid, timeout=20)
        assert info.value.reason == "reused_unavailable"


def test_two_live_sessions_of_one_profile_share_nothing(backend: LocalBackend, site: str) -> None:
    with _client(backend) as client:
        pid = client.create_browser_profile("shared-nothing", timeout=10).browser_profile_id
        try:
            with launch(client=client, timeout=60, browser_profile_id=pid) as one, launch(
                client=client, timeout=60, browser_profile_id=pid
            ) as two:
                a, b = default_page(one), default_page(two)
                a.goto(site)
                b.goto(site)
                a.evaluate("localStorage.setItem('who', 'one')")
                assert b.evaluate("localStorage.getItem('who')") is None
        finally:
            client.delete_browser_profile(pid)


def test_of_two_sessions_of_one_profile_the_last_to_end_wins(
    backend: LocalBackend, site: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first to end saves last (its save is held back), and still does not win."""
    from skyvern_cdp.local.profiles import SessionProfiles
    from skyvern_cdp.sync_api import session_of

    held_sid: list[str] = []
    release, first_saved = threading.Event(), threading.Event()
    original = SessionProfiles._save_blocking

    def save(self: SessionProfiles, rec: Any, taken: Path, ended_at: float) -> None:
        if held_sid and rec.browser_session_id == held_sid[0]:
            release.wait(60)
            original(self, rec, taken, ended_at)
            first_saved.set()
            return
        original(self, rec, taken, ended_at)

    monkeypatch.setattr(SessionProfiles, "_save_blocking", save)
    with _client(backend) as client:
        pid = client.create_browser_profile("last-wins", timeout=10).browser_profile_id
        try:
            before = client.get_browser_profile(pid).modified_at
            one = launch(client=client, timeout=60, browser_profile_id=pid)
            two = launch(client=client, timeout=60, browser_profile_id=pid)
            try:
                for browser, value in ((one, "first"), (two, "second")):
                    page = default_page(browser)
                    page.goto(site)
                    page.evaluate("v => localStorage.setItem('who', v)", value)
                held_sid.append(session_of(one).browser_session_id)
            finally:
                one.close()  # ends first; its save waits
                two.close()  # ends last; its save lands first
            try:
                assert wait_for(
                    lambda: client.get_browser_profile(pid).modified_at != before, timeout=30
                )
            finally:
                release.set()
            assert first_saved.wait(30)
            with launch(client=client, timeout=60, browser_profile_id=pid) as third:
                page = default_page(third)
                page.goto(site)
                assert page.evaluate("localStorage.getItem('who')") == "second"
        finally:
            client.delete_browser_profile(pid)


def test_the_routes_answer_like_skyvern(backend: LocalBackend) -> None:
    headers = {"x-api-key": backend.api_key or ""}
    with httpx.Client(base_url=backend.base_url, headers=headers, trust_env=False) as http:
        assert http.post("/v1/browser_profiles", json={}).status_code == 422
        made = http.post("/v1/browser_profiles", json={"name": "routes", "description": "d"})
        assert made.status_code == 200
        body = made.json()
        assert body["browser_profile_id"].startswith("bp_")
        assert {"organization_id", "name", "description", "created_at", "deleted_at"} <= set(body)
        listed = http.get("/v1/browser_profiles", params={"search_key": "ROUT"}).json()
        assert [p["browser_profile_id"] for p in listed] == [body["browser_profile_id"]]
        assert http.get("/v1/browser_profiles/bp_unknown").json() == {
            "detail": "Browser profile bp_unknown not found"
        }
        gone = http.delete(f"/v1/browser_profiles/{body['browser_profile_id']}")
        assert gone.status_code == 204
        assert http.get(f"/v1/browser_profiles/{body['browser_profile_id']}").status_code == 404
        assert http.delete(f"/v1/browser_profiles/{body['browser_profile_id']}").status_code == 404
        assert httpx.get(f"{backend.base_url}/v1/browser_profiles").status_code == 403
        # The server's one web guard covers these routes too: DNS rebinding, cross-site.
        rebound = http.get("/v1/browser_profiles", headers={"host": "evil.example"})
        assert rebound.status_code == 403
        cross = http.post(
            "/v1/browser_profiles",
            json={"name": "cross-site"},
            headers={"origin": "https://evil.example", "sec-fetch-site": "cross-site"},
        )
        assert cross.status_code == 403
        assert http.get("/v1/browser_profiles", params={"search_key": "cross-site"}).json() == []


def test_where_a_create_from_a_session_comes_from() -> None:
    def source(**kw: Any) -> str:
        base = dict(
            generate=False, loaded=None, live=False, saving=False, archived=False,
            loaded_exists=False,
        )
        base.update(kw)
        return source_of_create(**base)  # type: ignore[arg-type]

    assert source() == "not_configured"
    assert source(generate=True, live=True) == "pending"
    assert source(generate=True, saving=True) == "pending"
    assert source(generate=True, archived=True) == "archive"
    assert source(loaded="bp_1", live=True, loaded_exists=True) == "pending"
    assert source(loaded="bp_1", loaded_exists=True) == "loaded"
    assert source(loaded="bp_1") == "reused_unavailable"


def _serve(profiles_dir: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "skyvern_cdp.cli", "serve", "--port", "0",
            "--profiles-dir", str(profiles_dir)]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=env)


def test_serve_profiles_dir_survives_a_restart(tmp_path: Path) -> None:
    env = dict(os.environ, SKYVERN_API_KEY="sk-serve-profiles", PYTHONUNBUFFERED="1")
    env.pop("SKYVERN_BASE_URL", None)
    made = None
    for round_ in range(2):
        proc = _serve(tmp_path / "profiles", env)
        try:
            assert proc.stdout is not None
            base_url = proc.stdout.readline().strip()
            assert base_url.startswith("http://127.0.0.1:"), proc.stderr
            with SkyvernClient("sk-serve-profiles", base_url) as client:
                if round_ == 0:
                    made = client.create_browser_profile("kept", timeout=30)
                else:
                    assert made is not None
                    assert client.get_browser_profile(made.browser_profile_id).name == "kept"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            proc.communicate()
    assert made is not None
    assert (tmp_path / "profiles" / made.browser_profile_id / "profile.json").is_file()


def test_a_new_profiles_dir_is_private(tmp_path: Path) -> None:
    from skyvern_cdp.local.profile_store import ProfileStore

    store = ProfileStore(tmp_path / "new" / "profiles")
    assert (store.root.stat().st_mode & 0o777) == 0o700


def test_default_profiles_dir_is_the_users_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    from skyvern_cdp.local.profile_store import default_profiles_dir

    monkeypatch.setenv("XDG_DATA_HOME", "/srv/data")
    assert default_profiles_dir() == Path("/srv/data/skyvern-cdp/profiles")
    monkeypatch.delenv("XDG_DATA_HOME")
    assert default_profiles_dir() == Path.home() / ".local/share/skyvern-cdp/profiles"


@pytest.mark.parametrize(
    ("value", "error"),
    [
        (3, InvalidArgumentTypeError),
        ("", InvalidArgumentError),
        ("/etc/hostname", InvalidArgumentError),
    ],
)
def test_bad_profiles_dir_is_refused(value: object, error: type[Exception]) -> None:
    with pytest.raises(error):
        LocalBackend(profiles_dir=value)  # type: ignore[arg-type]
