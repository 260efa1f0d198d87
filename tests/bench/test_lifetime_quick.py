"""`python -m bench.lifetime` end to end at `--quick` sizes: it fills a database with
history, measures it against an empty one, prunes, soaks, prints its table and writes its
JSON. Nothing here looks at how fast anything was."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
FIGURES = ("create", "list_first", "list_deep", "list_failed", "read", "sse_resume", "job_replay")


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_quick_lifetime_run_writes_every_figure(tmp_path: Path) -> None:
    out = tmp_path / "lifetime.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench.lifetime", "--quick", "--out", str(out)],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=290,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    document = json.loads(out.read_text())
    assert set(document["results"]) == {"conveyor", "conveyor-sqlite"}
    for system, results in document["results"].items():
        history = results["history"]
        for figure in FIGURES:
            ratio = history["ratios_full_over_empty"][figure]
            assert math.isfinite(ratio), (system, figure)
        assert history["prune_pass"]["jobs_deleted"] > 0, system
        assert history["plans"], "the statements' plans are recorded"
        soaks = results["soak"]
        assert len(soaks) == (2 if system == "conveyor" else 1)
        for soak in soaks:
            assert soak["jobs_through"] > 0
            assert soak["rounds"][-1]["sizes"], system
    assert "== history / conveyor" in result.stdout
