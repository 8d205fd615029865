"""The local backend's browser-profile routes, with Skyvern's statuses and bodies.

=========================================  ================================================
``POST   /v1/browser_profiles``             ``{"name", "description"?, "browser_session_id"?}``:
                                            200 profile; 409 name taken; 404 unknown session;
                                            400 not configured / reused profile gone / not
                                            saved yet (transient: the save follows the close)
``GET    /v1/browser_profiles``             ``page``, ``page_size``, ``search_key``,
                                            ``include_deleted``: newest first
``GET    /v1/browser_profiles/{id}``        200 profile; 404
``DELETE /v1/browser_profiles/{id}``        204 (the profile and its state are removed); 404
=========================================  ================================================

>>> add_profile_routes(app)  # doctest: +SKIP   (create_app does it)
"""

from __future__ import annotations

import asyncio
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from skyvern_cdp.local.profile_store import NameTakenError
from skyvern_cdp.local.profiles import NOT_CONFIGURED, PENDING, SessionProfiles, reused_unavailable
from skyvern_cdp.local.registry import is_session_id

if TYPE_CHECKING:
    from skyvern_cdp.local.manager import SessionManager

__all__ = ["add_profile_routes", "unknown_profile"]

_TAG: list[str | Enum] = ["Browser Profiles"]


class CreateBrowserProfileRequest(BaseModel):
    """Body of ``POST /v1/browser_profiles``."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=255)
    description: str | None = None
    browser_session_id: str | None = None
    workflow_run_id: str | None = None


def _profiles(request: Request) -> SessionProfiles:
    manager: SessionManager = request.app.state.manager
    profiles = manager.profiles
    if profiles is None:
        raise RuntimeError("this backend keeps no browser profiles")
    return profiles


def _not_found(profile_id: str) -> JSONResponse:
    shown = profile_id if len(profile_id) <= 200 else profile_id[:200] + "…"
    return JSONResponse({"detail": f"Browser profile {shown} not found"}, status_code=404)


def _bad(detail: str) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=400)


async def unknown_profile(manager: SessionManager, profile_id: str | None) -> Response | None:
    """The 404 of a session create that names a profile that does not exist, else ``None``."""
    if profile_id is None:
        return None
    profiles = manager.profiles
    found = await asyncio.to_thread(profiles.store.get, profile_id) if profiles else None
    return _not_found(profile_id) if found is None else None


def add_profile_routes(app: FastAPI) -> None:
    """Add the ``/v1/browser_profiles`` routes to the backend's app."""

    @app.post("/v1/browser_profiles", tags=_TAG, summary="Create a browser profile")
    async def create_browser_profile(
        request: Request, body: Annotated[CreateBrowserProfileRequest, Body()]
    ) -> Response:
        profiles = _profiles(request)
        manager: SessionManager = request.app.state.manager
        source: Any = None
        from_profile = None
        browser_type = None
        if body.workflow_run_id is not None and body.browser_session_id is None:
            return _bad("Workflow runs are not supported by the local backend")
        if body.browser_session_id is not None:
            sid = body.browser_session_id
            rec = manager.get(sid) if is_session_id(sid) else None
            if rec is None:
                shown = sid if len(sid) <= 200 else sid[:200] + "…"
                return JSONResponse(
                    {"detail": f"Browser session {shown} does not exist or is not live."},
                    status_code=404,
                )
            kind, source = profiles.source(rec)
            if kind == "pending":
                return _bad(PENDING)
            if kind == "not_configured":
                return _bad(NOT_CONFIGURED)
            if kind == "reused_unavailable":
                return _bad(reused_unavailable(str(rec.browser_profile_id)))
            if kind == "loaded":
                from_profile = rec.browser_profile_id
            browser_type = rec.browser_type or "chromium"
        try:
            made = await asyncio.to_thread(
                profiles.store.create,
                body.name,
                body.description,
                source=source,
                from_profile=from_profile,
                source_browser_type=browser_type,
            )
        except NameTakenError:
            return JSONResponse(
                {
                    "detail": f"A browser profile named '{body.name}' already exists. Use a"
                    " different name or delete the existing profile."
                },
                status_code=409,
            )
        except FileNotFoundError:
            return _bad(reused_unavailable(str(from_profile)))
        return JSONResponse(made)

    @app.get("/v1/browser_profiles", tags=_TAG, summary="List browser profiles")
    async def list_browser_profiles(
        request: Request,
        page: Annotated[int, Query(ge=1)] = 1,
        page_size: Annotated[int, Query(ge=1)] = 10,
        search_key: str | None = None,
        include_deleted: bool = False,
    ) -> Response:
        # A deleted profile is removed from disk, so include_deleted finds nothing more.
        store = _profiles(request).store
        items = await asyncio.to_thread(
            store.list, page=page, page_size=page_size, search_key=search_key
        )
        return JSONResponse(items)

    @app.get("/v1/browser_profiles/{profile_id}", tags=_TAG, summary="Get a browser profile")
    async def get_browser_profile(request: Request, profile_id: str) -> Response:
        found = await asyncio.to_thread(_profiles(request).store.get, profile_id)
        return JSONResponse(found) if found is not None else _not_found(profile_id)

    @app.delete(
        "/v1/browser_profiles/{profile_id}",
        tags=_TAG,
        summary="Delete a browser profile",
        status_code=204,
    )
    async def delete_browser_profile(request: Request, profile_id: str) -> Response:
        deleted = await asyncio.to_thread(_profiles(request).store.delete, profile_id)
        return Response(status_code=204) if deleted else _not_found(profile_id)
