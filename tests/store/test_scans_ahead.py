"""`ScansAhead` without a database: which scan read ahead a claim takes, and when it scans
afresh instead."""

from __future__ import annotations

import asyncio
import gc
from uuid import UUID

import pytest

from conveyor.store import scans_ahead
from conveyor.store.claims import KeyScan, ScopeKey
from conveyor.store.scans_ahead import ScansAhead

A, B = UUID(int=1), UUID(int=2)
SCOPE = ScopeKey(None, None)
OTHER_SCOPE = ScopeKey(None, ("t",))


async def read(scan: KeyScan) -> KeyScan:
    return scan


async def failing() -> KeyScan:
    raise ConnectionError("the connection went")


async def test_the_next_claim_takes_the_scan_read_from_where_it_starts() -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, A, "k2", 3, read(KeyScan(("k3",), ("k0", "k1"))))
    assert await ahead.take(SCOPE, A, "k2", 3) == KeyScan(("k3",), ("k0", "k1"))
    assert await ahead.take(SCOPE, A, "k2", 3) is None, "a scan serves one claim"


async def test_a_claim_that_starts_elsewhere_or_wants_more_keys_scans_afresh() -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, A, "k2", 3, read(KeyScan(("k3", "k4", "k5"))))
    assert await ahead.take(SCOPE, A, "k3", 3) is None
    ahead.start(SCOPE, A, "k2", 3, read(KeyScan(("k3", "k4", "k5"))))
    assert await ahead.take(SCOPE, A, "k2", 4) is None, "there may be a fourth key"
    ahead.start(SCOPE, A, "k2", 3, read(KeyScan(("k3", "k4", "k5"))))
    assert await ahead.take(SCOPE, A, "k2", 2) == KeyScan(("k3", "k4"))


async def test_a_scan_that_read_every_key_serves_a_claim_that_wants_more() -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, A, "k1", 3, read(KeyScan(("k2",), ("k0",))))
    assert await ahead.take(SCOPE, A, "k1", 10) == KeyScan(("k2",), ("k0",))


async def test_scans_are_kept_per_scope_and_workspace() -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, A, "", 2, read(KeyScan(("a",))))
    ahead.start(SCOPE, B, "", 2, read(KeyScan(("b",))))
    assert await ahead.take(OTHER_SCOPE, A, "", 2) is None
    assert await ahead.take(SCOPE, B, "", 2) == KeyScan(("b",))
    assert await ahead.take(SCOPE, A, "", 2) == KeyScan(("a",))


async def test_new_jobs_or_a_fruitless_claim_drop_the_scans_read_ahead() -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, A, "", 2, read(KeyScan(("a",))))
    ahead.start(SCOPE, B, "", 2, read(KeyScan(("b",))))
    ahead.forget(A)
    assert await ahead.take(SCOPE, A, "", 2) is None
    ahead.forget_scope(SCOPE)
    assert await ahead.take(SCOPE, B, "", 2) is None


async def test_a_stale_or_failed_scan_is_not_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, A, "", 2, failing())
    assert await ahead.take(SCOPE, A, "", 2) is None
    clock = [100.0]
    monkeypatch.setattr(scans_ahead.time, "monotonic", lambda: clock[0])
    ahead.start(SCOPE, A, "", 2, read(KeyScan(("a",))))
    clock[0] += scans_ahead.SCAN_AHEAD_SECONDS + 0.01
    assert await ahead.take(SCOPE, A, "", 2) is None


async def test_a_failed_scan_no_claim_took_is_not_logged_as_never_retrieved(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ahead = ScansAhead()
    ahead.start(SCOPE, A, "", 2, failing())
    ahead.forget(A)
    for _ in range(3):
        await asyncio.sleep(0)
    del ahead
    gc.collect()
    assert not [r for r in caplog.records if "never retrieved" in r.getMessage()]
