"""The API's requests and answers, without I/O: what to send, and what an answer means.

>>> from skyvern_cdp.protocol import Request, session_path
>>> session_path("pbs_1")
'/v1/browser_sessions/pbs_1'

:func:`parse_session` and friends turn ``(status, headers, body)`` into a model or one of the
typed errors of :mod:`skyvern_cdp.errors`; the async and sync clients only move bytes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic

from skyvern_cdp.config import redact_text
from skyvern_cdp.errors import (
    APIError,
    AuthenticationError,
    ProfileExistsError,
    ProfileNotFoundError,
    ProfileSourceError,
    ProfileUploadPendingError,
    RequestRejectedError,
    SessionNotFoundError,
)
from skyvern_cdp.models import (
    BrowserProfile,
    BrowserSessionResponse,
    CloseBrowserSessionResponse,
    HTTPValidationError,
    ValidationError,
)
from skyvern_cdp.policy import parse_retry_after
from skyvern_cdp.policy.profiles import classify_profile_400

__all__ = [
    "PROFILES_PATH",
    "USER_AGENT",
    "Request",
    "error_for_status",
    "parse_body",
    "parse_close",
    "parse_profile",
    "parse_profile_list",
    "parse_session",
    "parse_session_list",
    "session_path",
]

USER_AGENT = "skyvern-cdp/0.1"
_BODY_SNIPPET = 300


def session_path(session_id: str, action: str | None = None) -> str:
    """The path of one session (ids are validated before they get here)."""
    path = f"/v1/browser_sessions/{session_id}"
    return f"{path}/{action}" if action else path


PROFILES_PATH = "/v1/browser_profiles"


@dataclass(frozen=True)
class Request:
    """One API call: method, path, JSON body, and whether a retry could repeat its effect.

    ``session_id`` / ``profile_id`` name what a 404 is about; ``params`` is the query;
    ``retry`` (when set) decides which failures are worth another try instead of the
    default rule for ``idempotent``.
    """

    method: str
    path: str
    json: Any = None
    idempotent: bool = True
    session_id: str | None = field(default=None)
    profile_id: str | None = None
    params: Any = None
    retry: Callable[[BaseException], bool] | None = None


def parse_body(content: bytes) -> Any:
    """The decoded JSON body, the text when it is not JSON, or ``None`` when empty."""
    if not content:
        return None
    text = content.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _detail_text(body: Any) -> str:
    if isinstance(body, dict):
        for key in ("detail", "error", "message"):
            if key in body:
                value = body[key]
                return value if isinstance(value, str) else json.dumps(value)[:_BODY_SNIPPET]
    if isinstance(body, str):
        return body[:_BODY_SNIPPET]
    return "" if body is None else json.dumps(body)[:_BODY_SNIPPET]


def error_for_status(
    status: int,
    headers: Mapping[str, str],
    content: bytes,
    request: Request,
    secrets: tuple[str, ...] = (),
) -> APIError | None:
    """The typed error for a failed answer, or ``None`` for a 2xx."""
    if 200 <= status < 300:
        return None
    body = parse_body(content)
    detail = redact_text(_detail_text(body), secrets)
    what = f"{request.method} {request.path}"
    error: APIError
    if status in (401, 403):
        error = AuthenticationError(
            f"{what} was refused ({status}: {detail or 'no detail'}); check the API key"
            " (api_key= or SKYVERN_API_KEY) and that it belongs to this server",
            status_code=status,
            body=body,
        )
    elif request.path.startswith(PROFILES_PATH) and status in (400, 409):
        error = _profile_error(status, body, detail, what)
    elif status == 404 and request.profile_id is not None and request.session_id is None:
        error = ProfileNotFoundError(
            f"browser profile {request.profile_id} was not found ({what} → 404"
            f"{': ' + detail if detail else ''}); check the id (skyvern-cdp profile list), and"
            " that the API key's organization owns it",
            status_code=status,
            body=body,
        )
    elif status == 404:
        sid = request.session_id or "the session"
        error = SessionNotFoundError(
            f"{sid} was not found ({what} → 404{': ' + detail if detail else ''}); check the"
            " id, and that the API key's organization owns it",
            status_code=status,
            body=body,
        )
    elif status == 422:
        try:
            issues: list[ValidationError] = HTTPValidationError.model_validate(body).detail
        except pydantic.ValidationError:
            issues = []
        summary = (
            "; ".join(f"{'.'.join(str(p) for p in issue.loc)}: {issue.msg}" for issue in issues)
            or detail
        )
        error = RequestRejectedError(
            f"{what} was rejected (422): {redact_text(summary, secrets)}",
            status_code=status,
            body=body,
            detail=issues,
        )
    else:
        hint = (
            "; the server is busy or failing, try again later"
            if status in (429, 500, 502, 503, 504)
            else ""
        )
        error = APIError(
            f"{what} failed with HTTP {status}{': ' + detail if detail else ''}{hint}",
            status_code=status,
            body=body,
        )
    error.retry_after = parse_retry_after(headers.get("retry-after"))
    return error


def _profile_error(status: int, body: Any, detail: str, what: str) -> APIError:
    if status == 409:
        return ProfileExistsError(
            f"{what} → 409: {detail or 'a profile of that name exists'}; choose another"
            " name, delete the old one (skyvern-cdp profile delete), or pass replace=True"
            " when capturing",
            status_code=status,
            body=body,
        )
    reason = classify_profile_400(detail)
    kind = ProfileUploadPendingError if reason == "upload_pending" else ProfileSourceError
    return kind(
        f"{what} → 400: {detail or 'bad request'}", status_code=status, body=body, reason=reason
    )


def unreachable(
    request: Request,
    base_url: str,
    exc: BaseException,
    secrets: tuple[str, ...] = (),
    *,
    never_answered: bool = False,
    tried_for: float | None = None,
) -> APIError:
    """The typed error for a transport failure that outlasted its retries.

    ``never_answered``: the server has not answered once in this process, so the base URL
    itself is the likely mistake (:class:`~skyvern_cdp.errors.APIUnreachableError`).
    """
    from skyvern_cdp.errors import APIConnectionError, APITimeoutError, APIUnreachableError

    detail = redact_text(str(exc) or type(exc).__name__, secrets)[:200]
    shown = redact_text(base_url, secrets)
    if never_answered:
        during = f" in {tried_for:.1f}s" if tried_for is not None else ""
        return APIUnreachableError(
            f"{request.method} {request.path}: nothing answered at {shown}{during}"
            f" ({type(exc).__name__}: {detail}); check the base URL (base_url= or"
            " SKYVERN_BASE_URL: scheme, host and port) and that the server is running",
        )
    kind = (
        APITimeoutError
        if isinstance(exc, TimeoutError) or "Timeout" in type(exc).__name__
        else (APIConnectionError)
    )
    what = "did not answer in time" if kind is APITimeoutError else "could not be reached"
    return kind(
        f"{request.method} {request.path}: {shown} {what} ({type(exc).__name__}: {detail});"
        " check the base URL (base_url= or SKYVERN_BASE_URL) and the network",
    )


def _malformed(request: Request, status: int, body: Any, problem: str) -> APIError:
    return APIError(
        f"{request.method} {request.path} answered {status} with {problem}; is the base URL a"
        " Skyvern API?",
        status_code=status,
        body=body,
    )


def parse_session(status: int, content: bytes, request: Request) -> BrowserSessionResponse:
    """A 2xx answer as a :class:`BrowserSessionResponse`, or :class:`APIError` if it is not one."""
    body = parse_body(content)
    if not isinstance(body, dict):
        raise _malformed(request, status, body, "a body that is not a JSON object")
    try:
        return BrowserSessionResponse.model_validate(body)
    except pydantic.ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        raise _malformed(request, status, body, f"an invalid session ({fields})") from None


def parse_session_list(
    status: int, content: bytes, request: Request
) -> list[BrowserSessionResponse]:
    body = parse_body(content)
    if not isinstance(body, list):
        raise _malformed(request, status, body, "a body that is not a JSON list")
    return [parse_session(status, json.dumps(item).encode(), request) for item in body]


def parse_close(status: int, content: bytes, request: Request) -> CloseBrowserSessionResponse:
    body = parse_body(content)
    if isinstance(body, dict):
        try:
            return CloseBrowserSessionResponse.model_validate(body)
        except pydantic.ValidationError:
            pass
    return CloseBrowserSessionResponse()


def parse_profile(status: int, content: bytes, request: Request) -> BrowserProfile:
    """A 2xx answer as a :class:`BrowserProfile`, or :class:`APIError` if it is not one."""
    body = parse_body(content)
    if not isinstance(body, dict):
        raise _malformed(request, status, body, "a body that is not a JSON object")
    try:
        return BrowserProfile.model_validate(body)
    except pydantic.ValidationError as exc:
        fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
        raise _malformed(request, status, body, f"an invalid browser profile ({fields})") from None


def parse_profile_list(status: int, content: bytes, request: Request) -> list[BrowserProfile]:
    body = parse_body(content)
    if not isinstance(body, list):
        raise _malformed(request, status, body, "a body that is not a JSON list")
    return [parse_profile(status, json.dumps(item).encode(), request) for item in body]
