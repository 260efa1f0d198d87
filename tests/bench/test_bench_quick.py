"""The benchmark harness end to end, at `--quick` sizes: it runs every scenario for every
system, prints its table and writes a JSON row per scenario and system. Nothing here looks at
how fast anything was: figures from a shared test machine mean nothing."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATUSES = {"ok", "n/a", "unavailable"}
"""`unavailable`: a peer that is not installed here (scripts/bench.sh installs them all)."""
WRK_ROW = ("enqueue-single", "conveyor-http")
"""Driven by wrk, which only scripts/bench.sh installs: unavailable without it."""


# The quick run took ~3 minutes on its own on a 2-core machine (177-187 s at e2ff42a) and
# 348-431 s beside the suite; with the quick plan's shorter waits and sizes, 119-122 s alone
# on the same machine. Most of what is left is fixed cost: some 13 `conveyor serve` starts
# (mostly imports) and the client processes.
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_quick_run_prints_a_table_and_writes_a_row_per_scenario_and_system(
    tmp_path: Path,
) -> None:
    out = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=880,
    )
    assert result.returncode == 0, result.stderr[-5000:]

    document = json.loads(out.read_text())
    scenarios = document["environment"]["plan"]["scenarios"]
    systems = list(document["systems"])
    assert {
        "drain",
        "latency",
        "enqueue-single",
        "enqueue-single-httpx",
        "enqueue-bulk",
        "slots",
        "contention",
        "sse-1",
        "sse-quiet",
        "sse-many",
    } <= set(scenarios)
    assert {"conveyor", "conveyor-http", "conveyor-sqlite"} <= set(systems)
    assert document["environment"]["postgresql"]["fsync"] == "on"

    rows = {(row["scenario"], row["system"]): row for row in document["rows"]}
    assert len(rows) == len(document["rows"]), "one row per scenario and system"
    assert set(rows) == {(scenario, system) for scenario in scenarios for system in systems}
    for (scenario, system), row in rows.items():
        assert row["status"] in STATUSES, (scenario, system, row["status"], row["errors"])
        if document["systems"][system]["is_conveyor"] and (scenario, system) != WRK_ROW:
            assert row["status"] != "unavailable", (scenario, system)
        if row["status"] != "ok":
            assert row["reason"], (scenario, system)
            continue
        # One run each; `slots`: one per slot count tried, and the choice.
        tried = len(document["environment"]["plan"]["slot_choices"])
        runs = tried + 1 if scenario == "slots" else 1
        assert len(row["runs"]) == runs, (scenario, system)
        for name, summary in row["metrics"].items():
            assert isinstance(summary["median"], int | float), (scenario, system, name)
            assert math.isfinite(summary["median"]), (scenario, system, name)

    # Each Conveyor variant ran with the slots `slots` chose; the SSE scenarios and wrk ran.
    for system in ("conveyor", "conveyor-http", "conveyor-sqlite"):
        chosen = rows[("slots", system)]["metrics"]["chosen"]["median"]
        assert f"{chosen:.0f} slots" in document["systems"][system]["settings"]["worker"]
    for scenario in ("sse-1", "sse-quiet", "sse-many"):
        for system in ("conveyor-http", "conveyor-sqlite"):
            assert rows[(scenario, system)]["status"] == "ok", rows[(scenario, system)]
    if shutil.which("wrk") is not None:
        wrk_run = rows[WRK_ROW]["runs"][0]["details"]
        assert wrk_run["not_created"] == 0
        assert wrk_run["client"].startswith("wrk ")
    else:
        assert rows[WRK_ROW]["status"] == "unavailable"

    table = result.stdout
    for scenario in scenarios:
        assert f"== {scenario}:" in table
    for system in systems:
        assert f"  {system} " in table
