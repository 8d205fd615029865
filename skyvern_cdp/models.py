"""Wire shapes of Skyvern's browser-session API (``../shared/spec``), as pydantic v2 models.

>>> from skyvern_cdp.models import BrowserSessionResponse
>>> s = BrowserSessionResponse.model_validate({
...     "browser_session_id": "pbs_1", "organization_id": "o_1",
...     "created_at": "2026-11-28T15:42:24", "modified_at": "2026-11-28T15:42:24",
...     "status": "running", "browser_address": "ws://127.0.0.1:9222/devtools/browser/x",
...     "started_at": "2026-11-28T15:42:25+00:00", "brand_new_field": 1})
>>> s.is_ready, s.is_final, s.created_at.tzinfo is not None
(True, False, True)

The models are forward compatible: unknown fields are kept (``model_extra``), and an
unknown status or enum value is kept as a plain string instead of raising.
"""

from __future__ import annotations

import enum
from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)

__all__ = [
    "FINAL_STATUSES",
    "BrowserProfile",
    "BrowserSessionResponse",
    "CloseBrowserSessionResponse",
    "CreateBrowserProfileRequest",
    "CreateBrowserSessionRequest",
    "ExtendBrowserSessionRequest",
    "Extensions",
    "FileInfo",
    "HTTPValidationError",
    "PersistentBrowserType",
    "SessionStatus",
    "ValidationError",
]


def _as_utc(value: datetime) -> datetime:
    """Read a zone-less timestamp as UTC (self-hosted Skyvern sends them without a zone)."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _iso(value: datetime) -> str:
    return _as_utc(value).isoformat()


#: A timestamp that is always zone-aware and is written back with its zone (``+00:00``).
UTCDateTime = Annotated[
    datetime, AfterValidator(_as_utc), PlainSerializer(_iso, return_type=str, when_used="json")
]


class SessionStatus(str, enum.Enum):
    """Known values of ``BrowserSessionResponse.status``. Other strings may appear."""

    CREATED = "created"
    RUNNING = "running"
    RETRY = "retry"
    COMPLETED = "completed"
    FAILED = "failed"
    TIMEOUT = "timeout"

    def __str__(self) -> str:
        return self.value


#: Statuses a session never leaves.
FINAL_STATUSES: frozenset[str] = frozenset(
    {SessionStatus.COMPLETED.value, SessionStatus.FAILED.value, SessionStatus.TIMEOUT.value}
)


class Extensions(str, enum.Enum):
    """Browser extensions a session can install."""

    AD_BLOCKER = "ad-blocker"
    CAPTCHA_SOLVER = "captcha-solver"

    def __str__(self) -> str:
        return self.value


class PersistentBrowserType(str, enum.Enum):
    """The kind of browser behind a session."""

    MSEDGE = "msedge"
    CHROME = "chrome"
    STEALTH_CHROMIUM = "stealth-chromium"

    def __str__(self) -> str:
        return self.value


#: A known enum value becomes the enum; any other string is kept as it is.
KnownExtension = Annotated[Extensions | str, Field(union_mode="left_to_right")]
KnownBrowserType = Annotated[PersistentBrowserType | str, Field(union_mode="left_to_right")]


class _WireModel(BaseModel):
    """A response shape: keeps unknown fields, never rejects a newer server."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class FileInfo(_WireModel):
    """A file a session downloaded or recorded."""

    url: str = Field(description="URL to access the file")
    checksum: str | None = Field(default=None, description="SHA-256 checksum of the file")
    filename: str | None = Field(default=None, description="Original filename")
    file_size: int | None = Field(default=None, description="Size of the file in bytes")
    modified_at: UTCDateTime | None = Field(default=None, description="Modified time of the file")
    artifact_id: str | None = Field(default=None, description="Artifact row id for refresh-on-read")

    @field_validator("url")
    @classmethod
    def _conceal_url(cls, value: str) -> str:
        # Held as a SecretURL: its query (a recording's token, a presigned signature) never
        # shows in a repr, so neither in a model's repr nor in a traceback's locals.
        from skyvern_cdp.config import conceal_url

        return conceal_url(value) or value


class BrowserSessionResponse(_WireModel):
    """A browser session as ``GET /v1/browser_sessions/{id}`` answers it.

    ``status`` is a plain string (compare with :class:`SessionStatus`); ``is_ready`` and
    ``is_final`` carry the two decisions every caller needs.
    """

    browser_session_id: str
    organization_id: str
    status: str | None = None
    runnable_type: str | None = None
    runnable_id: str | None = None
    timeout: int | None = None
    browser_address: str | None = None
    app_url: str | None = None
    extensions: list[KnownExtension] | None = None
    browser_type: KnownBrowserType | None = None
    browser_profile_id: str | None = None
    generate_browser_profile: bool = False
    vnc_streaming_supported: bool = False
    download_path: str | None = None
    downloaded_files: list[FileInfo] | None = None
    recordings: list[FileInfo] | None = None
    started_at: UTCDateTime | None = None
    completed_at: UTCDateTime | None = None
    created_at: UTCDateTime
    modified_at: UTCDateTime
    deleted_at: UTCDateTime | None = None

    @property
    def is_ready(self) -> bool:
        """Running, with a ``browser_address`` and a ``started_at``: safe to dial."""
        return (
            self.status == SessionStatus.RUNNING.value
            and bool(self.browser_address)
            and self.started_at is not None
        )

    @property
    def is_final(self) -> bool:
        """``completed``, ``failed`` or ``timeout``: the session will never run again."""
        return self.status in FINAL_STATUSES

    @field_validator("browser_address")
    @classmethod
    def _conceal_address(cls, value: str | None) -> str | None:
        # Held as a SecretAddress: a traceback's locals (pytest --showlocals, Sentry) that
        # hold the address show only its scheme and host, as the key shows '<redacted>'.
        from skyvern_cdp.config import conceal_address

        return conceal_address(value)

    def __repr_args__(self) -> Any:
        # The address may carry a token: never let it reach a repr (and so a log or traceback).
        from skyvern_cdp.config import redact_address

        for name, value in super().__repr_args__():
            if name == "browser_address" and isinstance(value, str):
                yield name, redact_address(value)
            else:
                yield name, value


class CreateBrowserSessionRequest(BaseModel):
    """Body of ``POST /v1/browser_sessions``. Every field is optional.

    ``timeout`` is the session's lifetime in **minutes** (at least 5; the server caps it).
    Unknown fields are rejected, so a typo fails before anything is created.
    """

    model_config = ConfigDict(extra="forbid")

    url: str | None = None
    timeout: int | None = Field(default=None, ge=5, description="Session lifetime in minutes")
    proxy_location: str | None = None
    proxy_session_id: str | None = None
    extensions: list[Extensions] | None = None
    browser_type: PersistentBrowserType | None = None
    browser_profile_id: str | None = Field(default=None, pattern=r"^bp_")
    generate_browser_profile: bool | None = None
    needs_live_view: bool | None = None


class ExtendBrowserSessionRequest(BaseModel):
    """Body of ``POST /v1/browser_sessions/{id}/extend``."""

    model_config = ConfigDict(extra="forbid")

    additional_minutes: int = Field(ge=1)


class CloseBrowserSessionResponse(_WireModel):
    """Answer of ``POST /v1/browser_sessions/{id}/close``."""

    message: str = "Browser session closed"


class BrowserProfile(_WireModel):
    """A browser profile (``bp_…``): a saved browser state a new session can start from.

    Forward compatible like the session models: unknown fields are kept (``model_extra``).
    """

    browser_profile_id: str
    organization_id: str | None = None
    name: str
    description: str | None = None
    source_browser_type: KnownBrowserType | None = None
    proxy_location: Any = None
    proxy_session_id: str | None = None
    is_managed: bool | None = None
    created_at: UTCDateTime | None = None
    modified_at: UTCDateTime | None = None
    deleted_at: UTCDateTime | None = None


class CreateBrowserProfileRequest(BaseModel):
    """Body of ``POST /v1/browser_profiles``; without ``browser_session_id`` a blank profile."""

    model_config = ConfigDict(extra="forbid")

    name: str
    description: str | None = None
    browser_session_id: str | None = None


class ValidationError(_WireModel):
    """One entry of a 422 answer's ``detail``."""

    loc: list[str | int]
    msg: str
    type: str
    input: Any = None
    ctx: dict[str, Any] | None = None


class HTTPValidationError(_WireModel):
    """A 422 answer: what the server could not accept."""

    detail: list[ValidationError] = Field(default_factory=list)
