"""The local backend's lifecycle decisions, without a server or a browser."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from skyvern_cdp.local.registry import (
    CapacityError,
    Registry,
    grant_extension,
    grant_timeout,
    is_session_id,
    new_session_id,
)
from skyvern_cdp.models import BrowserSessionResponse


def test_ids_are_pbs_and_unguessable() -> None:
    ids = {new_session_id() for _ in range(200)}
    assert len(ids) == 200
    for sid in ids:
        assert sid.startswith("pbs_")
        assert is_session_id(sid)
        assert len(sid) >= 24


@pytest.mark.parametrize(
    "value", ["", "pbs_", "abc", "pbs_a/b", "pbs_1 2", "PBS_1", "pbs_" + "1" * 200, "pbs_é"]
)
def test_malformed_ids_are_not_session_ids(value: str) -> None:
    assert not is_session_id(value)


def test_timeout_default_min_and_cap() -> None:
    assert grant_timeout(None) == (60, None)
    assert grant_timeout(5) == (5, None)
    assert grant_timeout(240) == (240, None)
    minutes, warning = grant_timeout(241)
    assert minutes == 240
    assert warning is not None
    assert "240" in warning
    with pytest.raises(ValueError, match="at least 5"):
        grant_timeout(4)


def test_extension_is_capped_at_360_minutes_in_total() -> None:
    assert grant_extension(60, 30) == (90, None)
    assert grant_extension(300, 60) == (360, None)
    minutes, warning = grant_extension(300, 100)
    assert minutes == 360
    assert warning is not None
    assert "granted 60 of the 100" in warning
    minutes, warning = grant_extension(360, 5)
    assert minutes == 360
    assert warning is not None
    assert "granted 0" in warning
    with pytest.raises(ValueError, match="at least 1"):
        grant_extension(60, 0)


def test_lifecycle_created_running_completed() -> None:
    reg = Registry(organization_id="o_local")
    rec = reg.create(timeout=10, download_dir=Path("/tmp/x"))
    assert (rec.status, rec.started_at, rec.deadline(60.0)) == ("created", None, None)
    reg.mark_running(rec.browser_session_id, "ws://127.0.0.1:1/devtools/browser/a", now=100.0)
    assert rec.status == "running"
    assert rec.started_at is not None
    assert rec.deadline(60.0) == 100.0 + 600.0
    assert rec.modified_at == rec.started_at
    assert reg.mark_final(rec.browser_session_id, "completed")
    assert not reg.mark_final(rec.browser_session_id, "failed"), "a final status never changes"
    assert rec.status == "completed"
    assert rec.completed_at is not None
    assert reg.live() == []
    assert reg.get(rec.browser_session_id) is rec
    with pytest.raises(ValueError, match="not created"):
        reg.mark_running(rec.browser_session_id, "ws://x", now=1.0)
    with pytest.raises(ValueError, match="completed"):
        reg.extend(rec.browser_session_id, 5)


def test_capacity_counts_live_sessions_only() -> None:
    reg = Registry(max_sessions=1)
    first = reg.create(timeout=None, download_dir=None)
    with pytest.raises(CapacityError, match="at most 1"):
        reg.create(timeout=None, download_dir=None)
    reg.mark_final(first.browser_session_id, "failed", "boom")
    assert first.failure_reason == "boom"
    reg.create(timeout=None, download_dir=None)  # room again


def test_expiry_and_extension_move_the_deadline() -> None:
    reg = Registry()
    rec = reg.create(timeout=5, download_dir=None)
    idle = reg.create(timeout=5, download_dir=None)  # never runs: no deadline
    reg.mark_running(rec.browser_session_id, "ws://a", now=0.0)
    assert reg.next_deadline(1.0) == 5.0
    assert reg.expired(4.9, 1.0) == []
    assert reg.expired(5.0, 1.0) == [rec]
    assert reg.extend(rec.browser_session_id, 5) is None
    assert rec.timeout == 10
    assert reg.expired(5.0, 1.0) == []
    assert reg.next_deadline(1.0) == 10.0
    assert idle not in reg.expired(1e9, 1.0)


def test_wire_shape_is_a_valid_session(check_session: Callable[[Any], Any]) -> None:
    reg = Registry(organization_id="o_local")
    rec = reg.create(
        timeout=15,
        download_dir=Path("/tmp/dl"),
        extensions=["ad-blocker"],
        browser_type="chrome",
    )
    created = check_session(rec.to_wire(app_url="http://127.0.0.1:1/sessions/x"))
    assert created["created_at"].endswith("+00:00")
    reg.mark_running(rec.browser_session_id, "ws://127.0.0.1:9/devtools/browser/b", now=1.0)
    reg.mark_final(rec.browser_session_id, "timeout")
    body = check_session(
        rec.to_wire(
            app_url=None,
            downloaded_files=[{"url": "http://x/f", "checksum": "0" * 64, "file_size": 1}],
        )
    )
    model = BrowserSessionResponse.model_validate(body)
    assert model.is_final
    assert model.organization_id == "o_local"
    assert model.completed_at is not None
    assert model.completed_at.utcoffset() is not None


def test_the_shipped_spec_copies_match_the_contract(spec_document: dict[str, Any]) -> None:
    """The package's JSON copy (served in /openapi.json) and tests/data are the same document,
    and both equal ``../shared/spec`` when that checkout is present."""
    import yaml

    from skyvern_cdp.local.app import spec_document as shipped

    assert shipped() == spec_document
    shared = Path(__file__).resolve().parents[1].parent / "shared" / "spec"
    contract = shared / "get-browser-session.openapi.yaml"
    if not contract.exists():
        pytest.skip(f"{contract} is not checked out here")
    assert yaml.safe_load(contract.read_text(encoding="utf-8")) == spec_document
