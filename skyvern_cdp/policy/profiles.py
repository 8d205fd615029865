"""Decisions about browser profiles, no I/O: is this id or name valid, is it an id or a name,
what did a 400 of a create mean, is that worth another try, which listed profile is meant.

>>> from skyvern_cdp.policy.profiles import profile_ref, classify_profile_400
>>> profile_ref("bp_123"), profile_ref("crm login")
(ProfileRef(profile_id='bp_123', name=None), ProfileRef(profile_id=None, name='crm login'))
>>> classify_profile_400("Browser session does not have a persisted profile archive. Close"
...                      " the session and wait for upload before creating a browser profile.")
'upload_pending'
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from skyvern_cdp.config import has_control_character
from skyvern_cdp.errors import (
    InvalidArgumentError,
    InvalidArgumentTypeError,
    ProfileExistsError,
    ProfileSourceError,
    ProfileUploadPendingError,
    SessionEndedError,
)
from skyvern_cdp.policy.retry import is_retryable_create_error

if TYPE_CHECKING:
    from skyvern_cdp.models import BrowserProfile, BrowserSessionResponse

__all__ = [
    "PROFILE_ID_PREFIX",
    "PROFILE_NAME_MAX_LENGTH",
    "RESOLVE_PAGE_SIZE",
    "ProfileRef",
    "capture_conflict",
    "capture_failed",
    "capture_not_saved",
    "classify_profile_400",
    "is_retryable_profile_create",
    "login_decision",
    "match_profile",
    "more_pages",
    "profile_ref",
    "validate_description",
    "validate_page",
    "validate_profile_id",
    "validate_profile_name",
]

PROFILE_ID_PREFIX = "bp_"
PROFILE_ID_MAX_LENGTH = 128
PROFILE_NAME_MAX_LENGTH = 255
DESCRIPTION_MAX_LENGTH = 2000
#: Page size used when a name is resolved through the list.
RESOLVE_PAGE_SIZE = 100
_ID_CHARS = re.compile(r"[A-Za-z0-9_-]+")


def _shown(value: str) -> str:
    return value[:40] + ("…" if len(value) > 40 else "")


def _no_control(value: str, what: str) -> None:
    if has_control_character(value):  # by Unicode category: C1 (U+0085), bidi, U+2028 too
        raise InvalidArgumentError(f"{what} must not contain control characters")


def validate_profile_id(value: object) -> str:
    """A profile id before it goes into a URL: ``bp_`` + ``[A-Za-z0-9_-]``, ≤ 128 chars.

    >>> validate_profile_id("bp_42")
    'bp_42'
    """
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(
            f"profile id must be a str like 'bp_123', not {type(value).__name__}"
        )
    if len(value) > PROFILE_ID_MAX_LENGTH:
        raise InvalidArgumentError(
            f"profile id is {len(value)} characters long; at most {PROFILE_ID_MAX_LENGTH} allowed"
        )
    if not value.startswith(PROFILE_ID_PREFIX):
        raise InvalidArgumentError(f"profile id must start with 'bp_' (got {_shown(value)!r})")
    if not _ID_CHARS.fullmatch(value) or value == PROFILE_ID_PREFIX:
        raise InvalidArgumentError(
            f"profile id may contain only letters, digits, '_' and '-' after 'bp_'"
            f" (got {_shown(value)!r})"
        )
    return value


def validate_profile_name(value: object) -> str:
    """A profile name: a non-empty str of at most 255 characters, no control characters, and
    not starting with ``bp_`` (that is how an id is told from a name).

    >>> validate_profile_name("crm login")
    'crm login'
    """
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(f"profile name must be a str, not {type(value).__name__}")
    if not value.strip():
        raise InvalidArgumentError("profile name must not be empty")
    if len(value) > PROFILE_NAME_MAX_LENGTH:
        raise InvalidArgumentError(
            f"profile name is {len(value)} characters long; at most"
            f" {PROFILE_NAME_MAX_LENGTH} allowed"
        )
    _no_control(value, "profile name")
    if value.startswith(PROFILE_ID_PREFIX):
        raise InvalidArgumentError(
            f"profile name {_shown(value)!r} starts with 'bp_', which marks a profile id;"
            " choose a name that does not"
        )
    return value


def validate_description(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(f"description must be a str, not {type(value).__name__}")
    if len(value) > DESCRIPTION_MAX_LENGTH:
        raise InvalidArgumentError(f"description is longer than {DESCRIPTION_MAX_LENGTH} chars")
    _no_control(value.replace("\n", " ").replace("\t", " "), "description")
    return value


def validate_page(page: object, page_size: object) -> tuple[int, int]:
    """``page`` (from 1) and ``page_size`` (1..100) of a list call."""
    for name, value in (("page", page), ("page_size", page_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgumentTypeError(f"{name} must be an int, not {type(value).__name__}")
    assert isinstance(page, int)
    assert isinstance(page_size, int)
    if page < 1:
        raise InvalidArgumentError(f"page starts at 1, got {page}")
    if not 1 <= page_size <= 100:
        raise InvalidArgumentError(f"page_size must be 1..100, got {page_size}")
    return page, page_size


@dataclass(frozen=True)
class ProfileRef:
    """What a user named: a profile id (used as it is) or a name (resolved through the list)."""

    profile_id: str | None
    name: str | None


def profile_ref(value: object) -> ProfileRef:
    """``bp_…`` is an id; anything else is a name. Both are checked here, before any request.

    >>> profile_ref("bp_")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    skyvern_cdp.errors.InvalidArgumentError: profile id may contain only letters, ...
    """
    if isinstance(value, str) and value.startswith(PROFILE_ID_PREFIX):
        return ProfileRef(validate_profile_id(value), None)
    if not isinstance(value, str):
        raise InvalidArgumentTypeError(
            f"a browser profile is named by its id ('bp_…') or its name, a str; not"
            f" {type(value).__name__}"
        )
    return ProfileRef(None, validate_profile_name(value))


def classify_profile_400(detail: str) -> str:
    """Which of the server's 400s of a create from a session this is (its only signal is the
    text): ``not_configured`` and ``reused_unavailable`` are final, ``upload_pending`` passes
    once the session has ended and its state is saved.

    >>> classify_profile_400("This browser session was not configured to generate a browser"
    ...                      " profile. Start a session with generate_browser_profile enabled")
    'not_configured'
    >>> classify_profile_400("This browser session reused profile bp_1, whose archive is"
    ...                      " unavailable. Create a profile from …")
    'reused_unavailable'
    """
    text = detail.lower()
    if "not configured to generate a browser profile" in text:
        return "not_configured"
    if "reused profile" in text and "archive is unavailable" in text:
        return "reused_unavailable"
    if "does not have a persisted profile archive" in text:
        return "upload_pending"
    return "other"


def is_retryable_profile_create(exc: BaseException) -> bool:
    """A create of a profile is retried when no profile can have been made (as a session's
    create), and on the transient 400: the session's state is not saved *yet*.

    >>> is_retryable_profile_create(ProfileSourceError("x", reason="upload_pending"))
    True
    >>> is_retryable_profile_create(ProfileSourceError("x", reason="not_configured"))
    False
    """
    if isinstance(exc, ProfileSourceError):
        return exc.reason == "upload_pending"
    return is_retryable_create_error(exc)


def match_profile(name: str, profiles: Iterable[BrowserProfile]) -> BrowserProfile | None:
    """The live profile of exactly this name among ``profiles`` (the list's ``search_key`` is a
    substring match over names and descriptions), or ``None``."""
    for profile in profiles:
        if profile.name == name and profile.deleted_at is None:
            return profile
    return None


def more_pages(page: Iterable[BrowserProfile], page_size: int, seen: set[str]) -> bool:
    """Whether to ask for the next list page after ``page``: it was full, and it brought ids
    not ``seen`` before (a server that ignores ``page`` repeats itself: stop there). Adds the
    page's ids to ``seen``."""
    ids = {p.browser_profile_id for p in page}
    new = ids - seen
    seen |= ids
    return len(ids) >= page_size and bool(new)


def capture_conflict(
    name: str, found: BrowserProfile | None, replace: bool
) -> ProfileExistsError | None:
    """Before a capture launches anything: an error when ``name`` is taken and the caller did
    not ask to replace it (so nobody logs in for nothing), else ``None``.

    >>> capture_conflict("crm", None, replace=False) is None
    True
    """
    if found is None or replace:
        return None
    return ProfileExistsError(
        f"a browser profile named {name!r} exists already ({found.browser_profile_id});"
        " pass replace=True to capture it anew (the old one is deleted once the new login is"
        " saved), or choose another name, or delete it first:"
        f" skyvern-cdp profile delete {found.browser_profile_id}",
        status_code=409,
    )


def capture_not_saved(
    name: str, session_id: str, cause: BaseException
) -> ProfileUploadPendingError:
    """The deadline passed before the captured session's state was saved: the session is
    closed, and its state can still become the profile later."""
    return ProfileUploadPendingError(
        f"the login of session {session_id} was not saved as profile {name!r} within the"
        f" deadline ({cause}); the session is closed; create the profile later with"
        f" `skyvern-cdp profile create {name!r} --from {session_id}`, or pass a longer timeout=",
        status_code=getattr(cause, "status_code", None),
        body=getattr(cause, "body", None),
        reason="upload_pending",
    )


def login_decision(found: BrowserProfile | None, *, now: datetime, max_age: float) -> str:
    """What a test run with a log-in-once hook does about its profile: ``reuse`` one captured
    less than ``max_age`` seconds ago (by ``created_at``: a write-back refreshes
    ``modified_at``, not the login), else ``capture`` (none yet) or ``recapture`` (too old, or
    ``max_age`` 0: log in on every run).

    >>> from datetime import timezone
    >>> login_decision(None, now=datetime.now(timezone.utc), max_age=3600)
    'capture'
    """
    if found is None:
        return "capture"
    created = found.created_at
    if max_age > 0 and created is not None and (now - created).total_seconds() < max_age:
        return "reuse"
    return "recapture"


def capture_failed(name: str, session: BrowserSessionResponse) -> SessionEndedError | None:
    """After a capture closed its session: an error at once when the session ``failed`` (its
    browser died: nothing was saved, so waiting for the save would only run out the deadline).

    >>> from skyvern_cdp.models import BrowserSessionResponse
    >>> ok = BrowserSessionResponse.model_validate({"browser_session_id": "pbs_1",
    ...     "organization_id": "o", "status": "completed", "created_at": "2026-01-01T00:00:00",
    ...     "modified_at": "2026-01-01T00:00:00"})
    >>> capture_failed("crm", ok) is None
    True
    """
    if session.status != "failed":
        return None
    return SessionEndedError(
        f"session {session.browser_session_id} failed before its browser state could be saved"
        f" (its browser stopped), so profile {name!r} was not made; capture it again",
        session=session,
    )
