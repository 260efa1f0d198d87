"""`ScansAhead` without a database: which scans read ahead a claim takes, and when it scans
afresh instead."""

from __future__ import annotations

import asyncio
import gc
from uuid import UUID

import pytest

from conveyor.store.claims import KeyScan, ScopeKey
from conveyor.store.scans_ahead import SCAN_AHEAD_SECONDS, Scans, ScansAhead

A, B = UUID(int=1), UUID(int=2)
SCOPE = ScopeKey(None, None)
OTHER_SCOPE = ScopeKey(None, ("t",))


async def read(scans: Scans) -> Scans:
    return scans


async def failing() -> Scans:
    raise ConnectionError("the connection went")


async def test_the_next_claim_takes_the_scans_read_from_where_it_starts() -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, {A: "k2"}, 3, read({A: KeyScan(("k3",), ("k0", "k1"))}))
    assert await ahead.take(SCOPE, {A: "k2"}, 3) == {A: KeyScan(("k3",), ("k0", "k1"))}
    assert await ahead.take(SCOPE, {A: "k2"}, 3) is None, "scans serve one claim"


async def test_a_claim_that_starts_elsewhere_or_wants_more_keys_scans_afresh() -> None:
    ahead = ScansAhead()
    three = {A: KeyScan(("k3", "k4", "k5"))}
    ahead.start(SCOPE, {A: "k2"}, 3, read(three))
    assert await ahead.take(SCOPE, {A: "k3"}, 3) is None
    ahead.start(SCOPE, {A: "k2"}, 3, read(three))
    assert await ahead.take(SCOPE, {A: "k2", B: ""}, 3) is None, "B was not read"
    ahead.start(SCOPE, {A: "k2"}, 3, read(three))
    assert await ahead.take(SCOPE, {A: "k2"}, 4) is None, "there may be a fourth key"
    ahead.start(SCOPE, {A: "k2"}, 3, read(three))
    assert await ahead.take(SCOPE, {A: "k2"}, 2) == {A: KeyScan(("k3", "k4"))}


async def test_scans_that_read_every_key_serve_a_claim_that_wants_more() -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, {A: "k1"}, 3, read({A: KeyScan(("k2",), ("k0",))}))
    assert await ahead.take(SCOPE, {A: "k1"}, 10) == {A: KeyScan(("k2",), ("k0",))}


async def test_scans_are_kept_per_scope_and_the_newest_serves() -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, {A: ""}, 2, read({A: KeyScan(("old",))}))
    ahead.start(SCOPE, {A: ""}, 2, read({A: KeyScan(("new",))}))
    ahead.start(OTHER_SCOPE, {A: ""}, 2, read({A: KeyScan(("other",))}))
    assert await ahead.take(SCOPE, {A: ""}, 2) == {A: KeyScan(("new",))}
    assert await ahead.take(OTHER_SCOPE, {A: ""}, 2) == {A: KeyScan(("other",))}


async def test_keyed_jobs_or_a_claim_short_of_its_ask_drop_the_scans() -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, {A: "", B: ""}, 2, read({A: KeyScan(("a",)), B: KeyScan(("b",))}))
    ahead.start(OTHER_SCOPE, {B: ""}, 2, read({B: KeyScan(("b",))}))
    ahead.forget(A)
    assert await ahead.take(SCOPE, {A: "", B: ""}, 2) is None
    ahead.forget_scope(OTHER_SCOPE)
    assert await ahead.take(OTHER_SCOPE, {B: ""}, 2) is None


async def test_stale_or_failed_scans_are_not_taken() -> None:
    clock = [100.0]
    ahead = ScansAhead(lambda: clock[0])
    ahead.start(SCOPE, {A: ""}, 2, failing())
    assert await ahead.take(SCOPE, {A: ""}, 2) is None
    ahead.start(SCOPE, {A: ""}, 2, read({A: KeyScan(("a",))}))
    clock[0] += SCAN_AHEAD_SECONDS + 0.01
    assert await ahead.take(SCOPE, {A: ""}, 2) is None


async def test_closing_stops_every_scan_still_running_and_starts_no_other() -> None:
    ahead = ScansAhead()
    loop = asyncio.get_running_loop()
    replaced, dropped, newest = (loop.create_future() for _ in range(3))
    ahead.start(SCOPE, {A: ""}, 2, replaced)
    ahead.start(SCOPE, {A: ""}, 2, newest)
    ahead.start(OTHER_SCOPE, {A: ""}, 2, dropped)
    ahead.forget(A)
    await ahead.close()
    assert [f.cancelled() for f in (replaced, dropped, newest)] == [True, True, True]
    late = loop.create_future()
    ahead.start(SCOPE, {A: ""}, 2, late)
    assert late.cancelled()
    assert await ahead.take(SCOPE, {A: ""}, 2) is None


async def test_a_claim_waiting_for_scans_the_store_stops_scans_afresh() -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, {A: ""}, 2, asyncio.get_running_loop().create_future())
    waiting = asyncio.ensure_future(ahead.take(SCOPE, {A: ""}, 2))
    await asyncio.sleep(0)
    await ahead.close()
    assert await waiting is None


async def test_failed_scans_no_claim_took_are_not_logged_as_never_retrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, {A: ""}, 2, failing())
    ahead.forget(A)
    for _ in range(3):
        await asyncio.sleep(0)
    del ahead
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
