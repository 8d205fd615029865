"""The local backend's HTTP API: Skyvern's browser-session routes under ``/v1``, and a live view.

>>> from skyvern_cdp.local.app import create_app
>>> app = create_app(api_key="sk-local")  # doctest: +SKIP
>>> app.state.manager = manager           # a SessionManager running on the server's loop

Routes (shapes from ``../shared/spec``; ``x-api-key`` is required when the server has a key):

=====================================  ===================================================
``POST /v1/browser_sessions``           create; answers ``created`` at once (429 past the cap)
``GET  /v1/browser_sessions``           the live sessions
``GET  /v1/browser_sessions/{id}``      one session (404 for an unknown or malformed id)
``POST /v1/browser_sessions/{id}/close``   stop it; 200 every time
``POST /v1/browser_sessions/{id}/extend``  ``{"additional_minutes": N}``
``/v1/browser_profiles[/{id}]``          profiles: see :mod:`.profile_routes`
``/sessions/{id}[/info|/screenshot|/live]``  the live view: see :mod:`.live_routes`
``GET  /sessions/{id}/files/{name}``    a downloaded file
``GET  /sessions/{id}/recordings/{name}``  the session's video (:mod:`.recording_routes`)
=====================================  ===================================================

When the server has a key, a person's browser opens the live view and the recordings with
the session's ``?token=``, which ``app_url`` and the recordings' URLs carry. No route
answers a web page of another origin, or a request whose ``Host`` is not an IP literal or
``localhost`` (DNS rebinding): see :mod:`skyvern_cdp.policy.web`; only the live view page
may be framed by another page (a notebook's), see :mod:`skyvern_cdp.policy.framing`. A
create's ``url`` is ``http:``, ``https:``, ``data:`` or ``about:blank`` (422 for ``file:``,
``chrome:`` ...).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from fastapi import Body, FastAPI, Header, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from skyvern_cdp.config import has_control_character, redact_address
from skyvern_cdp.gateway.router import reachable_address
from skyvern_cdp.local.downloads import safe_child
from skyvern_cdp.local.guard import guard
from skyvern_cdp.local.live import LiveViews
from skyvern_cdp.local.live_routes import add_live_routes, app_url, is_view_page
from skyvern_cdp.local.manager import SessionManager
from skyvern_cdp.local.profile_routes import add_profile_routes, unknown_profile
from skyvern_cdp.local.recording_routes import add_recording_routes, recording_files
from skyvern_cdp.local.registry import (
    CapacityError,
    SessionRecord,
    grant_timeout,
    is_session_id,
)
from skyvern_cdp.local.tokens import TOKEN_PARAM, request_allowed, token_query
from skyvern_cdp.models import Extensions, PersistentBrowserType
from skyvern_cdp.policy.web import create_url_refusal

__all__ = ["RETRY_AFTER_SECONDS", "create_app", "spec_document"]

logger = logging.getLogger("skyvern_cdp.local.app")

#: What a 429 tells the client to wait before creating again.
RETRY_AFTER_SECONDS = 2

_SESSION_PATH = "/v1/browser_sessions/{browser_session_id}"
#: Component schemas taken verbatim from the spec document.
_SPEC_SCHEMAS = (
    "BrowserSessionResponse",
    "FileInfo",
    "Extensions",
    "PersistentBrowserType",
    "HTTPValidationError",
    "ValidationError",
)


@cache
def spec_document() -> dict[str, Any]:
    """Skyvern's OpenAPI description of the GET route (``../shared/spec``), shipped as JSON."""
    data: dict[str, Any] = json.loads(
        Path(__file__).with_name("skyvern_openapi.json").read_text(encoding="utf-8")
    )
    return data


class CreateBrowserSessionRequest(BaseModel):
    """Body of ``POST /v1/browser_sessions``; every field is optional, unknown ones ignored."""

    model_config = ConfigDict(extra="ignore")

    url: str | None = Field(default=None, description="The page the browser opens first")
    timeout: int | None = Field(
        default=60,
        ge=5,
        description="Lifetime in minutes after the session starts; above 240 it is capped",
    )
    proxy_location: Any = Field(default=None, description="Accepted and ignored locally")
    proxy_session_id: str | None = Field(default=None, description="Accepted and ignored")
    extensions: list[Extensions] | None = None
    browser_type: PersistentBrowserType | None = None
    browser_profile_id: str | None = Field(default=None, pattern=r"^bp_")
    generate_browser_profile: bool | None = False
    needs_live_view: bool | None = False

    @field_validator("url")
    @classmethod
    def _normalize_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value:
            return None
        if has_control_character(value):
            raise ValueError("url must not contain control characters")
        scheme, sep, _ = value.partition(":")
        if not (sep and scheme[:1].isalpha() and scheme.replace("+", "").replace("-", "").replace(
            ".", ""
        ).isalnum()):
            value = "https://" + value  # as Skyvern does for a bare host
        refusal = create_url_refusal(value)
        if refusal is not None:
            raise ValueError(refusal)
        return value


class ExtendBrowserSessionRequest(BaseModel):
    """Body of ``POST /v1/browser_sessions/{id}/extend``."""

    additional_minutes: int = Field(ge=1, description="Minutes to add (360 in total at most)")


#: The ``x-api-key`` header, declared on every ``/v1`` route so the OpenAPI document shows it
#: (the check itself is :func:`skyvern_cdp.local.guard.guard`'s, before body validation).
ApiKeyHeader = Annotated[
    str | None,
    Header(
        alias="x-api-key",
        description="Skyvern API key; required when the server was started with one",
    ),
]


def _not_found(session_id: str) -> JSONResponse:
    shown = session_id if len(session_id) <= 200 else session_id[:200] + "…"
    return JSONResponse({"detail": f"Browser session {shown} not found"}, status_code=404)


_FORBIDDEN: dict[int | str, dict[str, Any]] = {
    403: {"description": "Unauthorized - Invalid or missing authentication"}
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "Browser session not found"}}


def _session_schema_response(description: str) -> dict[int | str, dict[str, Any]]:
    ref = {"$ref": "#/components/schemas/BrowserSessionResponse"}
    return {
        200: {"description": description, "content": {"application/json": {"schema": ref}}},
        **_FORBIDDEN,
    }


def create_app(*, api_key: str | None = None, host_names: Sequence[str] = ()) -> FastAPI:
    """The ASGI app. Set ``app.state.manager`` to a running :class:`SessionManager`.

    Every route is behind :class:`~skyvern_cdp.local.guard.WebGuardMiddleware` (a foreign
    ``Host`` or ``Origin`` gets 403); ``host_names`` are host names, besides IP literals and
    ``localhost``, that clients may use to reach the server.
    """
    app = FastAPI(
        title="Skyvern API (skyvern-cdp local backend)",
        description="Skyvern's browser-session API over local Chromium processes.",
        version="1.0.0",
    )
    guard(app, api_key=api_key, host_names=host_names, frameable=is_view_page)
    app.state.live = LiveViews()

    def manager_of(request: Request) -> SessionManager:
        manager: SessionManager = request.app.state.manager
        return manager

    def base_of(request: Request) -> str:
        return str(request.base_url).rstrip("/")

    async def wire(request: Request, rec: SessionRecord) -> dict[str, Any]:
        base = base_of(request)
        sid = rec.browser_session_id
        files = await asyncio.to_thread(
            manager_of(request).downloaded_files, rec, f"{base}/sessions/{sid}/files",
            token_query(api_key, sid),
        )
        data = rec.to_wire(app_url=app_url(base, sid, api_key), downloaded_files=files)
        data["recordings"] = await recording_files(request, sid, api_key)
        # The CDP router's address, with the host this client reached us on if we listen on all.
        data["browser_address"] = reachable_address(data["browser_address"], request.url.hostname)
        # As a self-hosted Skyvern sends it; real seconds (scaled by minute_seconds).
        manager = manager_of(request)
        data["remaining_lifetime_seconds"] = rec.remaining_seconds(
            time.monotonic(), manager.minute_seconds
        )
        return data

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("unexpected error serving %s %s", request.method, request.url.path)
        return JSONResponse({"error": f"Unexpected error: {type(exc).__name__}"}, status_code=500)

    @app.post(
        "/v1/browser_sessions",
        tags=["Browser Sessions"],
        summary="Create a session",
        response_model=None,
        responses={
            **_session_schema_response("The session, created (it runs shortly after)"),
            429: {"description": "Too many live sessions; retry after Retry-After seconds"},
        },
    )
    async def create_browser_session(
        request: Request,
        x_api_key: ApiKeyHeader = None,
        body: Annotated[CreateBrowserSessionRequest | None, Body()] = None,
    ) -> Response:
        body = body or CreateBrowserSessionRequest()
        manager = manager_of(request)
        given = body.extensions
        extensions = [str(e.value) for e in given] if given is not None else None
        _, warning = grant_timeout(body.timeout)
        missing = await unknown_profile(manager, body.browser_profile_id)
        if missing is not None:
            return missing
        try:
            rec = manager.create(
                timeout=body.timeout,
                url=body.url,
                extensions=extensions,
                browser_type=body.browser_type.value if body.browser_type is not None else None,
                browser_profile_id=body.browser_profile_id,
                generate_browser_profile=bool(body.generate_browser_profile),
            )
        except CapacityError as exc:
            return JSONResponse(
                {"detail": str(exc)},
                status_code=429,
                headers={"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        except RuntimeError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503)
        data = await wire(request, rec)
        data["warning"] = warning
        return JSONResponse(data)

    @app.get(
        "/v1/browser_sessions",
        tags=["Browser Sessions"],
        summary="List the live sessions",
        response_model=None,
        responses={
            200: {
                "description": "The organization's live sessions",
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "array",
                            "items": {"$ref": "#/components/schemas/BrowserSessionResponse"},
                        }
                    }
                },
            },
            **_FORBIDDEN,
        },
    )
    async def get_browser_sessions(request: Request, x_api_key: ApiKeyHeader = None) -> Response:
        live = manager_of(request).registry.live()
        return JSONResponse([await wire(request, rec) for rec in live])

    @app.get(
        _SESSION_PATH,
        tags=["Browser Sessions"],
        summary="Get a session",
        response_model=None,
        responses={
            **_session_schema_response("Successfully retrieved browser session details"),
            403: {"description": "Unauthorized - Invalid or missing authentication"},
            404: {"description": "Browser session not found"},
        },
    )
    async def get_browser_session(
        request: Request, browser_session_id: str, x_api_key: ApiKeyHeader = None
    ) -> Response:
        rec = manager_of(request).get(browser_session_id) if is_session_id(
            browser_session_id
        ) else None
        if rec is None:
            return _not_found(browser_session_id)
        rec.get_count += 1
        return JSONResponse(await wire(request, rec))

    @app.post(
        _SESSION_PATH + "/close",
        tags=["Browser Sessions"],
        summary="Close a session",
        response_model=None,
        responses={
            200: {"description": '{"message": "Browser session closed"}'},
            **_FORBIDDEN,
            **_NOT_FOUND,
        },
    )
    async def close_browser_session(
        request: Request, browser_session_id: str, x_api_key: ApiKeyHeader = None
    ) -> Response:
        manager = manager_of(request)
        if not is_session_id(browser_session_id) or manager.get(browser_session_id) is None:
            return _not_found(browser_session_id)
        await manager.close(browser_session_id)
        return JSONResponse({"message": "Browser session closed"})

    @app.post(
        _SESSION_PATH + "/extend",
        tags=["Browser Sessions"],
        summary="Extend a session's lifetime",
        response_model=None,
        responses={
            **_session_schema_response("The session with its new timeout"),
            **_NOT_FOUND,
            409: {"description": "The session has ended"},
        },
    )
    async def extend_browser_session(
        request: Request,
        browser_session_id: str,
        body: ExtendBrowserSessionRequest,
        x_api_key: ApiKeyHeader = None,
    ) -> Response:
        manager = manager_of(request)
        rec = manager.get(browser_session_id) if is_session_id(browser_session_id) else None
        if rec is None:
            return _not_found(browser_session_id)
        if not rec.is_live:
            return JSONResponse(
                {
                    "detail": f"Browser session {browser_session_id} is {rec.status}; only a"
                    " live session can be extended"
                },
                status_code=409,
            )
        warning = manager.extend(browser_session_id, body.additional_minutes)
        data = await wire(request, rec)
        data["warning"] = warning
        return JSONResponse(data)

    add_profile_routes(app)

    # ---- pages for people: live view and downloaded files ----------------------------

    async def info_of(request: Request, session_id: str) -> dict[str, Any] | None:
        rec = manager_of(request).get(session_id) if is_session_id(session_id) else None
        if rec is None:
            return None
        data = await wire(request, rec)
        address = data["browser_address"]
        data["browser_address"] = redact_address(address) if address else None
        return data

    add_live_routes(app, api_key=api_key, info_of=info_of, host_names=host_names)

    @app.get("/sessions/{browser_session_id}/files/{filename}", include_in_schema=False)
    async def session_file(request: Request, browser_session_id: str, filename: str) -> Response:
        if is_session_id(browser_session_id) and not request_allowed(
            api_key,
            browser_session_id,
            header_key=request.headers.get("x-api-key"),
            token=request.query_params.get(TOKEN_PARAM),
        ):
            return JSONResponse({"detail": "Could not validate credentials"}, status_code=403)
        rec = manager_of(request).get(browser_session_id) if is_session_id(
            browser_session_id
        ) else None
        path = safe_child(rec.download_dir, filename) if rec and rec.download_dir else None
        if path is None:
            return JSONResponse({"detail": "File not found"}, status_code=404)
        return FileResponse(path, filename=filename)

    add_recording_routes(app, api_key=api_key)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            spec = spec_document()
            doc["servers"] = spec.get("servers", [])
            doc["paths"][_SESSION_PATH]["get"] = json.loads(
                json.dumps(spec["paths"][_SESSION_PATH]["get"])
            )
            schemas = doc.setdefault("components", {}).setdefault("schemas", {})
            for name in _SPEC_SCHEMAS:
                schemas[name] = json.loads(json.dumps(spec["components"]["schemas"][name]))
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
