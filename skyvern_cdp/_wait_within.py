"""``await wait_within(aw, seconds)``: :func:`asyncio.wait_for` that never loses a cancellation.

>>> await wait_within(client.get_browser_session("pbs_1"), 2.0)  # doctest: +SKIP

On Python 3.10 and 3.11, :func:`asyncio.wait_for` returns the inner result when its caller
is cancelled in the same loop iteration as the inner awaitable finishes, and the cancellation
is lost (CPython gh-86296, fixed in 3.12). For this library that meant a ``task.cancel()`` of
a launch that met a poll's answer went unheard: the launch polled on until the session was
ready, tens of seconds later. Here the bound is :func:`asyncio.timeout` (3.11+), which runs
the awaitable in the caller's own task, so a cancellation reaches it at its next await; on
3.10 the awaitable runs in a task of its own, watched with :func:`asyncio.wait`, which
raises the caller's cancellation whatever the inner task did.

Either way the timeout raises :class:`asyncio.TimeoutError` (the built-in ``TimeoutError``
from 3.11 on), as :func:`asyncio.wait_for` does, and ``seconds=None`` waits without a bound.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable
from typing import TypeVar

__all__ = ["wait_within"]

_T = TypeVar("_T")


async def wait_within(awaitable: Awaitable[_T], seconds: float | None) -> _T:
    """Await ``awaitable`` for at most ``seconds``; see the module docstring."""
    if sys.version_info >= (3, 11):
        async with asyncio.timeout(seconds):
            return await awaitable
    task = asyncio.ensure_future(awaitable)
    try:
        done, _ = await asyncio.wait({task}, timeout=seconds)
    except BaseException:
        task.cancel()
        raise
    if task in done:
        return task.result()
    task.cancel()
    await asyncio.wait({task})  # its own clean-up, as asyncio.wait_for waits for it
    raise asyncio.TimeoutError
