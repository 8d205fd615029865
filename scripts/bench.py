"""Time skyvern_cdp's attach path against raw Playwright, on the local backend and real Chromium.

    scripts/bench                  # the full run (about 2-3 minutes): prints one markdown table
    scripts/bench --runs 5         # fewer runs per measure (medians get noisier)
    scripts/bench --json out.json  # also write every sample
    scripts/bench --only cold,warm # a subset: cold, warm, concurrent, cli, lag, waits, gateway
    scripts/bench --only gateway   # the CDP gateway's cost: direct, router, relay (bench_gateway)
    scripts/bench --minute         # also count the GETs of 60 s waits (40 s more)

What it measures (each ratio inside one run: both sides back to back, the order alternating
between runs; the table shows the median over runs):

1. cold attach to a running session: ``connect(id)`` vs ``async_playwright().start()`` +
   ``connect_over_cdp(address)``;
2. a session that becomes ready 2-3 s after the first GET: the lag from the moment the
   backend marked it running until the Browser is in hand, the hand-off from the GET that saw
   it ready, the GETs it took; and the GETs of 20 s waits (and 60 s ones with ``--minute``);
3. warm attach (the shared driver already runs) vs a raw ``connect_over_cdp``;
4. 16 concurrent attaches vs one, and how many drivers they started;
5. a naive hand loop on the same sessions as 2: GET, ``sleep(1)``, then driver + connect;
6. ``skyvern-cdp info`` cold start, whether ``info`` and ``wait`` import Playwright, and
   teardown.

Everything runs in this process: the backend marks a session ready at ``time.monotonic()``,
the same clock the bench reads when ``connect`` returns.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from playwright.async_api import Browser, BrowserType, async_playwright

from skyvern_cdp import AsyncSkyvernClient, BrowserSessionResponse
from skyvern_cdp.async_api import connect, driver_stats
from skyvern_cdp.local.chromium import CLOSED_NETWORK_ARGS

now = time.monotonic


class Backend(Protocol):
    """What the bench needs of :class:`skyvern_cdp.local.LocalBackend`."""

    base_url: str
    api_key: str | None

    def ready_at(self, session_id: str) -> float | None: ...

    def get_count(self, session_id: str) -> int: ...

    def __enter__(self) -> Backend: ...

    def __exit__(self, *exc: object) -> Any: ...


BackendFactory = Callable[..., Backend]


def local_backend(**kwargs: Any) -> Backend:
    from skyvern_cdp.local import LocalBackend

    backend: Backend = LocalBackend(chromium_args=CLOSED_NETWORK_ARGS, **kwargs)
    return backend


_STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"bench: {time.monotonic() - _STARTED:5.1f}s {message}", file=sys.stderr, flush=True)


# -- counting HTTP connections --------------------------------------------------------------


class ConnectionCounter:
    """Counts TCP connections this process opens to one port (via the ``socket.connect``
    audit event, so the library is observed as it is, without hooks)."""

    def __init__(self) -> None:
        self.ports: set[int] = set()
        self.count = 0
        sys.addaudithook(self._hook)

    def _hook(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.connect" and self.ports:
            address = args[1]
            if isinstance(address, tuple) and len(address) >= 2 and address[1] in self.ports:
                self.count += 1

    @contextlib.contextmanager
    def watching(self, base_url: str) -> Any:
        port = httpx.URL(base_url).port
        assert port is not None
        self.ports, self.count = {port}, 0
        try:
            yield self
        finally:
            self.ports = set()


@contextlib.contextmanager
def timing_dials(record: list[float]) -> Iterator[None]:
    """Time every ``connect_over_cdp`` made meanwhile (to split the hand-off: Playwright's
    part, and the library's around it)."""
    original = BrowserType.connect_over_cdp

    async def timed(self: BrowserType, *args: Any, **kwargs: Any) -> Browser:
        start = now()
        try:
            return await original(self, *args, **kwargs)
        finally:
            record.append(now() - start)

    BrowserType.connect_over_cdp = timed  # type: ignore[method-assign]
    try:
        yield
    finally:
        BrowserType.connect_over_cdp = original  # type: ignore[method-assign]


# -- results --------------------------------------------------------------------------------


@dataclass
class Row:
    measure: str
    value: str
    goal: str = "—"
    met: bool | None = None

    def cells(self) -> list[str]:
        met = "—" if self.met is None else ("yes" if self.met else "**no**")
        return [self.measure, self.value, self.goal, met]


@dataclass
class Results:
    rows: list[Row] = field(default_factory=list)
    samples: dict[str, list[float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def add(self, measure: str, value: str, goal: str = "—", met: bool | None = None) -> None:
        self.rows.append(Row(measure, value, goal, met))

    def keep(self, name: str, values: Sequence[float]) -> list[float]:
        self.samples[name] = list(values)
        return self.samples[name]

    def table(self) -> str:
        lines = ["| measure | value | goal | met? |", "| --- | ---: | --- | --- |"]
        lines += ["| " + " | ".join(row.cells()) + " |" for row in self.rows]
        return "\n".join(lines)


def check(condition: object, message: str) -> None:
    """A precondition of a measurement; when it fails the numbers would be meaningless."""
    if not condition:
        raise RuntimeError(f"bench: {message}")


def med(values: Sequence[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def spread(values: Sequence[float]) -> str:
    """The median and, in brackets, the interquartile range: how much runs disagreed."""
    return f"{med(values):.2f} ({pct(values, 0.25):.2f}–{pct(values, 0.75):.2f})"


def pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# -- the bench ------------------------------------------------------------------------------


@dataclass
class Lag:
    """One wait for a session that becomes ready later: what happened, on one clock."""

    lag: float  # backend marked it running → Browser in hand
    handoff: float  # the GET that saw it ready → Browser in hand
    seen: float  # backend marked it running → the GET that saw it answered
    gets: int
    connections: int
    driver_was_running: bool | None = None


class Bench:
    def __init__(
        self, runs: int, factory: BackendFactory, counter: ConnectionCounter, minute: bool
    ) -> None:
        self.runs = runs
        self.factory = factory
        self.counter = counter
        self.minute = minute
        self.results = Results()
        self.stack = contextlib.ExitStack()
        self.admins: list[AsyncSkyvernClient] = []
        self.fresh_connects: list[float] = []
        self.dials: list[float] = []
        self.closing: list[asyncio.Future[Any]] = []
        self.waits: list[float] = []

    # -- plumbing

    def backend(self, **kwargs: Any) -> Backend:
        return self.stack.enter_context(self.factory(**kwargs))

    def admin(self, backend: Backend) -> AsyncSkyvernClient:
        client = AsyncSkyvernClient(api_key=backend.api_key, base_url=backend.base_url)
        self.admins.append(client)
        return client

    def auth(self, backend: Backend) -> dict[str, str]:
        return {"x-api-key": backend.api_key} if backend.api_key else {}

    def attach(self, backend: Backend, session_id: str, **kwargs: Any) -> Any:
        return connect(
            session_id, api_key=backend.api_key, base_url=backend.base_url, timeout=120, **kwargs
        )

    async def create(self, admin: AsyncSkyvernClient) -> str:
        session = await admin.create_browser_session(session_timeout_minutes=30)
        return session.browser_session_id

    async def ready_session(self, admin: AsyncSkyvernClient) -> BrowserSessionResponse:
        sid = await self.create(admin)
        return await admin.wait_for_browser_session(sid, timeout=60)

    def close_later(self, admin: AsyncSkyvernClient, session_id: str) -> None:
        """End a session without waiting for its Chromium to stop (collected by the phase)."""
        self.closing.append(asyncio.ensure_future(admin.close_browser_session(session_id)))

    async def chromium_startup(self, backend: Backend, admin: AsyncSkyvernClient) -> float:
        """Median of three: create → running on a backend without delay, one at a time."""
        took = []
        for _ in range(3):
            begun = now()
            session = await self.ready_session(admin)
            sid = session.browser_session_id
            took.append((backend.ready_at(sid) or begun) - begun)
            await admin.close_browser_session(sid)
        return med(took)

    async def aclose(self) -> None:
        for client in self.admins:
            await client.aclose()
        self.stack.close()

    # -- 1. cold attach and 6. teardown

    async def raw_cold(self, backend: Backend, address: str) -> tuple[float, float]:
        start = now()
        playwright = await async_playwright().start()
        try:
            browser = await playwright.chromium.connect_over_cdp(
                address, headers=self.auth(backend)
            )
            attached = now() - start
            start = now()
            await browser.close()
        finally:
            await playwright.stop()
        return attached, now() - start

    async def ours_cold(self, backend: Backend, session_id: str) -> tuple[float, float, int]:
        stats = driver_stats()
        check(stats.references == 0 and not stats.running, f"the driver is not cold: {stats}")
        start = now()
        browser: Browser = await self.attach(backend, session_id)
        attached = now() - start
        started = driver_stats().started - stats.started
        start = now()
        await browser.close()
        teardown = now() - start
        check(not driver_stats().running, "the last close did not stop the driver")
        return attached, teardown, started

    async def cold(self, backend: Backend, session: BrowserSessionResponse) -> None:
        log(f"1. cold attach ({self.runs} runs)")
        address = session.browser_address
        assert address
        sid = session.browser_session_id
        await self.raw_cold(backend, address)  # warm-up: page cache, first imports
        await self.ours_cold(backend, sid)
        raw, ours, raw_down, ours_down, ratios = [], [], [], [], []
        for run in range(self.runs):
            if run % 2 == 0:
                r_up, r_down = await self.raw_cold(backend, address)
                o_up, o_down, _ = await self.ours_cold(backend, sid)
            else:
                o_up, o_down, _ = await self.ours_cold(backend, sid)
                r_up, r_down = await self.raw_cold(backend, address)
            raw.append(r_up)
            ours.append(o_up)
            raw_down.append(r_down)
            ours_down.append(o_down)
            ratios.append(o_up / r_up)
        res = self.results
        res.keep("cold.raw", raw)
        res.keep("cold.ours", ours)
        res.keep("cold.ratio", ratios)
        res.keep("teardown.raw", raw_down)
        res.keep("teardown.ours", ours_down)
        res.add("1. cold attach, raw: driver start + `connect_over_cdp`", ms(med(raw)))
        res.add("1. cold attach, `connect(id)` (running session)", ms(med(ours)))
        ratio = med(ratios)
        res.add("1. cold attach ratio, connect / raw", spread(ratios), "≤ 1.05", ratio <= 1.05)
        res.add("6. teardown, raw: `browser.close()` + `playwright.stop()`", ms(med(raw_down)))
        res.add(
            "6. teardown, `browser.close()` of `connect` (stops the driver)", ms(med(ours_down))
        )

    # -- 3. warm attach

    async def warm(self, backend: Backend, anchor_id: str, session: BrowserSessionResponse) -> None:
        log(f"3. warm attach ({self.runs} runs)")
        address = session.browser_address
        assert address
        sid = session.browser_session_id
        anchor: Browser = await self.attach(backend, anchor_id)  # holds the shared driver
        raw_playwright = await async_playwright().start()
        raw, ours, ratios = [], [], []
        to_answer: list[float] = []
        dialling: list[float] = []
        try:
            started_before = driver_stats().started

            async def raw_once() -> float:
                start = now()
                browser = await raw_playwright.chromium.connect_over_cdp(
                    address, headers=self.auth(backend)
                )
                took = now() - start
                await browser.close()
                return took

            async def ours_once() -> float:
                answered: list[float] = []
                dials: list[float] = []
                with timing_dials(dials):
                    start = now()
                    browser: Browser = await self.attach(
                        backend, sid, on_status=lambda _: answered.append(now())
                    )
                    took = now() - start
                await browser.close()
                to_answer.append(answered[0] - start)
                dialling.append(sum(dials))
                return took

            await raw_once()
            await ours_once()
            for run in range(self.runs):
                if run % 2 == 0:
                    r, o = await raw_once(), await ours_once()
                else:
                    o, r = await ours_once(), await raw_once()
                raw.append(r)
                ours.append(o)
                ratios.append(o / r)
            started = driver_stats().started - started_before
        finally:
            await raw_playwright.stop()
            await anchor.close()
        res = self.results
        res.keep("warm.raw", raw)
        res.keep("warm.ours", ours)
        res.keep("warm.ratio", ratios)
        res.add("3. warm attach, raw `connect_over_cdp` (driver running)", ms(med(raw)))
        res.add("3. warm attach, `connect(id)` (shared driver running)", ms(med(ours)))
        res.add(
            "3. … of which: until the GET is answered",
            ms(med(res.keep("warm.to_answer", to_answer[1:]))),
        )
        res.add(
            "3. … of which inside `connect_over_cdp`",
            ms(med(res.keep("warm.dial", dialling[1:]))),
        )
        ratio = med(ratios)
        res.add("3. warm attach ratio, connect / raw", spread(ratios), "≤ 2.0", ratio <= 2.0)
        res.add("3. drivers started by the warm attaches", str(started), "0", started == 0)

    # -- 4. concurrency

    async def raw_concurrent(
        self, backend: Backend, addresses: Sequence[str]
    ) -> tuple[float, float]:
        """Raw Playwright on the same work: one cold attach, then all at once on one driver."""
        one, _down = await self.raw_cold(backend, addresses[0])
        start = now()
        playwright = await async_playwright().start()
        try:
            outcomes = await asyncio.gather(
                *(
                    playwright.chromium.connect_over_cdp(address, headers=self.auth(backend))
                    for address in addresses
                ),
                return_exceptions=True,
            )
            wall = now() - start
            await asyncio.gather(*(b.close() for b in outcomes if isinstance(b, Browser)))
        finally:
            await playwright.stop()
        errors = [e for e in outcomes if isinstance(e, BaseException)]
        if errors:
            raise errors[0]
        return one, wall

    async def ours_concurrent(
        self, backend: Backend, session_ids: Sequence[str]
    ) -> tuple[float, float, int]:
        one, _down, _ = await self.ours_cold(backend, session_ids[0])
        before = driver_stats().started
        start = now()
        outcomes = await asyncio.gather(
            *(self.attach(backend, sid) for sid in session_ids), return_exceptions=True
        )
        wall = now() - start
        started = driver_stats().started - before
        await asyncio.gather(*(b.close() for b in outcomes if isinstance(b, Browser)))
        errors = [e for e in outcomes if isinstance(e, BaseException)]
        if errors:
            raise errors[0]
        return one, wall, started

    async def concurrent(
        self, backend: Backend, sessions: Sequence[BrowserSessionResponse]
    ) -> None:
        n = len(sessions)
        log(f"4. {n} concurrent attaches ({self.runs} runs)")
        ids = [s.browser_session_id for s in sessions]
        addresses = [s.browser_address or "" for s in sessions]
        ones, walls, ratios, drivers, raw_ratios = [], [], [], [], []
        for run in range(self.runs):
            one, wall, started = await self.ours_concurrent(backend, ids)
            if run % 2 == 0:  # raw Playwright for context, in every other run (time)
                raw_one, raw_wall = await self.raw_concurrent(backend, addresses)
                raw_ratios.append(raw_wall / raw_one)
            ones.append(one)
            walls.append(wall)
            ratios.append(wall / one)
            drivers.append(started)
        res = self.results
        res.keep("concurrent.one", ones)
        res.keep("concurrent.wall", walls)
        res.keep("concurrent.ratio", ratios)
        res.keep("concurrent.raw_ratio", raw_ratios)
        res.add(f"4. {n} concurrent cold attaches, wall time", ms(med(walls)))
        res.add("4. one cold attach, same runs", ms(med(ones)))
        ratio = med(ratios)
        res.add(f"4. {n} concurrent / one", spread(ratios), "≤ 1.5", ratio <= 1.5)
        res.add(
            f"4. … raw Playwright, {len(raw_ratios)} of the runs: {n} `connect_over_cdp` on one"
            " driver / one",
            spread(raw_ratios),
        )
        most = max(drivers)
        res.add(f"4. drivers started per {n} attaches (max over runs)", str(most), "1", most == 1)

    # -- 2. lag, and 5. the naive loop

    async def ours_lag(self, backend: Backend, admin: AsyncSkyvernClient) -> Lag:
        sid = await self.create(admin)
        seen: list[float] = []
        driver_running: list[bool] = []

        def on_status(session: BrowserSessionResponse) -> None:
            if session.is_ready and not seen:
                seen.append(now())
                driver_running.append(driver_stats().running)

        dials: list[float] = []
        with self.counter.watching(backend.base_url) as counter, timing_dials(dials):
            began = now()
            browser: Browser = await self.attach(backend, sid, on_status=on_status)
            in_hand = now()
            connections = counter.count
        try:
            ready = backend.ready_at(sid)
            check(ready is not None and seen, "the session was never seen ready")
            assert ready is not None
            self.waits.append(ready - began)
            self.dials.append(sum(dials))
            return Lag(
                lag=in_hand - ready,
                handoff=in_hand - seen[0],
                seen=seen[0] - ready,
                gets=backend.get_count(sid),
                connections=connections,
                driver_was_running=driver_running[0],
            )
        finally:
            await browser.close()
            self.close_later(admin, sid)

    async def naive_lag(self, backend: Backend, admin: AsyncSkyvernClient) -> Lag:
        """What people write by hand: GET, sleep(1), repeat; then start Playwright and dial."""
        sid = await self.create(admin)
        with self.counter.watching(backend.base_url) as counter:
            async with httpx.AsyncClient(
                base_url=backend.base_url, headers=self.auth(backend)
            ) as http:
                while True:
                    response = await http.get(f"/v1/browser_sessions/{sid}")
                    response.raise_for_status()
                    body = response.json()
                    if body.get("status") == "running" and body.get("browser_address"):
                        break
                    await asyncio.sleep(1)
            seen = now()
            connections = counter.count
        playwright = await async_playwright().start()
        driver_up = now()
        try:
            browser = await playwright.chromium.connect_over_cdp(
                body["browser_address"], headers=self.auth(backend)
            )
            in_hand = now()
            self.fresh_connects.append(in_hand - driver_up)
            await browser.close()
        finally:
            await playwright.stop()
            self.close_later(admin, sid)
        ready = backend.ready_at(sid)
        assert ready is not None
        return Lag(
            in_hand - ready, in_hand - seen, seen - ready, backend.get_count(sid), connections
        )

    async def lag(self, backend: Backend) -> None:
        log(f"2+5. readiness lag, ours vs a naive loop ({self.runs} runs each, 2-3 s waits)")
        admin = self.admin(backend)
        ours: list[Lag] = []
        naive: list[Lag] = []
        for run in range(self.runs):
            if run % 2 == 0:
                ours.append(await self.ours_lag(backend, admin))
                naive.append(await self.naive_lag(backend, admin))
            else:
                naive.append(await self.naive_lag(backend, admin))
                ours.append(await self.ours_lag(backend, admin))
        await asyncio.gather(*self.closing)
        res = self.results
        lags = res.keep("lag.ours", [x.lag for x in ours])
        handoffs = res.keep("handoff.ours", [x.handoff for x in ours])
        gets = res.keep("gets.2-3s.ours", [x.gets for x in ours])
        waits = res.keep("wait.2-3s.ours", self.waits)
        res.add(
            f"2. session ready → Browser in hand, median ({min(waits):.1f}–{max(waits):.1f} s"
            " waits)",
            ms(med(lags)),
            "≤ 350 ms",
            med(lags) <= 0.350,
        )
        res.add("2. … 90th percentile", ms(pct(lags, 0.9)))
        seen = res.keep("seen.ours", [x.seen for x in ours])
        res.add("2. … of which: ready → the GET that saw it, median", ms(med(seen)))
        res.add(
            "2. GET that saw it ready → Browser in hand, median",
            ms(med(handoffs)),
            "≤ 80 ms",
            med(handoffs) <= 0.080,
        )
        dials = res.keep("dial.ours", self.dials)
        res.add(
            "2. … of which inside Playwright's `connect_over_cdp` (a just-started browser)",
            ms(med(dials)),
        )
        own = [handoff - dial for handoff, dial in zip(handoffs, dials, strict=True)]
        res.add("2. … of which the library's own part", ms(med(res.keep("own.ours", own))))
        warm = sum(1 for x in ours if x.driver_was_running)
        res.add(
            "2. driver already up when the ready GET came back",
            f"{warm}/{len(ours)}",
            "all",
            warm == len(ours),
        )
        res.add("2. GETs for those waits, median", f"{med(gets):g}")
        most = max(x.connections for x in ours)
        res.add("2. HTTP connections opened per wait (max)", str(most), "1", most == 1)
        self.naive = naive

    def add_naive_rows(self) -> None:
        res, naive = self.results, self.naive
        lags = res.keep("lag.naive", [x.lag for x in naive])
        handoffs = res.keep("handoff.naive", [x.handoff for x in naive])
        gets = res.keep("gets.2-3s.naive", [x.gets for x in naive])
        res.add("5. naive loop: session ready → Browser in hand, median", ms(med(lags)))
        seen = res.keep("seen.naive", [x.seen for x in naive])
        res.add("5. … of which: ready → the GET that saw it, median", ms(med(seen)))
        res.add("5. naive loop: GET that saw it ready → Browser in hand", ms(med(handoffs)))
        fresh = res.keep("fresh_connect.naive", self.fresh_connects)
        res.add("5. … of which `connect_over_cdp` to the just-ready browser", ms(med(fresh)))
        res.add("5. naive loop: GETs for the same waits, median", f"{med(gets):g}")

    async def long_waits(self, backend: Backend, count: int) -> list[tuple[int, float]]:
        """Sessions that become ready after the backend's fixed delay: (GETs, wait) of each.

        They wait with ``wait_for_browser_session``, the same poll loop ``connect`` runs,
        without holding the shared driver (which would make the other measures warm). The
        wait is from the first GET to the backend marking the session running: the delay
        plus the Chromium start. Creations are spread so that the Chromiums do not all start
        at the same instant."""
        admin = self.admin(backend)

        async def one(index: int) -> tuple[int, float]:
            await asyncio.sleep(0.3 * index)
            sid = await self.create(admin)
            async with AsyncSkyvernClient(api_key=backend.api_key, base_url=backend.base_url) as c:
                began = now()
                await c.wait_for_browser_session(sid, timeout=180)
            ready = backend.ready_at(sid)
            assert ready is not None
            gets = backend.get_count(sid)
            await admin.close_browser_session(sid)
            return gets, ready - began

        return list(await asyncio.gather(*(one(index) for index in range(count))))

    def add_long_rows(self, label: str, waits: list[tuple[int, float]], budget: int) -> None:
        gets = self.results.keep(f"gets.{label}", [g for g, _ in waits])
        lengths = self.results.keep(f"wait.{label}", [w for _, w in waits])
        most = max(gets)
        self.results.add(
            f"2. GETs for a {label} wait (actual: {med(lengths):.1f} s), median / max of"
            f" {len(gets)}",
            f"{med(gets):g} / {most}",
            f"≤ {budget}",
            most <= budget,
        )

    # -- 6. the CLI

    def cli(self, backend: Backend, session_id: str) -> None:
        log(f"6. CLI cold start ({self.runs} runs)")
        exe = Path(sys.executable).with_name("skyvern-cdp")
        env = dict(os.environ, SKYVERN_BASE_URL=backend.base_url)
        env.pop("SKYVERN_API_KEY", None)
        if backend.api_key:
            env["SKYVERN_API_KEY"] = backend.api_key
        has_info = (
            subprocess.run(
                [str(exe), "info", "--help"], env=env, capture_output=True, check=False
            ).returncode
            == 0
        )
        if has_info:
            argv = [str(exe), "info", session_id]
            label = f"`skyvern-cdp info {session_id[:8]}…`"
        else:
            argv = [sys.executable, "-c", "import skyvern_cdp.client"]
            label = "`python -c 'import skyvern_cdp.client'` (no `info` command yet)"
        baseline = [sys.executable, "-c", "pass"]

        def timed(command: list[str]) -> float:
            start = now()
            done = subprocess.run(command, env=env, capture_output=True, check=False)
            took = now() - start
            if done.returncode != 0:
                raise RuntimeError(f"{command[-2:]} failed: {done.stderr.decode()[-500:]}")
            return took

        timed(argv)
        runs = [timed(argv) for _ in range(self.runs)]
        bare = [timed(baseline) for _ in range(self.runs)]
        python_x = [sys.executable, "-X", "importtime"]

        def imports_playwright(command: list[str]) -> bool:
            done = subprocess.run([*python_x, *command], env=env, capture_output=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"{command} failed: {done.stderr.decode()[-500:]}")
            return any(
                line.split("|")[-1].strip().startswith("playwright")
                for line in done.stderr.decode().splitlines()
                if line.startswith("import time:")
            )

        cli = ["-m", "skyvern_cdp.cli"]
        checked = (
            {name: imports_playwright([*cli, name, session_id]) for name in ("info", "wait")}
            if has_info
            else {"import skyvern_cdp.client": imports_playwright(argv[1:])}
        )
        res = self.results
        res.keep("cli", runs)
        res.keep("cli.python", bare)
        res.add(f"6. cold start of {label}, median", ms(med(runs)))
        res.add("6. … the interpreter alone (`python -c pass`)", ms(med(bare)))
        names = " / ".join(f"`{name}`" for name in checked)
        answers = " / ".join("yes" if found else "no" for found in checked.values())
        res.add(f"6. {names} import Playwright", answers, "no", not any(checked.values()))

    # -- all of it

    async def run(self, concurrency: int, only: set[str]) -> Results:
        started = now()
        fast = self.backend(ready_delay=0.0)
        admin = self.admin(fast)
        # One session alone first: how long the backend takes to start a Chromium.
        begun = now()
        first = await self.ready_session(admin)
        startup = (fast.ready_at(first.browser_session_id) or begun) - begun
        count = concurrency if "concurrent" in only else 2
        log(f"creating {count} running sessions (one Chromium starts in {startup:.2f} s)")
        created = await asyncio.gather(*(self.create(admin) for _ in range(count - 1)))
        sessions = [first] + [
            await admin.wait_for_browser_session(sid, timeout=60) for sid in created
        ]
        if "cold" in only:
            await self.cold(fast, sessions[0])
        if "warm" in only:
            await self.warm(fast, sessions[0].browser_session_id, sessions[1])
        if "concurrent" in only:
            await self.concurrent(fast, sessions)
        if "cli" in only:
            self.cli(fast, sessions[0].browser_session_id)
        await asyncio.gather(*(admin.close_browser_session(s.browser_session_id) for s in sessions))
        # The backend's delay comes before Chromium starts: the delays below have a median
        # Chromium start taken off, so that the waits (first GET to running) are as named.
        if "lag" in only:
            startup = await self.chromium_startup(fast, admin)
            low, high = max(0.0, 2.0 - startup), max(0.0, 3.0 - startup)
            await self.lag(self.backend(ready_delay=(low, high)))
            self.add_naive_rows()
        if "waits" in only:
            # Last and alone: their Chromiums start all at once when the delay ends, which
            # would disturb any timing running then. GET counts do not mind.
            waits = [(20.0, self.runs, 25)]
            if self.minute:
                waits.append((60.0, 3, 60))
            log("2. GETs of " + " and ".join(f"{n} {d:g} s waits" for d, n, _ in waits))
            startup = await self.chromium_startup(fast, admin)
            counted = await asyncio.gather(
                *(
                    self.long_waits(self.backend(ready_delay=max(0.0, d - startup)), n)
                    for d, n, _ in waits
                )
            )
            for (delay, _, budget), found in zip(waits, counted, strict=True):
                self.add_long_rows(f"{delay:g} s", found, budget)
        order = {"1": 0, "2": 1, "3": 2, "4": 3, "5": 4, "6": 5}
        self.results.rows.sort(key=lambda row: order.get(row.measure[:1], 9))
        self.results.notes.append(f"whole run: {now() - started:.0f} s")
        return self.results


MEASURES = ("cold", "warm", "concurrent", "cli", "lag", "waits", "gateway")


def load_average() -> str:
    return f"{os.getloadavg()[0]:.1f}" if hasattr(os, "getloadavg") else "?"


def environment() -> str:
    import platform

    from playwright._repo_version import version as playwright_version

    import skyvern_cdp

    return (
        f"{platform.python_implementation()} {platform.python_version()},"
        f" Playwright {playwright_version}, skyvern_cdp {skyvern_cdp.__version__},"
        f" {os.cpu_count()} CPUs"
    )


NOTES = """\
Notes: medians of {runs} runs; each ratio is taken inside one run (both sides back to back,
order alternating), its median reported with the interquartile range in brackets. One
process: the local backend (real Chromium, closed network) marks a session running at
`time.monotonic()`, the clock read when `connect` returns. Its delay comes before Chromium
starts, so each delay here is the wait named less a measured Chromium start (median of
three); the rows show the waits the sessions really had (first GET to running). "GET that
saw it ready" is the `on_status` callback, which fires when the polled status turns running
(after that GET's answer is parsed), so it leaves out the GET's own round trip.
`connect_over_cdp` is timed by wrapping Playwright's method during those attaches. GETs are
the backend's count for the session. The 20 s waits (and with --minute three 60 s waits) run
last, all at once, with `wait_for_browser_session` (the poll loop `connect` uses). HTTP
connections are counted with the `socket.connect` audit event."""


def main(argv: Sequence[str] | None = None, factory: BackendFactory | None = None) -> int:
    parser = argparse.ArgumentParser(prog="scripts/bench", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per measure (default 10)")
    parser.add_argument(
        "--concurrency", type=int, default=16, help="concurrent attaches (default 16)"
    )
    parser.add_argument(
        "--minute", action="store_true", help="also count the GETs of three 60 s waits (+40 s)"
    )
    parser.add_argument(
        "--only",
        default=",".join(MEASURES),
        help=f"comma-separated subset of {','.join(MEASURES)} (default: all)",
    )
    parser.add_argument("--json", type=Path, default=None, help="write every sample here")
    parser.add_argument(
        "--seed", type=int, default=None, help="seed for the drawn ready delays and poll jitter"
    )
    args = parser.parse_args(argv)
    if args.runs < 3:
        parser.error("--runs must be at least 3")
    if args.json is not None and not args.json.parent.is_dir():
        parser.error(f"--json: no directory {args.json.parent}")
    only = {name.strip() for name in args.only.split(",") if name.strip()}
    if not only or only - set(MEASURES):
        parser.error(f"--only takes names from {','.join(MEASURES)}")
    if args.concurrency < 2:
        parser.error("--concurrency must be at least 2")
    if args.seed is not None:
        random.seed(args.seed)
    if "gateway" in only:
        import bench_gateway  # beside this file: scripts/ is on sys.path when run as a script

        print(bench_gateway.table_of_one_run())
        print()
        only.discard("gateway")
        if not only:
            return 0
    counter = ConnectionCounter()
    bench = Bench(args.runs, factory or local_backend, counter, minute=args.minute)

    load_before = load_average()

    async def go() -> Results:
        try:
            return await bench.run(args.concurrency, only)
        finally:
            await bench.aclose()

    results = asyncio.run(go())
    print(results.table())
    print()
    print(NOTES.format(runs=args.runs))
    print(
        f"Machine: {environment()}; load average {load_before} before, {load_average()} after;"
        f" {'; '.join(results.notes)}."
    )
    if args.json is not None:
        args.json.write_text(json.dumps(results.samples, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
