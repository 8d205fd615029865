"""Drive a live browser across notebook cells (Jupyter, or IPython's top-level ``await``).

>>> from skyvern_cdp import notebook
>>> browser = await notebook.attach("pbs_123")  # doctest: +SKIP
>>> view = notebook.show()  # the page, live in the cell's output  # doctest: +SKIP
>>> await notebook.close()  # doctest: +SKIP

- :func:`attach` connects like :func:`skyvern_cdp.async_api.connect`, but re-running the
  cell returns the *same* live ``Browser`` (no second CDP connection, no second driver, no
  request to the API). After the session ends, the next call attaches afresh.
- :func:`launch` creates a session like :func:`skyvern_cdp.async_api.launch`; the session is
  closed by :func:`close`, or when the kernel exits.
- :func:`close` disconnects one Browser (or session id), or all of them. At interpreter
  exit, whatever is still open is closed too: Browsers are disconnected, the Playwright
  driver is stopped, and sessions made by :func:`launch` are ended on the server.
- :func:`show` puts the page in the cell's output as one image updated in place (see
  :mod:`skyvern_cdp.notebook_view`); ``show(interactive=True)`` frames the session's live
  view instead, to take control from the cell (:mod:`skyvern_cdp.notebook_embed`).
- ``keep_alive=True`` (or a :class:`~skyvern_cdp.lifetime.KeepAlive`) on :func:`attach` /
  :func:`launch` extends the session while the Browser is connected (off by default: an
  extended session costs money). Without it, a one-line notice says when the session has
  less than 5 minutes left.

The sync API cannot run in a notebook (its cells run inside an asyncio loop): it raises
:class:`~skyvern_cdp.SyncAPIInAsyncLoopError`. Use ``await`` and these helpers there.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any

from playwright.async_api import Browser

from skyvern_cdp import async_api
from skyvern_cdp._wait_within import wait_within
from skyvern_cdp.client import AsyncSkyvernClient, SkyvernClient
from skyvern_cdp.config import Settings, resolve_settings
from skyvern_cdp.errors import InvalidArgumentTypeError
from skyvern_cdp.keeper import AsyncKeeper
from skyvern_cdp.lifetime import NOTICE_MARGIN, KeepAlive, keep_alive_policy
from skyvern_cdp.notebook_embed import InteractiveView
from skyvern_cdp.notebook_view import LiveView, notice, show
from skyvern_cdp.policy import validate_session_id

__all__ = [
    "AT_EXIT_TIMEOUT",
    "InteractiveView",
    "LiveView",
    "attach",
    "close",
    "keeper_of",
    "launch",
    "live_browsers",
    "live_sessions",
    "show",
]

logger = logging.getLogger("skyvern_cdp.notebook")

#: How long the exit-time clean-up may take in all, in seconds.
AT_EXIT_TIMEOUT = 15.0


@dataclass
class _Entry:
    browser: Browser
    session_id: str
    base_url: str
    settings: Settings
    launched: bool
    loop: asyncio.AbstractEventLoop
    keep_alive: KeepAlive | None = None
    keeper: AsyncKeeper | None = None


#: Live Browsers by (base URL, session id), in the order they were made.
_live: dict[tuple[str, str], _Entry] = {}
#: Attaches in flight, so that two concurrent calls for one session share one connection.
_pending: dict[tuple[str, str], asyncio.Future[Browser]] = {}
_exit_hook_registered = False


def _settings_for(kwargs: dict[str, Any]) -> Settings:
    """Where the session lives and which key opens it, as ``connect``/``launch`` will see it."""
    client = kwargs.get("client")
    if client is not None:
        if not isinstance(client, AsyncSkyvernClient):
            raise InvalidArgumentTypeError("client must be an AsyncSkyvernClient")
        return client.settings
    return resolve_settings(
        api_key=kwargs.get("api_key"),
        base_url=kwargs.get("base_url"),
        trusted_hosts=kwargs.get("trusted_hosts"),
        allow_insecure_http=kwargs.get("allow_insecure_http", False),
    )


def _register_exit_hook() -> None:
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_close_at_exit)
        _exit_hook_registered = True


def _remember(
    browser: Browser, settings: Settings, launched: bool, keep_alive: KeepAlive | None
) -> _Entry:
    entry = _Entry(
        browser=browser,
        session_id=async_api.session_of(browser).browser_session_id,
        base_url=settings.base_url,
        settings=settings,
        launched=launched,
        loop=asyncio.get_running_loop(),
    )
    _live[(entry.base_url, entry.session_id)] = entry
    _register_exit_hook()
    _keep(entry, keep_alive)
    return entry


def _keep(entry: _Entry, keep_alive: KeepAlive | None, *, just_attached: bool = True) -> None:
    """Start the entry's keeper: extending with ``keep_alive``, else only watching the end.

    Just after an attach, the session it saw saves the keeper's first request; later (a re-run
    that changed ``keep_alive``) that answer is stale, and the keeper looks first.
    """
    if entry.keeper is not None:
        if entry.keep_alive == keep_alive and entry.keeper.running:
            return
        entry.keeper.cancel("keep_alive changed")
    entry.keep_alive = keep_alive
    sid = entry.session_id
    seen = async_api.session_of(entry.browser) if just_attached else None
    if keep_alive is not None:
        entry.keeper = AsyncKeeper.for_browser(
            entry.browser, entry.settings, sid, keep_alive, first=seen
        )
        return

    def low(remaining: float) -> None:
        notice(
            f"skyvern_cdp: session {sid} has less than {NOTICE_MARGIN / 60:.0f} minutes left"
            f" ({remaining / 60:.1f} min); attach with keep_alive=True to extend it"
        )

    watch = KeepAlive(margin=NOTICE_MARGIN)
    entry.keeper = AsyncKeeper.for_browser(
        entry.browser, entry.settings, sid, watch, extend=False, on_notice=low, first=seen
    )


async def attach(
    session_id: str, *, keep_alive: bool | KeepAlive = False, **connect_kwargs: Any
) -> Browser:
    """The live Browser attached to ``session_id``, attaching first if there is none.

    >>> browser = await attach("pbs_123", timeout=120, keep_alive=True)  # doctest: +SKIP

    Takes the arguments of :func:`skyvern_cdp.async_api.connect`; they are used only when a
    new connection is made. Re-running the cell returns the same Browser while it is
    connected to the same session on the same server (with ``keep_alive`` as asked last).
    ``keep_alive=True`` extends the session while the Browser is connected.
    """
    sid = validate_session_id(session_id)
    policy = keep_alive_policy(keep_alive)
    settings = _settings_for(connect_kwargs)
    key = (settings.base_url, sid)
    loop = asyncio.get_running_loop()
    entry = _live.get(key)
    if entry is not None:
        if entry.loop is loop and entry.browser.is_connected():
            logger.info("reusing the live connection to %s", sid)
            _keep(entry, policy, just_attached=False)
            return entry.browser
        await _close_entry(entry)  # it disconnected (or its loop is gone): release it
    pending = _pending.get(key)
    if pending is not None and pending.get_loop() is loop:
        return await asyncio.shield(pending)
    connecting = asyncio.ensure_future(async_api.connect(sid, **connect_kwargs))
    _pending[key] = connecting
    try:
        browser = await connecting  # an interrupted cell cancels it: connect cleans up
    finally:
        if _pending.get(key) is connecting:
            del _pending[key]
    _remember(browser, settings, launched=False, keep_alive=policy)
    return browser


async def launch(*, keep_alive: bool | KeepAlive = False, **launch_kwargs: Any) -> Browser:
    """Create a session, attach, and keep both until :func:`close` or the kernel exits.

    >>> browser = await launch(session_timeout_minutes=15, keep_alive=True)  # doctest: +SKIP

    Takes the arguments of :func:`skyvern_cdp.async_api.launch`. Each call makes a new
    session: re-running the cell makes another one (every one is closed at exit).
    ``keep_alive=True`` extends the session while the Browser is connected.
    """
    policy = keep_alive_policy(keep_alive)
    settings = _settings_for(launch_kwargs)
    browser = await async_api.launch(**launch_kwargs)
    _remember(browser, settings, launched=True, keep_alive=policy)
    return browser


def live_sessions() -> list[str]:
    """The ids of the sessions with a Browser open through this module, oldest first."""
    return [entry.session_id for entry in _live.values()]


def live_browsers() -> list[Browser]:
    """The Browsers open through this module, oldest first (:func:`show` takes the last)."""
    return [entry.browser for entry in _live.values()]


def keeper_of(target: Browser | str) -> AsyncKeeper | None:
    """The keeper (extending, or only watching the end) of a Browser or session id."""
    for entry in _live.values():
        if entry.browser is target or entry.session_id == target:
            return entry.keeper
    return None


async def close(target: Browser | str | None = None) -> None:
    """Disconnect ``target`` (a Browser or a session id), or everything when ``None``.

    >>> await close()  # doctest: +SKIP

    A session made by :func:`launch` is also ended on the server; an attached one keeps
    running. Closing twice is harmless.
    """
    if target is None:
        entries = list(_live.values())
    elif isinstance(target, str):
        sid = validate_session_id(target)
        entries = [entry for entry in _live.values() if entry.session_id == sid]
    elif isinstance(target, Browser):
        entries = [entry for entry in _live.values() if entry.browser is target]
        if not entries:
            await target.close()
    else:
        raise InvalidArgumentTypeError(
            f"close() takes a Browser, a session id or nothing, not {type(target).__name__}"
        )
    for entry in entries:
        await _close_entry(entry)


async def _close_entry(entry: _Entry) -> None:
    key = (entry.base_url, entry.session_id)
    if _live.get(key) is entry:
        del _live[key]
    if entry.loop is asyncio.get_running_loop():
        if entry.keeper is not None:
            await entry.keeper.stop("closed")
        await entry.browser.close()


def _close_at_exit() -> None:
    """The safety net: disconnect what is still open, and end the sessions we launched."""
    if not _live:
        return
    entries = list(_live.values())
    logger.info("closing %d notebook session(s) at exit", len(entries))
    groups: dict[int, list[_Entry]] = {}
    for entry in entries:
        groups.setdefault(id(entry.loop), []).append(entry)
    unclosed: list[_Entry] = []  # not closed through their loop: ended over plain HTTP below
    for group in groups.values():
        loop = group[0].loop
        if loop.is_closed() or loop.is_running():
            unclosed += group
            continue
        try:
            _run_to_the_end(loop, wait_within(_close_all(group), AT_EXIT_TIMEOUT))
        except BaseException as exc:  # never let the clean-up break the exit
            logger.warning("closing the notebook's browsers at exit: %s: %s",
                           type(exc).__name__, exc)
            unclosed += group
    for entry in unclosed:
        _live.pop((entry.base_url, entry.session_id), None)
        if not entry.launched:
            continue
        settings = entry.settings
        try:  # closing twice is harmless, so a half-done close above is no reason to skip it
            with SkyvernClient(
                settings.api_key,
                settings.base_url,
                trusted_hosts=settings.trusted_hosts,
                allow_insecure_http=settings.allow_insecure_http,
            ) as client:
                client.close_browser_session(entry.session_id, timeout=AT_EXIT_TIMEOUT)
            logger.info("closed session %s at exit", entry.session_id)
        except Exception as exc:
            logger.warning("could not close session %s at exit: %s", entry.session_id, exc)


def _run_to_the_end(loop: asyncio.AbstractEventLoop, work: Coroutine[Any, Any, None]) -> None:
    """``loop.run_until_complete(work)``, run on when a ``stop()`` that was already scheduled
    (ipykernel's, at shutdown) ends a run early ("Event loop stopped before Future
    completed")."""
    task = loop.create_task(work)
    for _ in range(3):
        try:
            loop.run_until_complete(task)
            return
        except RuntimeError:
            if task.done():
                raise
    task.cancel()
    raise RuntimeError("the event loop kept stopping before the close finished")


async def _close_all(entries: list[_Entry]) -> None:
    for entry in entries:
        await _close_entry(entry)
