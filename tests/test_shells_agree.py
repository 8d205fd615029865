"""What the two shells decide once, below both: the bound of one request, the steps of a
teardown, which side closes a session whose create answered late, and the thread that
``on_status`` runs in."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import pytest

from skyvern_cdp import SkyvernClient, async_api, sync_api
from skyvern_cdp._attachment import CreateGuard, Teardown
from skyvern_cdp.models import BrowserSessionResponse
from skyvern_cdp.policy import MIN_REQUEST_TIMEOUT, request_budget

if TYPE_CHECKING:
    from skyvern_cdp.local import LocalBackend


def test_a_request_gets_what_is_left_of_the_deadline_and_at_least_the_minimum() -> None:
    assert request_budget(7.25) == 7.25
    assert request_budget(0.1) == request_budget(0.0) == MIN_REQUEST_TIMEOUT


def test_a_teardown_step_an_interrupt_cut_short_stays_to_do() -> None:
    teardown = Teardown(owns_session=True, owns_client=True)
    assert teardown.todo() == ["disconnect", "close_session", "close_client", "release"]
    # Ctrl-C in the close request: the disconnect and the release are done, not the rest
    teardown.done("disconnect")
    assert not teardown.may("close_client")  # the client is what closes the session
    teardown.done("release")
    assert teardown.todo() == ["close_session", "close_client"]
    teardown.done("close_session")
    assert teardown.may("close_client")
    teardown.done("close_client")
    assert teardown.finished


def test_a_teardown_of_an_attach_never_closes_the_session() -> None:
    assert Teardown(owns_session=False, owns_client=False).todo() == ["disconnect", "release"]


def test_whichever_side_learns_the_id_last_closes_the_session() -> None:
    late = CreateGuard()
    assert late.abandon() is None  # given up first: the request side will close it
    assert late.made("pbs_1") is True
    early = CreateGuard()
    assert early.made("pbs_2") is False  # answered first: the caller closes it on giving up
    assert early.abandon() == "pbs_2"
    assert CreateGuard.wait_for(10.0) == 20.0


@pytest.mark.browser
def test_on_status_runs_in_the_callers_thread_in_both_shells(backend: LocalBackend) -> None:
    """The sync shell polls in a helper thread while it starts the driver; the callback
    still runs in the caller's thread, as the asyncio shell's runs on its loop."""
    import asyncio

    seen: list[tuple[str, int]] = []

    def record(session: BrowserSessionResponse) -> None:
        seen.append((session.status or "", threading.get_ident()))

    with SkyvernClient(backend.api_key, backend.base_url) as client:
        sid = client.create_browser_session().browser_session_id
        try:
            assert sync_api.driver_stats().references == 0  # so the poll runs in a thread
            browser = sync_api.connect(
                sid, api_key=backend.api_key, base_url=backend.base_url, timeout=60,
                on_status=record,
            )
            browser.close()
            assert seen and {ident for _, ident in seen} == {threading.get_ident()}

            async def attach() -> int:
                loop_thread = threading.get_ident()
                async with async_api.connect(
                    sid, api_key=backend.api_key, base_url=backend.base_url, timeout=60,
                    on_status=record,
                ) as browser:
                    assert browser.is_connected()
                return loop_thread

            seen.clear()
            loop_thread = asyncio.run(attach())
            assert seen and {ident for _, ident in seen} == {loop_thread}
        finally:
            client.close_browser_session(sid, timeout=30)
