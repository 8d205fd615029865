"""The waiter: the decisions of one whole wait for a session, fed with each poll's answer.

>>> from skyvern_cdp.policy.session import Deadline
>>> w = Waiter("pbs_1", Deadline(10.0))
>>> isinstance(w.observe(None), PollAgain)
True
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from skyvern_cdp.policy.session import (
    Deadline,
    Readiness,
    describe_not_ready,
    missing_for_ready,
    poll_delay,
    readiness,
    sleep_before_next_poll,
)

if TYPE_CHECKING:
    from skyvern_cdp.models import BrowserSessionResponse

# -- the waiter -----------------------------------------------------------------------------


@dataclass(frozen=True)
class PollAgain:
    """Sleep this long, then poll again."""

    sleep: float


class Waiter:
    """The decisions of one wait, fed with each poll's answer; the shells do the I/O.

    >>> w = Waiter("pbs_1", Deadline(10.0))
    >>> isinstance(w.observe(None), PollAgain)
    True

    :meth:`observe` returns the ready session, a :class:`PollAgain`, or raises
    :class:`~skyvern_cdp.errors.SessionEndedError` /
    :class:`~skyvern_cdp.errors.SessionNotReadyError`.
    """

    def __init__(
        self,
        session_id: str,
        deadline: Deadline,
        on_status: Callable[[BrowserSessionResponse], object] | None = None,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.session_id = session_id
        self.deadline = deadline
        self.on_status = on_status
        self.last: BrowserSessionResponse | None = None
        self.last_failure: BaseException | None = None
        self.polls = 0
        self._rng = rng
        self._status_seen: object = object()

    def observe(self, session: BrowserSessionResponse | None) -> BrowserSessionResponse | PollAgain:
        from skyvern_cdp.errors import SessionEndedError

        self.polls += 1
        if session is not None:
            self.last = session
            if session.status != self._status_seen:
                self._status_seen = session.status
                if self.on_status is not None:
                    self.on_status(session)
        state = readiness(self.last)
        if state is Readiness.READY:
            assert self.last is not None
            return self.last
        if state is Readiness.ENDED:
            assert self.last is not None
            raise SessionEndedError(
                f"session {self.session_id} has ended (status {self.last.status!r}); it cannot"
                " be attached to: create a new one",
                session_id=self.session_id,
                session=self.last,
            )
        sleep = sleep_before_next_poll(
            poll_delay(self.deadline.elapsed(), rng=self._rng), self.deadline.remaining()
        )
        if sleep is None:
            raise self.timed_out()
        return PollAgain(sleep)

    def note_failure(self, failure: BaseException) -> None:
        """Remember a failed poll, so that a timeout can say why the API gave no answer."""
        self.last_failure = failure

    def timed_out(self, cause: BaseException | None = None) -> Exception:
        """The error for a wait whose deadline passed (``cause``: the last failure, if any)."""
        from skyvern_cdp.errors import SessionNotReadyError

        cause = cause or self.last_failure
        message = describe_not_ready(self.last, self.deadline.elapsed())
        if cause is not None and self.last is None:
            message = (
                f"session {self.session_id} was not ready within"
                f" {self.deadline.elapsed():.1f}s: the API kept failing ({cause})"
            )
        return SessionNotReadyError(
            message,
            session_id=self.session_id,
            session=self.last,
            missing=missing_for_ready(self.last),
        )


def build_reconnect_delay(failures: int, rng: random.Random | None = None) -> float:
    """Pause before reattaching after ``failures`` failed rounds in a row (reconnecting form)."""
    ceiling = min(10.0, 0.5 * 2.0 ** max(0, failures - 1))
    return (rng or random).uniform(ceiling / 2, ceiling)
