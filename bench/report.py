"""Results: one row per scenario and system with every run's figures, the comparison of each
Conveyor variant with the best peer, the printed table and the JSON document."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from bench.measure import Summary
from bench.plan import Plan
from bench.scenarios import SCENARIO_INFO, Metric, describe, metrics_of

Status = Literal["ok", "error", "n/a", "unavailable"]


@dataclass
class Run:
    metrics: dict[str, float]
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Row:
    scenario: str
    system: str
    status: Status = "ok"
    reason: str = ""
    runs: list[Run] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self, metric: str) -> Summary:
        return Summary.of([run.metrics[metric] for run in self.runs if metric in run.metrics])

    def as_json(self, plan: Plan) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "system": self.system,
            "status": self.status,
            "reason": self.reason or None,
            "metrics": {
                metric.key: self.summary(metric.key).as_json()
                for metric in metrics_of(self.scenario, plan)
                if any(metric.key in run.metrics for run in self.runs)
            },
            "runs": [{"metrics": run.metrics, "details": run.details} for run in self.runs],
            "errors": self.errors,
        }


@dataclass(frozen=True, slots=True)
class Comparison:
    scenario: str
    metric: str
    system: str
    value: float
    best_peer: str
    best_value: float

    @property
    def ratio(self) -> float:
        return self.value / self.best_value if self.best_value else math.nan

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "metric": self.metric,
            "conveyor_system": self.system,
            "conveyor_median": self.value,
            "best_peer": self.best_peer,
            "best_peer_median": self.best_value,
            "ratio": self.ratio,
            "higher_is_better": _metric(self.scenario, self.metric).higher_is_better,
        }


def _metric(scenario: str, key: str) -> Metric:
    return next(m for m in SCENARIO_INFO[scenario].metrics if m.key == key)


def compare(rows: list[Row], conveyor_systems: set[str]) -> list[Comparison]:
    """Each Conveyor variant's median against the best peer median, per compared metric."""
    comparisons = []
    for scenario, info in SCENARIO_INFO.items():
        scenario_rows = [r for r in rows if r.scenario == scenario and r.status == "ok"]
        for key in info.compared:
            higher = _metric(scenario, key).higher_is_better
            peers = [
                (r.summary(key).median, r.system)
                for r in scenario_rows
                if r.system not in conveyor_systems and not math.isnan(r.summary(key).median)
            ]
            if not peers:
                continue
            best_value, best_system = max(peers) if higher else min(peers)
            for row in scenario_rows:
                if row.system in conveyor_systems:
                    value = row.summary(key).median
                    if not math.isnan(value):
                        comparisons.append(
                            Comparison(scenario, key, row.system, value, best_system, best_value)
                        )
    return comparisons


def _cell(summary: Summary, fmt: str, repeat: int) -> str:
    if math.isnan(summary.median):
        return "-"
    text = fmt.format(summary.median)
    if repeat > 1 and len(summary.runs) > 1:
        text += f" [{fmt.format(summary.low)}..{fmt.format(summary.high)}]"
    return text


def _ratio_text(comparison: Comparison) -> str:
    ratio = comparison.ratio
    higher = _metric(comparison.scenario, comparison.metric).higher_is_better
    better = ratio > 1 if higher else ratio < 1
    verdict = "better" if better else "worse"
    if math.isclose(ratio, 1.0, rel_tol=0.02):
        verdict = "even"
    return f"{ratio:.2f}x {comparison.best_peer} ({verdict})"


def render_table(rows: list[Row], plan: Plan, header: list[str]) -> str:
    conveyor = {r.system for r in rows if r.system.startswith("conveyor")}
    comparisons = compare(rows, conveyor)
    lines = [*header, ""]
    systems_width = max(len(r.system) for r in rows) if rows else 10
    for scenario in plan.scenarios:
        info = SCENARIO_INFO[scenario]
        scenario_rows = [r for r in rows if r.scenario == scenario]
        if not scenario_rows:
            continue
        lines.append(f"== {scenario}: {describe(scenario, plan)}")
        shown = list(metrics_of(scenario, plan))
        cells: list[list[str]] = [
            ["system", *(m.label for m in shown), *(f"{k}: vs best peer" for k in info.compared)]
        ]
        for row in scenario_rows:
            if row.status != "ok":
                cells.append([row.system, f"{row.status}: {row.reason}"])
                continue
            ratio_cells = []
            for key in info.compared:
                found = [
                    c
                    for c in comparisons
                    if c.scenario == scenario and c.metric == key and c.system == row.system
                ]
                ratio_cells.append(_ratio_text(found[0]) if found else "")
            cells.append(
                [
                    row.system,
                    *(_cell(row.summary(m.key), m.fmt, plan.repeat) for m in shown),
                    *ratio_cells,
                ]
            )
        widths = [0] * max(len(c) for c in cells)
        for line in cells:
            if len(line) == 2 and line[1].split(":")[0] in ("error", "n/a", "unavailable"):
                continue
            for index, text in enumerate(line):
                widths[index] = max(widths[index], len(text))
        widths[0] = max(widths[0], systems_width)
        for line in cells:
            if len(line) == 2 and line[1].split(":")[0] in ("error", "n/a", "unavailable"):
                lines.append(f"  {line[0]:<{widths[0]}}  {line[1]}")
                continue
            lines.append(
                "  "
                + "  ".join(
                    f"{text:<{widths[i]}}" if i == 0 else f"{text:>{widths[i]}}"
                    for i, text in enumerate(line)
                ).rstrip()
            )
        lines.append("")
    return "\n".join(lines)
