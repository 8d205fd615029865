"""The local backend end to end: real HTTP on 127.0.0.1, a real Chromium per session."""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import psutil
import pytest

from skyvern_cdp.local import LocalBackend
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS
from skyvern_cdp.local.tokens import session_token

from conftest import LOCAL_API_KEY

pytestmark = [pytest.mark.browser, pytest.mark.matrix]

Check = Callable[[Any], Any]


# ---- helpers ----------------------------------------------------------------------------


def client_for(backend: LocalBackend, key: str | None = "") -> httpx.Client:
    """A client for ``backend`` sending its key (``key=None``: no header; else that key)."""
    headers = {}
    key = backend.api_key if key == "" else key
    if key is not None:
        headers["x-api-key"] = key
    return httpx.Client(base_url=backend.base_url, headers=headers, timeout=30.0, trust_env=False)


def get_session(http: httpx.Client, sid: str, check: Check) -> dict[str, Any]:
    answer = http.get(f"/v1/browser_sessions/{sid}")
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = check(answer.json())
    return body


def wait_status(
    http: httpx.Client, sid: str, check: Check, statuses: set[str], timeout: float = 30.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        body = get_session(http, sid, check)
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"{sid} still {body['status']}, wanted {statuses}"
        time.sleep(0.02)


def chromium_of(backend: LocalBackend, address: str) -> tuple[int, Path]:
    """The pid and temporary directory of the Chromium behind ``address`` (the router's
    ``/<session id>/devtools/browser/...``)."""
    sid = urlsplit(address).path.split("/")[1]
    pid = backend.chromium_pid(sid)
    assert pid is not None and pid in backend.live_chromium_pids(), f"no live Chromium for {sid}"
    for arg in psutil.Process(pid).cmdline():
        if arg.startswith("--user-data-dir="):
            return pid, Path(arg.split("=", 1)[1]).parent
    raise AssertionError(f"Chromium {pid} has no --user-data-dir")


KEY = {"x-api-key": LOCAL_API_KEY}


def cdp_targets(address: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """``Target.getTargets`` over the session's browser websocket (through the router)."""
    from websockets.sync.client import connect

    with connect(address, additional_headers=KEY if headers is None else headers,
                 proxy=None) as ws:
        ws.send(json.dumps({"id": 1, "method": "Target.getTargets"}))
        while True:
            answer = json.loads(ws.recv())
            if answer.get("id") == 1:
                infos: list[dict[str, Any]] = answer["result"]["targetInfos"]
                return infos


def group_gone(pgid: int) -> bool:
    """No process of group ``pgid`` runs any more (zombies waiting to be reaped count as gone)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    for proc in psutil.process_iter():
        try:
            if _pgid(proc.pid) == pgid and proc.status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.Error:
            continue
    return True


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except ProcessLookupError:
        return None


def assert_not_found(answer: httpx.Response, sid: str) -> None:
    assert answer.status_code == 404
    assert answer.json() == {"detail": f"Browser session {sid} not found"}


def wait_for(predicate: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return predicate()
        time.sleep(0.02)
    return True


@pytest.fixture(scope="module")
def idle(long_lived_pids: set[int]) -> Iterator[LocalBackend]:
    """No key, at most 2 live sessions, and a ready delay so long no Chromium ever starts."""
    with LocalBackend(max_sessions=2, ready_delay=3600.0) as server:
        long_lived_pids.add(server.watchdog_pid or -1)
        try:
            yield server
        finally:
            long_lived_pids.discard(server.watchdog_pid or -1)


# ---- lifecycle ----------------------------------------------------------------------------


def test_lifecycle_created_running_completed(backend: LocalBackend, check_session: Check) -> None:
    with client_for(backend) as http:
        answer = http.post("/v1/browser_sessions", json={"timeout": 30})
        assert answer.status_code == 200
        created = check_session(answer.json())
        sid = created["browser_session_id"]
        # Answered at once: no browser yet.
        assert created["status"] == "created"
        assert created["browser_address"] is None
        assert created["started_at"] is None
        assert created["timeout"] == 30
        assert created["organization_id"] == "o_local"
        assert created["warning"] is None
        # The live view, with the session's token: the backend has a key.
        token = session_token(LOCAL_API_KEY, sid)
        assert created["app_url"] == f"{backend.base_url}/sessions/{sid}?token={token}"
        assert created["vnc_streaming_supported"] is True, "a live view is served"
        assert created["created_at"].endswith("+00:00")

        running = wait_status(http, sid, check_session, {"running"})
        address = running["browser_address"]
        assert address.startswith("ws://127.0.0.1:")
        assert f"/{sid}/devtools/browser/" in address
        assert running["started_at"] >= running["created_at"]
        assert backend.ready_at(sid) is not None
        assert backend.get_count(sid) >= 2
        # The address is a live CDP endpoint of its own: the backend's router, key checked.
        port = urlsplit(address).port
        assert port != urlsplit(backend.base_url).port
        version_url = f"http://127.0.0.1:{port}/{sid}/json/version"
        assert httpx.get(version_url, trust_env=False).status_code == 401
        version = httpx.get(version_url, headers=KEY, trust_env=False).json()
        assert version["webSocketDebuggerUrl"] == address
        pages = [t for t in cdp_targets(address) if t["type"] == "page"]
        assert [p["url"] for p in pages] == ["about:blank"]
        download_path = Path(running["download_path"])
        assert download_path.is_dir()
        assert running["downloaded_files"] == []
        listed = http.get("/v1/browser_sessions").json()
        assert sid in [check_session(s)["browser_session_id"] for s in listed]

        pid, root = chromium_of(backend, address)
        assert root.is_dir()
        assert (root / "tmp").is_dir()
        closed = http.post(f"/v1/browser_sessions/{sid}/close")
        assert closed.status_code == 200
        assert closed.json() == {"message": "Browser session closed"}
        # All of it happened before close answered.
        assert group_gone(pid)
        assert not root.exists()
        done = get_session(http, sid, check_session)
        assert done["status"] == "completed"
        assert done["completed_at"] >= done["started_at"]
        assert sid not in [s["browser_session_id"] for s in http.get("/v1/browser_sessions").json()]
        again = http.post(f"/v1/browser_sessions/{sid}/close")
        assert again.status_code == 200
        assert again.json() == {"message": "Browser session closed"}
        assert get_session(http, sid, check_session)["status"] == "completed"


def test_session_opens_its_url(backend: LocalBackend, check_session: Check) -> None:
    page = "data:text/html,<title>opened by the backend</title><h1>hello</h1>"
    with client_for(backend) as http:
        sid = http.post("/v1/browser_sessions", json={"url": page}).json()["browser_session_id"]
        try:
            running = wait_status(http, sid, check_session, {"running"})

            def titled() -> bool:
                pages = cdp_targets(running["browser_address"])
                return any(p.get("title") == "opened by the backend" for p in pages)

            assert wait_for(titled, 10.0)
        finally:
            http.post(f"/v1/browser_sessions/{sid}/close")


def test_killed_chromium_makes_the_session_failed(
    backend: LocalBackend, check_session: Check, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="skyvern_cdp.local")
    with client_for(backend) as http:
        sid = http.post("/v1/browser_sessions").json()["browser_session_id"]
        running = wait_status(http, sid, check_session, {"running"})
        pid, root = chromium_of(backend, running["browser_address"])
        os.kill(pid, signal.SIGKILL)
        failed = wait_status(http, sid, check_session, {"failed", "completed", "timeout"}, 20.0)
        assert failed["status"] == "failed"
        assert failed["completed_at"] is not None
        assert wait_for(lambda: group_gone(pid), 10.0)
        assert not root.exists()
        messages = [r.getMessage() for r in caplog.records]
        assert any(sid in m and "exited" in m for m in messages), messages
        assert http.post(f"/v1/browser_sessions/{sid}/close").status_code == 200
        assert get_session(http, sid, check_session)["status"] == "failed"


def test_chromium_that_never_starts_makes_the_session_failed(
    check_session: Check, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="skyvern_cdp.local")
    with LocalBackend(chromium_executable="/bin/false") as server, client_for(server) as http:
        sid = http.post("/v1/browser_sessions").json()["browser_session_id"]
        failed = wait_status(http, sid, check_session, {"failed", "running"}, 20.0)
        assert failed["status"] == "failed"
        assert failed["browser_address"] is None
        assert any(sid in r.getMessage() and "did not start" in r.getMessage()
                   for r in caplog.records)


def test_ready_delay_keeps_a_session_created(check_session: Check) -> None:
    delay = (0.5, 0.7)  # drawn per session
    with LocalBackend(ready_delay=delay, chromium_args=CLOSED_NETWORK_ARGS) as server, client_for(
        server
    ) as http:
        posted = time.monotonic()
        sid = http.post("/v1/browser_sessions").json()["browser_session_id"]
        assert get_session(http, sid, check_session)["status"] == "created"
        wait_status(http, sid, check_session, {"running"})
        ready = server.ready_at(sid)
        assert ready is not None
        assert ready - posted >= delay[0]
        http.post(f"/v1/browser_sessions/{sid}/close")
        # Closed while it waits: it never gets a browser.
        other = http.post("/v1/browser_sessions").json()["browser_session_id"]
        assert http.post(f"/v1/browser_sessions/{other}/close").status_code == 200
        body = get_session(http, other, check_session)
        assert body["status"] == "completed"
        assert body["started_at"] is None
        assert server.live_chromium_pids() == []
        assert server.ready_at(other) is None


def test_reaper_times_out_a_session_and_extend_moves_the_deadline(check_session: Check) -> None:
    minute = 0.1  # a 5-minute session lives 0.5 s
    with LocalBackend(minute_seconds=minute, chromium_args=CLOSED_NETWORK_ARGS) as server, (
        client_for(server)
    ) as http:
        sid = http.post("/v1/browser_sessions", json={"timeout": 5}).json()["browser_session_id"]
        running = wait_status(http, sid, check_session, {"running"})
        pid, root = chromium_of(server, running["browser_address"])
        extended = http.post(f"/v1/browser_sessions/{sid}/extend", json={"additional_minutes": 5})
        assert extended.status_code == 200
        assert check_session(extended.json())["timeout"] == 10
        assert extended.json()["warning"] is None
        ended = wait_status(http, sid, check_session, {"timeout", "completed", "failed"}, 20.0)
        observed = time.monotonic()
        ready = server.ready_at(sid)
        assert ended["status"] == "timeout"
        assert ended["completed_at"] is not None
        assert ready is not None
        assert observed - ready >= 10 * minute, "extend was ignored"
        assert group_gone(pid)
        assert not root.exists()
        assert http.get("/v1/browser_sessions").json() == []


# ---- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize("sid", ["pbs_000000000000", "not-a-session", "pbs_a-b_c", "pbs_%E2%9C%93"])
def test_unknown_or_malformed_ids_are_404(backend: LocalBackend, sid: str) -> None:
    with client_for(backend) as http:
        shown = httpx.URL(f"/v1/browser_sessions/{sid}").path.rsplit("/", 1)[1]
        assert_not_found(http.get(f"/v1/browser_sessions/{sid}"), shown)
        assert_not_found(http.post(f"/v1/browser_sessions/{sid}/close"), shown)
        extend = http.post(f"/v1/browser_sessions/{sid}/extend", json={"additional_minutes": 5})
        assert_not_found(extend, shown)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"timeout": 4}, "timeout"),
        ({"timeout": "soon"}, "timeout"),
        ({"extensions": ["popup-blocker"]}, "extensions"),
        ({"browser_type": "firefox"}, "browser_type"),
        ({"browser_profile_id": "profile-1"}, "browser_profile_id"),
        ({"url": "https://example.com/\x00"}, "url"),
        ([1, 2], None),
    ],
)
def test_bad_create_bodies_are_422(
    idle: LocalBackend, spec_document: dict[str, Any], body: object, field: str | None
) -> None:
    import jsonschema

    with client_for(idle) as http:
        answer = http.post("/v1/browser_sessions", json=body)
        assert answer.status_code == 422
        schema = {
            "$ref": "#/components/schemas/HTTPValidationError",
            "components": spec_document["components"],
        }
        jsonschema.validate(answer.json(), schema)
        detail = answer.json()["detail"]
        assert detail
        assert all({"loc", "msg", "type"} <= set(item) for item in detail)
        if field is not None:
            assert detail[0]["loc"][:2] == ["body", field]
        assert http.get("/v1/browser_sessions").json() == []


def test_malformed_json_and_bad_extend_bodies_are_422(idle: LocalBackend) -> None:
    with client_for(idle) as http:
        raw = http.post(
            "/v1/browser_sessions",
            content=b"{not json",
            headers={"content-type": "application/json"},
        )
        assert raw.status_code == 422
        assert raw.json()["detail"][0]["type"] == "json_invalid"
        sid = http.post("/v1/browser_sessions").json()["browser_session_id"]
        try:
            for bad in ({}, {"additional_minutes": 0}, {"additional_minutes": "x"}):
                answer = http.post(f"/v1/browser_sessions/{sid}/extend", json=bad)
                assert answer.status_code == 422, bad
                assert answer.json()["detail"][0]["loc"][:2] == ["body", "additional_minutes"]
        finally:
            http.post(f"/v1/browser_sessions/{sid}/close")


def test_auth_missing_or_wrong_key_is_403(backend: LocalBackend) -> None:
    routes = [
        ("GET", "/v1/browser_sessions", None),
        ("POST", "/v1/browser_sessions", {"timeout": 10}),
        ("POST", "/v1/browser_sessions", {"timeout": 1}),  # auth comes before validation
        ("GET", "/v1/browser_sessions/pbs_123", None),
        ("POST", "/v1/browser_sessions/pbs_123/close", None),
        ("POST", "/v1/browser_sessions/pbs_123/extend", {"additional_minutes": 5}),
    ]
    with client_for(backend, key=None) as anonymous, client_for(backend, key="wrong") as wrong:
        for method, path, body in routes:
            missing = anonymous.request(method, path, json=body)
            assert missing.status_code == 403
            assert missing.json() == {"detail": "Invalid credentials"}
            bad = wrong.request(method, path, json=body)
            assert bad.status_code == 403
            assert bad.json() == {"detail": "Could not validate credentials"}
    with client_for(backend) as http:
        assert http.get("/v1/browser_sessions").json() == [], "a refused create created nothing"
        assert http.get("/v1/browser_sessions/pbs_123").status_code == 404


def test_no_key_needed_when_the_server_has_none(idle: LocalBackend) -> None:
    with client_for(idle, key=None) as http, client_for(idle, key="anything") as keyed:
        assert http.get("/v1/browser_sessions").status_code == 200
        assert keyed.get("/v1/browser_sessions").status_code == 200


# ---- create options, cap, extend ------------------------------------------------------------


def test_cap_answers_429_with_retry_after(idle: LocalBackend, check_session: Check) -> None:
    with client_for(idle) as http:
        first = http.post("/v1/browser_sessions").json()["browser_session_id"]
        second = http.post("/v1/browser_sessions").json()["browser_session_id"]
        try:
            refused = http.post("/v1/browser_sessions")
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) >= 1
            assert "at most 2" in refused.json()["detail"]
            assert len(http.get("/v1/browser_sessions").json()) == 2
            http.post(f"/v1/browser_sessions/{first}/close")
            third = http.post("/v1/browser_sessions")
            assert third.status_code == 200
            http.post(f"/v1/browser_sessions/{third.json()['browser_session_id']}/close")
        finally:
            for sid in (first, second):
                http.post(f"/v1/browser_sessions/{sid}/close")
        assert http.get("/v1/browser_sessions").json() == []
        assert check_session(get_session(http, second, check_session))["status"] == "completed"


def test_create_options_are_echoed_and_defaults_applied(
    idle: LocalBackend, check_session: Check
) -> None:
    bodies: list[Any] = [
        None,
        {"timeout": None},
        {
            "timeout": 15,
            "extensions": ["ad-blocker", "captcha-solver"],
            "browser_type": "chrome",
            "browser_profile_id": "bp_123",
            "generate_browser_profile": True,
            "proxy_location": "RESIDENTIAL",
            "needs_live_view": True,
            "some_future_field": 1,
        },
    ]
    answers = []
    with client_for(idle) as http:
        # The profile must exist: an unknown one is a 404, as on Skyvern.
        made = http.post("/v1/browser_profiles", json={"name": "echoed"}).json()
        bodies[2]["browser_profile_id"] = made["browser_profile_id"]
        for body in bodies:
            answer = check_session(http.post("/v1/browser_sessions", json=body).json())
            http.post(f"/v1/browser_sessions/{answer['browser_session_id']}/close")
            answers.append(answer)
    empty, nulls, full = answers
    assert empty["timeout"] == 60
    assert nulls["timeout"] == 60
    assert empty["extensions"] is None
    assert empty["generate_browser_profile"] is False
    assert full["timeout"] == 15
    assert full["browser_type"] == "chrome"
    assert full["extensions"] == ["ad-blocker", "captcha-solver"]
    assert full["browser_profile_id"] == made["browser_profile_id"]
    assert full["generate_browser_profile"]
    assert len({a["browser_session_id"] for a in answers}) == 3


def test_timeout_and_extend_are_capped_with_warnings(
    idle: LocalBackend, check_session: Check
) -> None:
    with client_for(idle) as http:
        created = http.post("/v1/browser_sessions", json={"timeout": 300}).json()
        sid = created["browser_session_id"]
        assert check_session(created)["timeout"] == 240
        assert "240" in created["warning"]
        try:
            extend = f"/v1/browser_sessions/{sid}/extend"
            plain = http.post(extend, json={"additional_minutes": 60}).json()
            assert check_session(plain)["timeout"] == 300
            assert plain["warning"] is None
            capped = http.post(extend, json={"additional_minutes": 100}).json()
            assert check_session(capped)["timeout"] == 360
            assert "360" in capped["warning"]
            full = http.post(extend, json={"additional_minutes": 1}).json()
            assert full["timeout"] == 360
            assert full["warning"]
            assert get_session(http, sid, check_session)["timeout"] == 360
        finally:
            http.post(f"/v1/browser_sessions/{sid}/close")
        ended = http.post(extend, json={"additional_minutes": 5})
        assert ended.status_code == 409
        assert "completed" in ended.json()["detail"]


# ---- the object itself -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"max_sessions": -1}, ValueError),
        ({"max_sessions": 1.5}, TypeError),
        ({"ready_delay": -0.1}, ValueError),
        ({"ready_delay": (2.0, 1.0)}, ValueError),
        ({"ready_delay": (1.0,)}, ValueError),
        ({"ready_delay": "1"}, TypeError),
        ({"ready_delay": float("nan")}, ValueError),
        ({"minute_seconds": 0}, ValueError),
        ({"port": 70000}, ValueError),
        ({"port": "8000"}, TypeError),
        ({"host": "0.0.0.0"}, ValueError),
        ({"host": "192.168.1.10"}, ValueError),
        ({"api_key": ""}, ValueError),
        ({"api_key": "a\nb"}, ValueError),
        ({"api_key": "k\u00e9y"}, ValueError),  # before: started; no client could send it
        ({"chromium_args": "--mute-audio"}, TypeError),
        ({"organization_id": ""}, ValueError),
    ],
)
def test_bad_arguments_raise_typed_errors(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        LocalBackend(**kwargs)


def test_repr_hides_the_key_and_base_url_needs_start() -> None:
    server = LocalBackend(api_key="sk-very-secret")
    assert "sk-very-secret" not in repr(server)
    assert "<set>" in repr(server)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.base_url
    server.stop()  # stopping a backend that never started is harmless
    with pytest.raises(RuntimeError, match="stopped"):
        server.start()


def test_openapi_matches_the_spec(idle: LocalBackend, spec_document: dict[str, Any]) -> None:
    doc = httpx.get(f"{idle.base_url}/openapi.json", trust_env=False).json()
    path = "/v1/browser_sessions/{browser_session_id}"
    spec_paths: Any = spec_document["paths"]
    spec_schemas: Any = spec_document["components"]
    assert doc["paths"][path]["get"] == spec_paths[path]["get"]
    for name in (
        "BrowserSessionResponse",
        "FileInfo",
        "Extensions",
        "PersistentBrowserType",
        "HTTPValidationError",
        "ValidationError",
    ):
        assert doc["components"]["schemas"][name] == spec_schemas["schemas"][name], name
    # The other routes are described too, and only with schemas the document defines.
    assert {"post"} <= set(doc["paths"]["/v1/browser_sessions"])
    assert "post" in doc["paths"][path + "/close"]
    assert "post" in doc["paths"][path + "/extend"]
    refs = {
        ref.rsplit("/", 1)[1]
        for ref in _refs(doc)
    }
    assert refs <= set(doc["components"]["schemas"])
    assert json.dumps(doc)  # serializable as served


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from _refs(item)
