"""The named queries: one home per statement, composed from parts, guards from the table."""

from __future__ import annotations

import inspect
from importlib import resources

import pytest

from conveyor.domain.capacity import TYPE_LIMIT_PREFIX
from conveyor.domain.jobs import CLAIMABLE_STATUS, JobStatus, sources_for
from conveyor.store.jobs import JobStore, SharedJobStatements
from conveyor.store.postgres_jobs import PostgresJobStore
from conveyor.store.queries import (
    Queries,
    is_type_limit,
    parse_queries,
    queries_for,
    status_condition,
)
from conveyor.store.sqlite_jobs import SqliteJobStore

STORES = (PostgresJobStore, SqliteJobStore)


def test_both_dialects_load_and_define_what_the_other_does() -> None:
    postgres, sqlite = queries_for("postgresql"), queries_for("sqlite")
    # What only one database runs, and why: PostgreSQL's one-statement batches and its
    # transaction horizon; SQLite's one-row statements run in a batch on its thread;
    # PostgreSQL's planner estimates a long list's total, SQLite keeps no statistics; the
    # pruner deletes a batch in one statement there, in two on SQLite; a plan read outside
    # the claim lock is checked under it there (limits_came), SQLite reads it in the claim;
    # a claim's key scans are one round trip there (claimable_keys_of_workspaces), SQLite
    # runs one scan a workspace in the same thread.
    only_postgres = {
        "group_picks",
        "claimable_keys_of_workspaces",
        "picked_unlimited",
        "picked_limited",
        "admitted",
        "limits_came",
        "insert_jobs",
        "skip_known_idempotency_keys",
        "answer_creation_time",
        "answer_inserted_jobs",
        "complete_jobs",
        "apply_change_with_events",
        "no_leaves",
        "foreign_events_exist",
        "adopt_all_events",
        "take_adoption_lock",
        "no_statement_timeout",
        "events_in_ranges",
        "estimate_jobs",
    }
    only_sqlite = {
        "insert_job",
        "pick_group",
        "record_start",
        "complete_job",
        "events_in_range",
        "prune_events",
    }
    assert postgres.names - sqlite.names == only_postgres
    assert sqlite.names - postgres.names == only_sqlite


def test_a_name_is_defined_once_and_parts_are_all_or_nothing() -> None:
    with pytest.raises(ValueError, match="defined twice"):
        parse_queries("-- name: a\nSELECT 1;\n-- name: a\nSELECT 2;\n", "test.sql")
    [query] = parse_queries(
        "-- name: pick\n-- a note, not sent\nSELECT {job_columns:j} FROM jobs j WHERE {where}\n",
        "test.sql",
    ).values()
    assert query.parts == {"where"}
    assert "a note" not in query.template
    assert query.template.startswith("SELECT j.id, j.workspace_id, j.type, j.status")
    assert query.compose(where="j.id = :id").endswith("WHERE j.id = :id")
    with pytest.raises(ValueError, match="takes parts"):
        query.compose()
    with pytest.raises(ValueError, match="needs its parts"):
        _ = query.sql
    with pytest.raises(ValueError, match=r"test.sql: a: \{governed\} needs a table"):
        parse_queries("-- name: a\nSELECT 1 FROM jobs WHERE {governed}\n", "test.sql")


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_hot_path_guards_come_from_the_transition_table(dialect: str) -> None:
    queries = Queries(dialect)  # type: ignore[arg-type]
    claim = queries["group_picks" if dialect == "postgresql" else "pick_group"].template
    assert status_condition([CLAIMABLE_STATUS]) in claim
    completable = sources_for(JobStatus.COMPLETED)
    if dialect == "postgresql":
        assert status_condition(completable, "jobs.status") in queries["complete_jobs"].template
    else:
        assert status_condition(completable) in queries["complete_job"].template


# Where a status may be written out in a query file: the statuses a creation stores and
# the events it writes for them (decide_creation_events), and throughput by final status.
STATUS_WRITTEN_OUT_IN = {"insert_jobs", "throughput_by_minute"}


@pytest.mark.parametrize("file_name", ["shared.sql", "postgres.sql", "sqlite.sql"])
def test_no_query_file_restates_a_status(file_name: str) -> None:
    text = resources.files("conveyor.store").joinpath("sql", file_name).read_text("utf-8")
    for block in text.split("-- name: ")[1:]:
        name, _, body = block.partition("\n")
        sql = "\n".join(line for line in body.splitlines() if not line.lstrip().startswith("--"))
        if name.strip() in STATUS_WRITTEN_OUT_IN:
            continue
        for status in JobStatus:
            assert f"'{status.value}'" not in sql, f"{file_name}: {name} restates {status}"


@pytest.mark.parametrize("file_name", ["shared.sql", "postgres.sql", "sqlite.sql"])
def test_no_query_file_restates_how_type_limits_are_named(file_name: str) -> None:
    """`type:<type>` is the domain's (TYPE_LIMIT_PREFIX): queries say {type_limit:j},
    {is_type_limit:l} and {limited_type:l}."""
    text = resources.files("conveyor.store").joinpath("sql", file_name).read_text("utf-8")
    sql = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("--"))
    assert f"'{TYPE_LIMIT_PREFIX}'" not in sql


def test_type_limit_parts_are_filled_from_the_domains_prefix() -> None:
    loaded = queries_for("postgresql")
    assert f"'{TYPE_LIMIT_PREFIX}' || c.type" in loaded["start_jobs"].template
    assert is_type_limit("l.name") in loaded["limit_states"].template


@pytest.mark.parametrize("store", STORES)
def test_each_store_is_a_complete_job_store_that_overrides_nothing_it_shares(
    store: type[SharedJobStatements],
) -> None:
    wanted = {
        name for name, member in inspect.getmembers(JobStore) if inspect.iscoroutinefunction(member)
    }
    assert wanted <= {name for name, _ in inspect.getmembers(store)}, "incomplete store"
    shared = {
        name
        for name, member in vars(SharedJobStatements).items()
        if callable(member) and not name.startswith("__")
    }
    overridden = shared & set(vars(store))
    assert overridden == set(), f"{store.__name__} overrides what it shares: {overridden}"
