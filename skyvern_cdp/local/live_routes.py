"""The routes of the live view: ``app_url``'s page, its facts, a screenshot, its websocket.

>>> from skyvern_cdp.local.live_routes import add_live_routes, app_url
>>> app_url("http://127.0.0.1:8000", "pbs_1", None)
'http://127.0.0.1:8000/sessions/pbs_1'
>>> app_url("http://127.0.0.1:8000", "pbs_1", "sk-local")  # doctest: +ELLIPSIS
'http://127.0.0.1:8000/sessions/pbs_1?token=...'
>>> is_view_page("/sessions/pbs_1"), is_view_page("/sessions/pbs_1/info")
(True, False)

===========================================  ==============================================
``GET  /sessions/{id}``                      the live view page (``app_url``)
``GET  /sessions/{id}/info``                 the session's facts (JSON, address redacted)
``GET  /sessions/{id}/screenshot``           a JPEG of its first page
``WS   /sessions/{id}/live``                 frames out, input and control in
===========================================  ==============================================

All of them sit behind the backend's web guard (a foreign ``Host`` or ``Origin``: 403, a
websocket closed before it is accepted) and, when the backend has a key, need it: in
``x-api-key`` or as the session's ``?token=`` (:mod:`.tokens`), which ``app_url`` carries
the way cloud live-view URLs carry one. The page passes its token on to the others. A
refused websocket is closed with 1008 before it is accepted.

The page is the backend's one frameable route (:func:`is_view_page`, which the guard is
given): its ``Content-Security-Policy: frame-ancestors`` lets pages of the viewer's own
machine and of the server's host frame it (a notebook cell), no other page
(:mod:`skyvern_cdp.policy.framing` has the decision and why). Its sub-requests come from
its own origin, framed or not, so nothing else changes.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import httpx
from fastapi import FastAPI, Request, WebSocket
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.websockets import WebSocketDisconnect

from skyvern_cdp.gateway.router import State
from skyvern_cdp.local.live import LiveViews
from skyvern_cdp.local.liveview import render_page
from skyvern_cdp.local.manager import NotRunningError, SessionManager
from skyvern_cdp.local.registry import is_session_id
from skyvern_cdp.local.tokens import TOKEN_PARAM, request_allowed, token_query
from skyvern_cdp.policy.framing import frame_ancestors

__all__ = ["add_live_routes", "app_url", "is_view_page"]

logger = logging.getLogger("skyvern_cdp.local.live_routes")

Info = Callable[[Request, str], Awaitable["dict[str, Any] | None"]]


def app_url(base: str, session_id: str, api_key: str | None) -> str:
    """A session's ``app_url``: its live view, with the session's token when there is a key."""
    url = f"{base}/sessions/{session_id}"
    return url + token_query(api_key, session_id)


def is_view_page(path: str) -> bool:
    """Whether ``path`` is a session's live view page, the route another page may frame."""
    head, sep, session_id = path.rpartition("/")
    return head == "/sessions" and bool(sep) and is_session_id(session_id)


def _not_found(session_id: str) -> JSONResponse:
    return JSONResponse({"detail": f"Browser session {session_id[:200]} not found"},
                        status_code=404)


async def browser_endpoint(port: int) -> str:
    """The browser websocket of the Chromium on ``port`` (its ``/json/version``)."""
    async with httpx.AsyncClient(trust_env=False, timeout=5.0) as http:
        answer = await http.get(f"http://127.0.0.1:{port}/json/version")
        answer.raise_for_status()
        return str(answer.json()["webSocketDebuggerUrl"])


def add_live_routes(
    app: FastAPI, *, api_key: str | None, info_of: Info, host_names: Sequence[str] = ()
) -> None:
    """Add the live view's routes to ``app`` (``state.manager`` and ``state.live`` set)."""

    def allowed(headers: Any, query: Any, session_id: str) -> bool:
        return request_allowed(api_key, session_id, header_key=headers.get("x-api-key"),
                               token=query.get(TOKEN_PARAM))

    def refused(request: Request, session_id: str) -> Response | None:
        if not is_session_id(session_id):
            return _not_found(session_id)
        if not allowed(request.headers, request.query_params, session_id):
            return JSONResponse({"detail": "Could not validate credentials"}, status_code=403)
        return None

    @app.get("/sessions/{browser_session_id}", include_in_schema=False)
    async def session_page(request: Request, browser_session_id: str) -> Response:
        # Every answer of the one frameable route says who may frame it, a refusal too:
        # a foreign page framing it without the token gets the browser's refusal, not ours.
        framing = frame_ancestors(request.headers.get("host"), host_names)
        answer = refused(request, browser_session_id)
        if answer is None:
            info = await info_of(request, browser_session_id)
            if info is None:
                answer = _not_found(browser_session_id)
            else:
                token = request.query_params.get(TOKEN_PARAM) if api_key else None
                answer = HTMLResponse(render_page(info, token), headers={
                    "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})
        answer.headers["Content-Security-Policy"] = framing
        return answer

    @app.get("/sessions/{browser_session_id}/info", include_in_schema=False)
    async def session_info(request: Request, browser_session_id: str) -> Response:
        refusal = refused(request, browser_session_id)
        if refusal is not None:
            return refusal
        info = await info_of(request, browser_session_id)
        if info is None:
            return _not_found(browser_session_id)
        return JSONResponse(info, headers={"Cache-Control": "no-store"})

    @app.get("/sessions/{browser_session_id}/screenshot", include_in_schema=False)
    async def session_screenshot(request: Request, browser_session_id: str) -> Response:
        refusal = refused(request, browser_session_id)
        if refusal is not None:
            return refusal
        manager: SessionManager = request.app.state.manager
        if manager.get(browser_session_id) is None:
            return _not_found(browser_session_id)
        try:
            data = await manager.screenshot(browser_session_id)
        except NotRunningError as exc:
            return JSONResponse({"detail": f"no live view: {exc}"}, status_code=409)
        except Exception as exc:
            logger.warning("screenshot of %s failed: %s", browser_session_id, exc)
            return JSONResponse({"detail": "the screenshot failed; retry"}, status_code=503,
                                headers={"Retry-After": "1"})
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @app.websocket("/sessions/{browser_session_id}/live")
    async def session_live(websocket: WebSocket, browser_session_id: str) -> None:
        sid = browser_session_id
        if not is_session_id(sid) or not allowed(websocket.headers, websocket.query_params, sid):
            await websocket.close(code=1008)
            return
        manager: SessionManager = websocket.app.state.manager
        live: LiveViews = websocket.app.state.live
        route = manager.route(sid)
        if route.state is State.UNKNOWN:
            await websocket.close(code=1008)
            return
        if route.state is not State.RUNNING or route.upstream is None:
            await websocket.accept()  # then a close code the page can read: 4410 ended
            await websocket.close(code=4410 if route.state is State.ENDED else 1013)
            return
        try:
            endpoint = await browser_endpoint(route.upstream.port)
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            logger.warning("live view of %s: the browser did not answer: %s", sid, exc)
            await websocket.close(code=1011)
            return
        await websocket.accept()
        try:
            await live.serve(websocket, sid, endpoint)
        except WebSocketDisconnect:
            pass
        except Exception as exc:  # Chromium went away, the session ended
            logger.debug("live view of %s ended: %s", sid, exc)
        finally:
            with contextlib.suppress(Exception):
                await websocket.close(code=4410 if manager.route(sid).state is State.ENDED
                                      else 1000)
