"""SQLite's plans for the statements whose cost must not grow with the history: each one
seeks an index to where it starts, instead of reading a workspace's jobs or events from the
first. (SQLite plans without statistics, so the plan is the same on any data; PostgreSQL's
depend on its statistics: `python -m bench.lifetime` prints them on a filled database.)"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from conveyor.domain.job_lists import JobFilter
from conveyor.domain.status import JobStatus
from conveyor.store.job_lists import filter_conditions
from conveyor.store.migrate import upgrade
from conveyor.store.queries import queries_for
from conveyor.store.urls import DatabaseURL

QUERIES = queries_for("sqlite")


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path: Path = tmp_path_factory.mktemp("plans") / "plans.db"
    upgrade(DatabaseURL.parse(f"sqlite:///{path}"))
    connection = sqlite3.connect(path)
    connection.create_function("conveyor_after", 1, lambda seconds: 0.0)  # as the store does
    connection.create_function("conveyor_now", 0, lambda: 0.0)
    return connection


def plan(database: sqlite3.Connection, sql: str, params: dict[str, Any]) -> str:
    rows = database.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
    return "\n".join(str(row[3]) for row in rows)


def where(job_filter: JobFilter) -> tuple[str, dict[str, Any]]:
    conditions, params = filter_conditions(job_filter)
    return " AND ".join(["workspace_id = :ws", *conditions]), {**params, "ws": "w"}


def test_a_workspace_stream_resumes_by_seeking_its_event(database: sqlite3.Connection) -> None:
    found = plan(
        database, QUERIES["workspace_events_after"].sql, {"ws": "w", "tx": 0, "id": 9, "limit": 5}
    )
    assert "ix_events_workspace_position (workspace_id=? AND tx=? AND id>?)" in found, found


def test_the_total_of_one_final_status_counts_in_the_status_index(
    database: sqlite3.Connection,
) -> None:
    # (Its page walks the list's own index, newest first, which is in its order.)
    conditions, params = where(JobFilter(statuses=frozenset({JobStatus.FAILED})))
    total = QUERIES["count_jobs_bounded"].compose(conditions=conditions)
    found = plan(database, total, {**params, "bound": 10_001})
    assert "ix_jobs_workspace_status (workspace_id=? AND status=?)" in found, found


def test_a_page_after_a_cursor_seeks_the_cursor(database: sqlite3.Connection) -> None:
    conditions, params = where(JobFilter())
    page = QUERIES["list_jobs_page"].compose(
        conditions=conditions, after=QUERIES["after_cursor"].sql
    )
    found = plan(
        database,
        page,
        {**params, "limit": 50, "offset": 0, "cursor_id": "x", "cursor_created_at": 1.0},
    )
    assert "ix_jobs_workspace_created (workspace_id=? AND (created_at,id)<(?,?))" in found, found


def test_the_pruner_s_selection_reads_finished_jobs_of_one_status_oldest_first(
    database: sqlite3.Connection,
) -> None:
    found = plan(
        database,
        QUERIES["select_prunable_jobs"].sql,
        {"ws": "w", "status": "COMPLETED", "age": -86_400.0, "limit": 500},
    )
    assert "ix_jobs_workspace_finished (workspace_id=? AND status=? AND completed_at<?)" in found
    assert "TEMP B-TREE" not in found, "no sort: the index is in completed_at order"


@pytest.mark.parametrize(
    ("group", "params"),
    [("concurrency_key IS NULL", {}), ("concurrency_key = :key", {"key": "k"})],
)
def test_a_claim_reads_each_group_in_the_order_of_the_claimable_index(
    database: sqlite3.Connection, group: str, params: dict[str, Any]
) -> None:
    # Not through ix_jobs_due, whose due condition looks as good: that read every due job
    # of the workspace and sorted them, for each group of a claim.
    sql = QUERIES["pick_group"].compose(group=group, type_condition="")
    found = plan(database, sql, {**params, "ws": "w", "share": 10})
    assert "ix_jobs_claimable" in found, found
    assert "TEMP B-TREE" not in found, found


def test_limit_states_read_each_limit_by_its_key_and_the_type_limits_by_their_index(
    database: sqlite3.Connection,
) -> None:
    sql = QUERIES["limit_states"].compose(
        named=QUERIES["named_limits"].sql,
        workspaces=QUERIES.in_list("l.workspace_id", "workspaces"),
    )
    found = plan(
        database,
        sql,
        {"limit_ws": '["w"]', "limit_names": '["k"]', "limit_most": "[1]", "workspaces": '["w"]'},
    )
    assert "sqlite_autoindex_limits" in found, found
    assert "ix_limits_types" in found, found
    assert "SCAN l" not in found, found


@pytest.mark.parametrize(("matches"), ["concurrency_key = :value", "type = :value"])
def test_a_new_limit_counts_the_running_jobs_of_its_name_through_the_running_jobs_index(
    database: sqlite3.Connection, matches: str
) -> None:
    # Not through an index led by the workspace, which holds its whole history.
    sql = QUERIES["count_into_limit"].compose(
        workspace=QUERIES.unindexed("workspace_id"), matches=matches
    )
    found = plan(database, sql, {"ws": "w", "value": "v"})
    assert "ix_jobs_lease_expiry" in found, found


def test_a_claims_plan_finds_each_workspaces_due_jobs_through_the_claimable_index(
    database: sqlite3.Connection,
) -> None:
    # Both looks (a job with a key, one without) seek ix_jobs_claimable; neither reads the
    # workspace's history (on PostgreSQL an EXISTS once walked it by creation time).
    sql = QUERIES["claim_plan"].compose(scope="1 = 1", type_condition="")
    found = plan(database, sql, {})
    assert found.count("ix_jobs_claimable") == 2, found
    assert "SCAN j" not in found, found
