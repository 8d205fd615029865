"""``wait_within``: a bound that keeps the caller's cancellation (CPython gh-86296).

Before, the async shells bounded each step with :func:`asyncio.wait_for`, which on Python
3.10/3.11 returns the inner result when the caller is cancelled in the loop iteration in
which the inner awaitable finishes: a ``task.cancel()`` of ``async_api.launch`` that met a
poll's answer went unheard, and the launch polled on until the session was ready.
"""

from __future__ import annotations

import asyncio

import pytest

from skyvern_cdp._wait_within import wait_within


async def _cancel_as_it_answers(answer: object) -> asyncio.Task[object]:
    """A task waiting on a future, cancelled in the same loop iteration as the future's
    answer arrives: the race that lost the cancellation."""
    future: asyncio.Future[object] = asyncio.get_running_loop().create_future()
    task = asyncio.ensure_future(wait_within(future, 10))
    await asyncio.sleep(0)  # the task is now waiting
    future.set_result(answer)
    task.cancel()
    return task


async def test_a_cancel_that_meets_the_answer_is_not_lost() -> None:
    task = await _cancel_as_it_answers("the poll's answer")
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancel_that_meets_the_answer_of_a_coroutine_is_not_lost() -> None:
    gate = asyncio.Event()

    async def request() -> str:
        await gate.wait()
        return "answer"

    task = asyncio.ensure_future(wait_within(request(), 10))
    await asyncio.sleep(0)
    gate.set()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_the_bound_raises_timeout_and_cancels_the_awaitable() -> None:
    cancelled = asyncio.Event()

    async def hangs() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(asyncio.TimeoutError):
        await wait_within(hangs(), 0.05)
    assert cancelled.is_set()


async def test_an_answer_within_the_bound_is_returned_and_none_means_no_bound() -> None:
    async def quick() -> int:
        await asyncio.sleep(0)
        return 7

    assert await wait_within(quick(), 5) == 7
    assert await wait_within(quick(), None) == 7


async def test_an_error_of_the_awaitable_is_raised_as_it_is() -> None:
    async def fails() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="boom"):
        await wait_within(fails(), 5)
