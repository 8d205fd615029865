"""``LocalBackend``: a Skyvern-compatible server on loopback, in your process, over Chromium.

>>> from skyvern_cdp.local import LocalBackend
>>> with LocalBackend(api_key="sk-local") as backend:  # doctest: +SKIP
...     import httpx
...     r = httpx.post(f"{backend.base_url}/v1/browser_sessions",
...                    headers={"x-api-key": backend.api_key}, json={"timeout": 10})
...     r.json()["status"]
'created'

``async with LocalBackend() as backend:`` works the same way. The server runs uvicorn on
its own event loop in a background thread, on ``127.0.0.1`` and a free port by default
(``backend.base_url`` is ``http://127.0.0.1:PORT``). Each session is a real Chromium with
its own CDP port and temporary directory.

Leaving the ``with`` block (or :meth:`LocalBackend.stop`) stops every Chromium and removes
every directory the backend made. If the process dies without stopping it, even by SIGKILL,
a small watchdog process does the same (see :mod:`skyvern_cdp.local.watchdog`).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
import weakref
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING

from skyvern_cdp.config import is_loopback_host, require_ascii_key
from skyvern_cdp.errors import InvalidArgumentError, InvalidArgumentTypeError
from skyvern_cdp.gateway.router import Router, session_address
from skyvern_cdp.local import require_local_extra
from skyvern_cdp.local._checks import check_path, check_ready_delay, check_text, number
from skyvern_cdp.local.chromium import BrowserNotFoundError, find_chromium
from skyvern_cdp.local.registry import DEFAULT_MAX_SESSIONS
from skyvern_cdp.policy.web import listen_names

if TYPE_CHECKING:
    import uvicorn

    from skyvern_cdp.local.manager import SessionManager
    from skyvern_cdp.local.watchdog import Watchdog

__all__ = ["LocalBackend"]

logger = logging.getLogger("skyvern_cdp.local.backend")

#: Seconds ``start()`` waits for the server to listen.
STARTUP_TIMEOUT = 30.0
#: Seconds ``stop()`` waits for the sessions to stop and the server to exit.
SHUTDOWN_TIMEOUT = 60.0


class LocalBackend:
    """A local Skyvern browser-session server; see the module docstring for use.

    Arguments (all keyword-only):

    - ``api_key``: when set, every ``/v1`` request needs ``x-api-key: <api_key>``.
    - ``host``/``port``: where to listen; loopback and a free port by default. A host that is
      not loopback needs ``allow_remote=True``.
    - ``max_sessions``: live sessions at most (``DEFAULT_MAX_SESSIONS``, 8; ``None``: no cap);
      past it, create answers 429 with Retry-After.
    - ``ready_delay``: seconds a session stays ``created`` before its Chromium starts
      (``(low, high)`` draws uniformly per session): simulates cloud provisioning.
    - ``chromium_args``: extra Chromium flags, e.g. ``CLOSED_NETWORK_ARGS`` in tests.
    - ``chromium_executable``: the browser; default as :func:`find_chromium` finds it.
    - ``minute_seconds``: wall seconds per session-minute (tests make the reaper fast).
    - ``organization_id``: the ``organization_id`` of every session.
    - ``profiles_dir``: where browser profiles live (they survive a restart there); by
      default a temporary directory removed at :meth:`stop` (``serve`` defaults to the
      user's data directory instead, see ``--profiles-dir``).
    - ``recordings``: record each session as a video, listed in its ``recordings`` (on by
      default; off, with one log line, when PyAV is not installed). ``recordings_dir``: keep
      the videos there, beyond the backend's life (else they go with its temporary files).
    """

    def __init__(
        self,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        max_sessions: int | None = DEFAULT_MAX_SESSIONS,
        ready_delay: float | tuple[float, float] = 0.0,
        chromium_args: Sequence[str] = (),
        chromium_executable: str | None = None,
        minute_seconds: float = 60.0,
        organization_id: str = "o_local",
        allow_remote: bool = False,
        profiles_dir: str | os.PathLike[str] | None = None,
        recordings: bool = True,
        recordings_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        require_local_extra("LocalBackend")
        self._api_key = check_text(api_key, "api_key", allow_none=True)
        if self._api_key is not None:
            require_ascii_key(self._api_key)  # else no client could send it
        host = check_text(host, "host") or ""
        if not isinstance(allow_remote, bool):
            raise InvalidArgumentTypeError("allow_remote must be a bool")
        if not is_loopback_host(host) and not allow_remote:
            raise InvalidArgumentError(
                f"host {host!r} is not loopback: the sessions' browsers would be reachable from"
                " the network; pass allow_remote=True (--allow-remote) if that is intended"
            )
        self._host = host
        if isinstance(port, bool) or not isinstance(port, int):
            raise InvalidArgumentTypeError(f"port must be an int, not {type(port).__name__}")
        if not 0 <= port <= 65535:
            raise InvalidArgumentError(f"port must be 0..65535 (0 picks a free one), got {port}")
        self._port = port
        if max_sessions is not None:
            if isinstance(max_sessions, bool) or not isinstance(max_sessions, int):
                raise InvalidArgumentTypeError(
                    f"max_sessions must be an int or None, not {type(max_sessions).__name__}"
                )
            if max_sessions < 0:
                raise InvalidArgumentError(f"max_sessions must be >= 0, got {max_sessions}")
        self._max_sessions = max_sessions
        self._ready_delay = check_ready_delay(ready_delay)
        if isinstance(chromium_args, str) or not all(
            isinstance(arg, str) for arg in chromium_args
        ):
            raise InvalidArgumentTypeError("chromium_args must be a sequence of str")
        self._chromium_args = tuple(chromium_args)
        self._chromium_executable = check_text(
            chromium_executable, "chromium_executable", allow_none=True
        )
        minute = number(minute_seconds, "minute_seconds")
        if minute <= 0:
            raise InvalidArgumentError(f"minute_seconds must be > 0, got {minute_seconds!r}")
        self._minute_seconds = minute
        self._organization_id = check_text(organization_id, "organization_id") or "o_local"
        self._profiles_dir = check_path(profiles_dir, "profiles_dir")
        if not isinstance(recordings, bool):
            raise InvalidArgumentTypeError("recordings must be a bool")
        self._recordings = recordings
        self._recordings_dir = check_path(recordings_dir, "recordings_dir")

        self._lock = threading.Lock()
        self._started = False
        self._stopped = False
        self._base_url: str | None = None
        self._root: Path | None = None
        self._watchdog: Watchdog | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: uvicorn.Server | None = None
        self._manager: SessionManager | None = None
        self._atexit: Callable[[], None] | None = None
        self._router_sock: socket.socket | None = None
        self._router: Router | None = None

    def __repr__(self) -> str:
        key = "<set>" if self._api_key else None
        state = "stopped" if self._stopped else ("running" if self._started else "not started")
        return f"LocalBackend(base_url={self._base_url!r}, api_key={key}, {state})"

    # ---- what callers read -------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` of the running server (no trailing slash)."""
        if self._base_url is None:
            raise RuntimeError("the LocalBackend is not started; use `with LocalBackend() as b`")
        return self._base_url

    @property
    def api_key(self) -> str | None:
        """The key clients must send, or ``None`` when the server needs none."""
        return self._api_key

    @property
    def watchdog_pid(self) -> int | None:
        return self._watchdog.pid if self._watchdog is not None else None

    @property
    def root(self) -> Path | None:
        """The backend's own temporary directory (downloads live under it)."""
        return self._root

    def ready_at(self, session_id: str) -> float | None:
        """The ``time.monotonic()`` when the session was marked ``running``."""
        rec = self._manager.registry.get(session_id) if self._manager else None
        return rec.ready_monotonic if rec is not None else None

    def get_count(self, session_id: str) -> int:
        """How many ``GET /v1/browser_sessions/{id}`` were served for the session."""
        rec = self._manager.registry.get(session_id) if self._manager else None
        return rec.get_count if rec is not None else 0

    @property
    def router(self) -> Router | None:
        """The CDP router every ``browser_address`` points at (``None`` before start)."""
        return self._router

    def chromium_pid(self, session_id: str) -> int | None:
        """The pid of the session's Chromium (while it has one)."""
        return self._manager.chromium_pid(session_id) if self._manager else None

    def live_chromium_pids(self) -> list[int]:
        """Process ids of the Chromiums of live sessions."""
        return self._manager.live_chromium_pids() if self._manager else []

    # ---- start and stop ----------------------------------------------------------------

    def start(self) -> LocalBackend:
        """Start the server and wait until it listens. Idempotent; returns ``self``."""
        with self._lock:
            if self._stopped:
                raise RuntimeError("this LocalBackend was stopped; create a new one")
            if self._started:
                return self
            executable = self._chromium_executable or find_chromium()
            if not (os.path.isfile(executable) and os.access(executable, os.X_OK)):
                raise BrowserNotFoundError(f"{executable!r} is not an executable file")
            sock = self._bind(self._port)
            try:
                self._router_sock = self._bind(0)
                self._start_locked(sock, executable)
            except BaseException:
                self._started = True
                self._stop_locked()
                sock.close()
                if self._router_sock is not None:
                    self._router_sock.close()
                raise
            return self

    def _bind(self, port: int) -> socket.socket:
        infos = socket.getaddrinfo(
            self._host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
        # Prefer IPv4 for "localhost": Chromium and clients dial 127.0.0.1 first.
        infos.sort(key=lambda info: info[0] != socket.AF_INET)
        family, kind, proto, _, address = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(128)
            sock.set_inheritable(False)
        except OSError:
            sock.close()
            raise
        return sock

    def _start_locked(self, sock: socket.socket, executable: str) -> None:
        from skyvern_cdp.local.watchdog import Watchdog

        self._started = True
        self._root = Path(tempfile.mkdtemp(prefix="scdp-b-", dir="/tmp" if os.path.isdir(
            "/tmp") else None))
        self._watchdog = Watchdog.start()
        self._watchdog.add_dir(self._root)
        port = sock.getsockname()[1]
        host = self._host.strip("[]")
        self._base_url = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

        ready: Future[None] = Future()
        self._thread = threading.Thread(
            target=self._thread_main,
            args=(sock, executable, ready),
            name=f"skyvern-cdp-local-{port}",
            daemon=True,
        )
        self._thread.start()
        ready.result(timeout=STARTUP_TIMEOUT)
        ref = weakref.ref(self)

        def stop_at_exit() -> None:
            backend = ref()
            if backend is not None:
                backend.stop()

        atexit.register(stop_at_exit)
        self._atexit = stop_at_exit
        logger.info("local backend listening on %s", self._base_url)

    def _thread_main(self, sock: socket.socket, executable: str, ready: Future[None]) -> None:
        try:
            asyncio.run(self._serve(sock, executable, ready))
        except BaseException as exc:
            if not ready.done():
                ready.set_exception(exc)
            else:
                logger.exception("the local backend's server loop failed")
        finally:
            sock.close()
            if self._router_sock is not None:
                self._router_sock.close()

    async def _serve(self, sock: socket.socket, executable: str, ready: Future[None]) -> None:
        import uvicorn

        from skyvern_cdp.local.app import create_app
        from skyvern_cdp.local.manager import SessionManager
        from skyvern_cdp.local.profiles import profiles_for
        from skyvern_cdp.local.recordings import make_recordings

        assert self._root is not None
        self._loop = asyncio.get_running_loop()
        # Starting and stopping Chromiums runs in threads: allow many at once.
        self._loop.set_default_executor(
            ThreadPoolExecutor(max_workers=32, thread_name_prefix="skyvern-cdp-local")
        )
        manager = SessionManager(
            download_root=self._root / "downloads",
            organization_id=self._organization_id,
            max_sessions=self._max_sessions,
            ready_delay=self._ready_delay,
            chromium_args=self._chromium_args,
            chromium_executable=executable,
            minute_seconds=self._minute_seconds,
            watchdog=self._watchdog,
        )
        manager.profiles = profiles_for(self._profiles_dir, self._root, self._organization_id)
        if self._recordings:
            manager.recordings = make_recordings(self._recordings_dir or self._root / "recordings")
        manager.start()
        self._manager = manager
        assert self._router_sock is not None
        names = listen_names(self._host)  # who may reach us: IP literals, localhost, our host
        app = create_app(api_key=self._api_key, host_names=names)
        app.state.manager = manager
        live = app.state.live  # a take-over in the live view holds the automation's input
        router = Router(lookup=manager.route, api_key=self._api_key, host_names=names,
                        hold=live.wait_until_free)
        await router.start(self._router_sock)
        self._router = router
        router_host, router_port = self._router_sock.getsockname()[:2]
        manager.address_for = lambda sid, path: session_address(
            router_host, router_port, sid, path
        )

        def ended(session_id: str) -> None:
            router.session_ended(session_id)
            live.session_ended(session_id)

        manager.on_ended = ended
        config = uvicorn.Config(
            app,
            log_config=None,  # leave the host process's logging alone
            log_level=logging.WARNING,
            access_log=False,
            lifespan="off",
            ws="websockets-sansio",  # the live view's websocket
            timeout_graceful_shutdown=2,
        )
        self._server = server = uvicorn.Server(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started and not serving.done():  # noqa: ASYNC110 (only a flag)
                await asyncio.sleep(0.005)
            if serving.done():
                serving.result()
                raise RuntimeError("the local backend's server exited while starting")
            ready.set_result(None)
            await serving
        finally:
            await manager.aclose()
            await router.aclose()

    def stop(self) -> None:
        """Stop every session's Chromium, the server and the watchdog; remove the directories.

        Idempotent, and safe to call from any thread but the server's own.
        """
        with self._lock:
            self._stop_locked()

    def _stop_locked(self) -> None:
        if not self._started or self._stopped:
            self._stopped = True
            return
        self._stopped = True
        if self._atexit is not None:
            atexit.unregister(self._atexit)
            self._atexit = None
        loop, manager, server = self._loop, self._manager, self._server
        if loop is not None and manager is not None and not loop.is_closed():
            with contextlib.suppress(Exception):
                future = asyncio.run_coroutine_threadsafe(manager.aclose(), loop)
                future.result(timeout=SHUTDOWN_TIMEOUT)
        if server is not None:
            server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=SHUTDOWN_TIMEOUT)
            if self._thread.is_alive():
                logger.error("the local backend's server thread did not exit")
        if self._watchdog is not None:
            # Whatever is left (nothing, normally) the watchdog kills and removes as it exits.
            self._watchdog.stop()
        if self._root is not None:
            _remove_tree(self._root)
        logger.info("local backend on %s stopped", self._base_url)

    # ---- context managers --------------------------------------------------------------

    def __enter__(self) -> LocalBackend:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    async def __aenter__(self) -> LocalBackend:
        return await asyncio.to_thread(self.start)

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # Shielded: teardown runs to its end even if the caller is cancelled.
        await asyncio.shield(asyncio.to_thread(self.stop))


def _remove_tree(path: Path) -> None:
    deadline = time.monotonic() + 5.0
    shutil.rmtree(path, ignore_errors=True)
    while path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
        shutil.rmtree(path, ignore_errors=True)
