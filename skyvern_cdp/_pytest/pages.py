"""Which pages of a shared default context a test opened (``--skyvern-default-context``).

>>> own = OwnPages(context)       # doctest: +SKIP  (context.new_page now records its pages)
>>> ...                           # the test runs
>>> own.release()                 # doctest: +SKIP
>>> for page in opened_by(context.pages, own.opened, openers): page.close()  # doctest: +SKIP

Over CDP the default context shows every page of the session, those that other connections
(another xdist worker, a person in the live view) opened too. A test's teardown closes only
the pages this test opened: the ones its ``context.new_page()`` returned, and the popups those
opened (their opener chain leads to one of them). :func:`opened_by` decides; the fixtures only
ask each page its opener.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import pytest

__all__ = [
    "ASYNCIO_PLAYWRIGHT",
    "OwnPages",
    "default_context",
    "default_context_async",
    "opened_by",
]

#: pytest-playwright-asyncio's plugin name (the async variant of pytest-playwright).
ASYNCIO_PLAYWRIGHT = "playwright-asyncio"

P = TypeVar("P")


def opened_by(pages: Iterable[P], opened: Iterable[P], openers: Mapping[P, P | None]) -> list[P]:
    """The ``pages`` that are in ``opened`` or were opened (through ``openers``, any depth)
    from one of them.

    >>> opened_by(["a", "b", "c", "d"], ["a"], {"b": "a", "c": "b", "d": "x"})
    ['a', 'b', 'c']
    """
    mine = set(opened)
    found: list[P] = []
    for page in pages:
        seen: set[P] = set()
        current: P | None = page
        while current is not None and current not in mine and current not in seen:
            seen.add(current)
            current = openers.get(current)
        if current is not None and current in mine:
            found.append(page)
    return found


class OwnPages:
    """Records the pages ``context.new_page()`` returns until :meth:`release` (sync or async
    Playwright: the wrapper has the same kind as the method it shadows)."""

    def __init__(self, context: Any) -> None:
        self.context = context
        self.opened: list[Any] = []
        method: Callable[..., Any] = context.new_page
        if _is_coroutine_function(method):

            async def new_page_async(*args: Any, **kwargs: Any) -> Any:
                page = await method(*args, **kwargs)
                self.opened.append(page)
                return page

            context.new_page = new_page_async
        else:

            def new_page(*args: Any, **kwargs: Any) -> Any:
                page = method(*args, **kwargs)
                self.opened.append(page)
                return page

            context.new_page = new_page

    def release(self) -> None:
        """Stop recording: ``context.new_page`` is the context's own again."""
        self.context.__dict__.pop("new_page", None)


def _is_coroutine_function(method: Callable[..., Any]) -> bool:
    import inspect

    return inspect.iscoroutinefunction(method)


def _first_context(browser: Any) -> Any:
    if not browser.contexts:
        pytest.fail("skyvern_cdp: the session has no default context", pytrace=False)
    return browser.contexts[0]


@contextlib.contextmanager
def default_context(browser: Any) -> Iterator[Any]:
    """The session's default context for one test; this test's own pages closed after it."""
    context = _first_context(browser)
    own = OwnPages(context)
    try:
        yield context
    finally:
        own.release()
        pages = context.pages
        openers = {}
        for page in pages:
            with contextlib.suppress(Exception):
                openers[page] = page.opener()
        for page in opened_by(pages, own.opened, openers):
            with contextlib.suppress(Exception):
                page.close()


@contextlib.asynccontextmanager
async def default_context_async(browser: Any) -> AsyncIterator[Any]:
    """:func:`default_context` for an asyncio Playwright Browser."""
    context = _first_context(browser)
    own = OwnPages(context)
    try:
        yield context
    finally:
        own.release()
        pages = context.pages
        openers = {}
        for page in pages:
            with contextlib.suppress(Exception):
                openers[page] = await page.opener()
        for page in opened_by(pages, own.opened, openers):
            with contextlib.suppress(Exception):
                await page.close()
