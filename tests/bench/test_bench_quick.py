"""The benchmark harness end to end, at `--quick` sizes: it runs every scenario for every
system, prints its table and writes a JSON row per scenario and system. Nothing here looks at
how fast anything was: figures from a shared test machine mean nothing."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STATUSES = {"ok", "n/a", "unavailable"}
"""`unavailable`: a peer that is not installed here (scripts/bench.sh installs them all)."""


@pytest.mark.slow
@pytest.mark.timeout(180)
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
        timeout=170,
    )
    assert result.returncode == 0, result.stderr[-5000:]

    document = json.loads(out.read_text())
    scenarios = document["environment"]["plan"]["scenarios"]
    systems = list(document["systems"])
    assert {"drain", "latency", "enqueue-single", "enqueue-bulk", "contention"} <= set(scenarios)
    assert {"conveyor", "conveyor-http", "conveyor-sqlite"} <= set(systems)
    assert document["environment"]["postgresql"]["fsync"] == "on"

    rows = {(row["scenario"], row["system"]): row for row in document["rows"]}
    assert len(rows) == len(document["rows"]), "one row per scenario and system"
    assert set(rows) == {(scenario, system) for scenario in scenarios for system in systems}
    for (scenario, system), row in rows.items():
        assert row["status"] in STATUSES, (scenario, system, row["status"], row["errors"])
        if document["systems"][system]["is_conveyor"]:
            assert row["status"] != "unavailable", (scenario, system)
        if row["status"] != "ok":
            assert row["reason"], (scenario, system)
            continue
        assert len(row["runs"]) == 1, (scenario, system)
        for name, summary in row["metrics"].items():
            assert isinstance(summary["median"], int | float), (scenario, system, name)
            assert math.isfinite(summary["median"]), (scenario, system, name)

    table = result.stdout
    for scenario in scenarios:
        assert f"== {scenario}:" in table
    for system in systems:
        assert f"  {system} " in table
