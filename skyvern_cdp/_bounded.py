"""A bound on a whole HTTP request, in both clients: what is left of the call's deadline.

httpx's phase timeouts limit each read, not the request: a server that sends its answer one
byte at a time holds a request for as long as it likes, each read well inside its limit.

>>> with within(2.0):  # doctest: +SKIP
...     http.request("GET", "/v1/browser_sessions/pbs_1")   # ReadTimeout after 2 s at most

- Sync (:class:`SkyvernClient`): :func:`bound_transports` wraps the network backend of each
  of a client's connection pools, so that every socket read, write and connect of the
  request is limited to what is left of the bound that :func:`within` set (a context
  variable: it follows the request whichever thread or task sends it), and fails with
  httpcore's own timeout errors, which httpx maps to :class:`httpx.ReadTimeout` & co.
- Async (:class:`AsyncSkyvernClient`): :func:`bounded_request` runs the request under
  :func:`~skyvern_cdp._wait_within.wait_within`, cancelling it (httpx then drops the
  connection) at the bound.

How long the bound is comes from :func:`skyvern_cdp.policy.request_budget`, for both.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import time
from collections.abc import Awaitable, Iterable, Iterator
from typing import Any, TypeVar

import httpcore
import httpx

from skyvern_cdp._wait_within import wait_within

__all__ = ["bound_transports", "bounded_request", "within"]

#: The monotonic time by which the current request must be done; None: no bound.
_ENDS_AT: contextvars.ContextVar[float | None] = contextvars.ContextVar(
    "skyvern_cdp_request_ends_at", default=None
)

_T = TypeVar("_T")


@contextlib.contextmanager
def within(seconds: float) -> Iterator[None]:
    """Bound every socket operation inside the block to ``seconds`` from now, in all."""
    token = _ENDS_AT.set(time.monotonic() + seconds)
    try:
        yield
    finally:
        _ENDS_AT.reset(token)


def _limit(timeout: float | None, error: type[Exception]) -> float | None:
    """``timeout`` cut to what is left of the bound; the bound's error once it has passed."""
    ends_at = _ENDS_AT.get()
    if ends_at is None:
        return timeout
    left = ends_at - time.monotonic()
    if left <= 0:
        raise error("the request took longer than what was left of the call's timeout")
    return left if timeout is None else min(timeout, left)


class _BoundedStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _limit(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _limit(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _limit(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _BoundedBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _limit(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(
            self._inner.connect_tcp(host, port, timeout, local_address, socket_options)
        )

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _limit(timeout, httpcore.ConnectTimeout)
        return _BoundedStream(self._inner.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def bound_transports(client: httpx.Client) -> httpx.Client:
    """Make every connection pool of ``client`` (proxies included) honour :func:`within`."""
    transports: list[object] = [client._transport, *client._mounts.values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        backend = getattr(pool, "_network_backend", None)
        if backend is not None and not isinstance(backend, _BoundedBackend):
            pool._network_backend = _BoundedBackend(backend)  # type: ignore[union-attr]
    return client


async def bounded_request(request: Awaitable[_T], seconds: float) -> _T:
    """Await ``request`` for at most ``seconds``; then cancel it and raise
    :class:`httpx.ReadTimeout`, as a read that ran out of time would."""
    try:
        return await wait_within(request, seconds)
    except asyncio.TimeoutError:
        raise httpx.ReadTimeout(
            "the request took longer than what was left of the call's timeout"
        ) from None
