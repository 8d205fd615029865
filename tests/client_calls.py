"""One test body for both clients: ``call(method, *args, **kw)`` on either of them.

>>> with client_calls("async", api.base_url, KEY) as call:  # doctest: +SKIP
...     call("get_browser_session", "pbs_1")     # awaited in a loop of its own
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator
from typing import Any

from skyvern_cdp import AsyncSkyvernClient, SkyvernClient

Call = Callable[..., Any]


@contextlib.contextmanager
def client_calls(flavour: str, base_url: str, key: str) -> Iterator[Call]:
    """A :class:`SkyvernClient` (``"sync"``) or an :class:`AsyncSkyvernClient` (``"async"``)
    behind one blocking ``call``; closed when the block is left."""
    if flavour == "sync":
        client = SkyvernClient(key, base_url)
        try:
            yield lambda name, *a, **kw: getattr(client, name)(*a, **kw)
        finally:
            client.close()
        return
    loop = asyncio.new_event_loop()

    async def make() -> AsyncSkyvernClient:
        return AsyncSkyvernClient(key, base_url)

    aclient = loop.run_until_complete(make())
    try:
        yield lambda name, *a, **kw: loop.run_until_complete(getattr(aclient, name)(*a, **kw))
    finally:
        loop.run_until_complete(aclient.aclose())
        loop.close()
