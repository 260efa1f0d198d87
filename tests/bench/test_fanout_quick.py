"""The `sse-fanout` scenario end to end at `--quick` sizes: for each Conveyor server variant,
a row with every figure for every follower count, every stream got every event, no create
was refused. Nothing here looks at how fast anything was."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_quick_fanout_run_reports_creates_and_lag_for_every_follower_count(
    tmp_path: Path,
) -> None:
    out = tmp_path / "fanout.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--only", "sse-fanout", "--out", str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=140,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    document = json.loads(out.read_text())
    followers = document["environment"]["plan"]["sse_fanout_followers"]
    assert 0 in followers
    assert any(followers)
    rows = {row["system"]: row for row in document["rows"] if row["scenario"] == "sse-fanout"}
    assert rows["conveyor"]["status"] == "n/a"
    for system in ("conveyor-http", "conveyor-sqlite"):
        row = rows[system]
        assert row["status"] == "ok", (system, row["errors"])
        [run] = row["runs"]
        for n in followers:
            wanted = {f"creates_per_s_{n}", f"server_cpu_pct_{n}"}
            if n:
                wanted |= {f"lag_p50_ms_{n}", f"lag_p99_ms_{n}", f"behind_s_{n}"}
            for name in wanted:
                assert math.isfinite(run["metrics"][name]), (system, name)
            window = run["details"][str(n)]
            assert window["refused"] == {}, (system, n)
            assert window["created"] > 0, (system, n)
            if n:
                assert window["streams_streams"] == n
                assert window["streams_complete"], (system, n)
                assert window["streams_events_min"] == 2 * (
                    window["warmup_created"] + window["created"]
                ), (system, n)
    assert "== sse-fanout:" in result.stdout
