"""Wire models (forward compatible, zone-aware) and configuration (presets, env, redaction)."""

from __future__ import annotations

import asyncio
import json
import math
from datetime import timezone
from pathlib import Path

import pytest

from skyvern_cdp import (
    BrowserSessionResponse,
    InsecureTransportError,
    InvalidArgumentError,
    InvalidArgumentTypeError,
    PersistentBrowserType,
)
from skyvern_cdp.config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    redact_address,
    redact_text,
    resolve_base_url,
    resolve_settings,
    validate_timeout,
)
from skyvern_cdp.models import CreateBrowserSessionRequest, FileInfo

SELF_HOSTED_BODY = {
    # as a self-hosted Skyvern 1.0.56 sends it: zone-less times, fields beyond the spec
    "browser_session_id": "pbs_123",
    "organization_id": "o_1",
    "status": "running",
    "browser_address": "wss://sessions.skyvern.com/pbs_123/devtools/browser/b?token=s3cr3t",
    "started_at": "2026-11-28T15:42:24.364696",
    "created_at": "2026-11-28T15:42:23.9",
    "modified_at": "2026-11-28T15:42:24.364696",
    "browser_type": "quantum-browser",
    "extensions": ["ad-blocker", "future-ext"],
    "browser_settings": {"x": 1},
    "remaining_lifetime_seconds": 3540,
    "warning": "capped",
    "downloaded_files": [{"url": "https://f/x.pdf", "modified_at": "2026-11-28T15:42:24"}],
}


def test_a_newer_server_body_is_accepted_and_kept() -> None:
    session = BrowserSessionResponse.model_validate(SELF_HOSTED_BODY)
    assert session.model_extra is not None
    assert session.model_extra["remaining_lifetime_seconds"] == 3540
    assert session.browser_type == "quantum-browser"
    assert session.extensions == ["ad-blocker", "future-ext"]
    assert session.is_ready


def test_zone_less_timestamps_are_read_as_utc_and_written_with_their_zone() -> None:
    session = BrowserSessionResponse.model_validate(SELF_HOSTED_BODY)
    assert session.started_at is not None and session.started_at.tzinfo == timezone.utc
    assert session.downloaded_files is not None
    assert session.downloaded_files[0].modified_at is not None
    dumped = json.loads(session.model_dump_json())
    assert dumped["started_at"] == "2026-11-28T15:42:24.364696+00:00"
    assert dumped["created_at"].endswith("+00:00")


def test_known_enum_values_become_enums() -> None:
    session = BrowserSessionResponse.model_validate({**SELF_HOSTED_BODY, "browser_type": "msedge"})
    assert session.browser_type is PersistentBrowserType.MSEDGE


def test_an_unknown_status_is_kept_not_fatal() -> None:
    session = BrowserSessionResponse.model_validate({**SELF_HOSTED_BODY, "status": "paused"})
    assert session.status == "paused" and not session.is_ready and not session.is_final


@pytest.mark.parametrize("missing", ["browser_session_id", "organization_id", "created_at"])
def test_required_fields_are_required(missing: str) -> None:
    body = {k: v for k, v in SELF_HOSTED_BODY.items() if k != missing}
    with pytest.raises(ValueError, match=missing):
        BrowserSessionResponse.model_validate(body)


def test_repr_never_shows_the_address_token() -> None:
    session = BrowserSessionResponse.model_validate(SELF_HOSTED_BODY)
    assert "s3cr3t" not in repr(session) and "s3cr3t" not in str(session)
    assert "sessions.skyvern.com" in repr(session)


def test_create_body_validates_before_sending() -> None:
    assert CreateBrowserSessionRequest(timeout=15, browser_type="chrome").timeout == 15  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="greater than or equal to 5"):
        CreateBrowserSessionRequest(timeout=4)
    with pytest.raises(ValueError, match="Extra inputs"):
        CreateBrowserSessionRequest(tiemout=15)  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="bp_"):
        CreateBrowserSessionRequest(browser_profile_id="profile-1")


def test_file_info_needs_a_url() -> None:
    with pytest.raises(ValueError, match="url"):
        FileInfo.model_validate({"checksum": "abc"})


def test_models_match_the_spec_field_for_field() -> None:
    yaml = pytest.importorskip("yaml")
    spec_path = Path(__file__).parent / "data" / "get-browser-session.openapi.yaml"
    spec = yaml.safe_load(spec_path.read_text())
    schemas = spec["components"]["schemas"]
    for model, name in [(BrowserSessionResponse, "BrowserSessionResponse"), (FileInfo, "FileInfo")]:
        assert set(model.model_fields) == set(schemas[name]["properties"]), name
        required = {n for n, f in model.model_fields.items() if f.is_required()}
        assert required == set(schemas[name]["required"]), name


# -- configuration --------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(API_KEY_ENV, raising=False)
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    return monkeypatch


def test_presets_and_default(clean_env: pytest.MonkeyPatch) -> None:
    assert resolve_base_url() == "https://api.skyvern.com"
    assert resolve_base_url("staging") == "https://api-staging.skyvern.com"
    assert resolve_base_url("LOCAL") == "http://localhost:8000"
    assert resolve_base_url("https://skyvern.example.com/") == "https://skyvern.example.com"


def test_environment_is_read(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv(BASE_URL_ENV, "http://127.0.0.1:9000")
    clean_env.setenv(API_KEY_ENV, "sk-from-env")
    settings = resolve_settings()
    assert settings.base_url == "http://127.0.0.1:9000" and settings.api_key == "sk-from-env"
    assert "sk-from-env" not in repr(settings)
    assert resolve_settings(api_key="sk-arg").api_key == "sk-arg", "arguments win"


@pytest.mark.parametrize(
    "url",
    [
        "api.skyvern.com",
        "file:///etc/passwd",
        "ftp://h",
        "http://",
        "",
        "   ",
        "http://u:p@h.com",
        "https://h.com/?x=1",
        "http://h:notaport",
        "http://h\n.com",
    ],
)
def test_bad_base_urls_are_refused(url: str, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgumentError):
        resolve_base_url(url)


@pytest.mark.parametrize("value", [123, b"http://h", ["http://h"]])
def test_base_url_of_the_wrong_type(value: object, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgumentTypeError):
        resolve_base_url(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("key", ["", "  ", "a\nb", 42])
def test_bad_api_keys_are_refused(key: object, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgumentError):
        resolve_settings(api_key=key, base_url="local")  # type: ignore[arg-type]


def test_the_key_never_goes_over_plain_http_to_a_remote_host(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InsecureTransportError, match="https"):
        resolve_settings(api_key="sk-1", base_url="http://skyvern.example.com")
    assert resolve_settings(api_key="sk-1", base_url="http://127.0.0.5:8000").api_key
    assert resolve_settings(api_key="sk-1", base_url="http://[::1]:8000").api_key
    opted = resolve_settings(
        api_key="sk-1", base_url="http://skyvern.example.com", allow_insecure_http=True
    )
    assert opted.allow_insecure_http
    assert resolve_settings(base_url="http://skyvern.example.com").api_key is None


@pytest.mark.parametrize("hosts", ["h.com", ["h.com:443"], ["https://h.com"], [""], [1]])
def test_bad_trusted_hosts(hosts: object, clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(InvalidArgumentError):
        resolve_settings(base_url="local", trusted_hosts=hosts)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [-1, 0, math.nan, math.inf, -math.inf, 1e10, 1e308])
def test_bad_timeouts(value: float) -> None:
    with pytest.raises(InvalidArgumentError):
        validate_timeout(value)


@pytest.mark.parametrize(
    ("address", "shown"),
    [
        (
            "wss://sessions.skyvern.com/pbs_1/devtools/browser/abc?token=t0k",
            "wss://sessions.skyvern.com/<redacted>",
        ),
        ("http://localhost:9222", "http://localhost:9222"),
        ("ws://127.0.0.1:9222/devtools/browser/uuid", "ws://127.0.0.1:9222/<redacted>"),
        ("ws://user:pw@h:1", "ws://h:1/<redacted>"),
        ("garbage", "<redacted>"),
    ],
)
def test_addresses_are_redacted_to_scheme_host_port(address: str, shown: str) -> None:
    assert redact_address(address) == shown


def test_redact_text_removes_keys_and_query_tokens() -> None:
    text = "failed ws://h/x?token=t0k3n&a=1 with key sk-live-12345"
    clean = redact_text(text, ["sk-live-12345"])
    assert "t0k3n" not in clean and "sk-live-12345" not in clean and "a=1" in clean


def test_redact_text_removes_presigned_url_signatures() -> None:
    url = (
        "https://b.s3.amazonaws.com/f.pdf?X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=AKIAXX%2F2026&X-Amz-Signature=abc123&X-Amz-Security-Token=tok&v=1"
    )
    clean = redact_text(url)
    for secret in ("AKIAXX", "abc123", "=tok"):
        assert secret not in clean
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in clean and "v=1" in clean


def test_a_timeout_past_what_the_platform_can_wait_is_a_typed_error_of_every_attach() -> None:
    """Before (outside review): ``sync_api.connect(timeout=1e10)`` raised a bare OverflowError
    and left its poll thread running; the async shell and the clients waited instead."""
    import threading

    from skyvern_cdp import AsyncSkyvernClient, SkyvernClient, async_api, sync_api

    assert validate_timeout(threading.TIMEOUT_MAX) == threading.TIMEOUT_MAX
    # threads of this worker's earlier tests (a local backend still serving) are not ours
    before = set(threading.enumerate())
    dead = "http://127.0.0.1:9"
    with pytest.raises(InvalidArgumentError, match="timeout must be at most"):
        sync_api.connect("pbs_a", base_url=dead, timeout=1e10)
    with pytest.raises(InvalidArgumentError, match="timeout must be at most"):
        asyncio.run(async_api.connect("pbs_a", base_url=dead, timeout=1e10).__aenter__())
    with SkyvernClient("sk-1", dead) as client, pytest.raises(InvalidArgumentError):
        client.get_browser_session("pbs_a", timeout=1e10)

    async def get() -> None:
        async with AsyncSkyvernClient("sk-1", dead) as client:
            await client.get_browser_session("pbs_a", timeout=1e10)
    with pytest.raises(InvalidArgumentError):
        asyncio.run(get())
    started = set(threading.enumerate()) - before
    assert not [t for t in started if t.name.startswith("skyvern-cdp")]
