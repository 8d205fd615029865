"""The local backend's recordings over HTTP: their ``FileInfo`` and the route that serves them.

>>> from skyvern_cdp.local.recording_routes import add_recording_routes
>>> add_recording_routes(app, api_key="sk-local")  # doctest: +SKIP

``GET /sessions/{id}/recordings/{filename}`` serves a session's video under the API's rules:
the backend's web guard (:mod:`.guard`: no foreign ``Host``, no cross-site request) as for
every route, and, when the backend has a key, ``x-api-key`` or the session's ``?token=``
(:mod:`.tokens`), which the ``url`` of each listed recording carries so that a person can
open it in a browser.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse

from skyvern_cdp.local.registry import is_session_id
from skyvern_cdp.local.tokens import TOKEN_PARAM, request_allowed, token_query

__all__ = ["add_recording_routes", "recording_files"]


async def recording_files(
    request: Request, session_id: str, api_key: str | None
) -> list[dict[str, Any]]:
    """The session's ``recordings`` (``FileInfo`` dicts) with URLs on the host it was asked on."""
    recordings = request.app.state.manager.recordings
    if recordings is None:
        return []
    prefix = f"{str(request.base_url).rstrip('/')}/sessions/{session_id}/recordings"
    query = token_query(api_key, session_id)
    files: list[dict[str, Any]] = await asyncio.to_thread(
        recordings.files, session_id, prefix, query
    )
    return files


def add_recording_routes(app: FastAPI, *, api_key: str | None) -> None:
    """Add the route that serves recordings to ``app`` (whose ``state.manager`` is set)."""

    @app.get("/sessions/{browser_session_id}/recordings/{filename}", include_in_schema=False)
    async def session_recording(
        request: Request, browser_session_id: str, filename: str
    ) -> Response:
        if not is_session_id(browser_session_id):
            return JSONResponse({"detail": "File not found"}, status_code=404)
        if not request_allowed(
            api_key,
            browser_session_id,
            header_key=request.headers.get("x-api-key"),
            token=request.query_params.get(TOKEN_PARAM),
        ):
            return JSONResponse({"detail": "Could not validate credentials"}, status_code=403)
        recordings = request.app.state.manager.recordings
        path = recordings.path(browser_session_id, filename) if recordings is not None else None
        if path is None:
            return JSONResponse({"detail": "File not found"}, status_code=404)
        media = "video/mp4" if filename.endswith(".mp4") else "video/webm"
        headers = {"Cache-Control": "no-store"}
        if recordings.is_final(browser_session_id):
            return FileResponse(path, media_type=media, headers=headers)
        # Still growing: what is written now, with its length (a FileResponse would send
        # more than the length it declared).
        try:
            size = path.stat().st_size
        except OSError:  # a recording without a frame is removed at the session's end
            return JSONResponse({"detail": "File not found"}, status_code=404)
        headers["Content-Length"] = str(size)
        return StreamingResponse(_read(path, size), media_type=media, headers=headers)


async def _read(path: Path, size: int) -> AsyncIterator[bytes]:
    """The first ``size`` bytes of ``path``, in blocks read in a thread."""
    handle = await asyncio.to_thread(path.open, "rb")
    try:
        left = size
        while left > 0:
            block = await asyncio.to_thread(handle.read, min(left, 1 << 20))
            if not block:
                return
            left -= len(block)
            yield block
    finally:
        handle.close()
