"""Named queries: every statement the store sends, kept in `.sql` files and loaded once.

    store/sql/shared.sql      statements that read the same on both databases
    store/sql/postgres.sql    PostgreSQL's own (each says why it differs)
    store/sql/sqlite.sql      SQLite's own (each says why it differs)

A query is a block that starts with `-- name: <name>`; comment lines in it are notes for
the reader and are not sent. A name is defined once across `shared.sql` and a dialect's
file: a statement either reads the same on both databases or is written for each.

A query may hold *parts*, `{name}` (or `{name:table}`, a column list qualified by a
table): the column lists and status conditions below are filled in when the file is
loaded; the rest (a filter's conditions, a change's assignments) are given to
`Query.compose` by the code that builds the statement. Queries are built by composing
parts, never by cutting or splicing statement text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final, Literal

from conveyor.domain.capacity import TYPE_LIMIT_PREFIX
from conveyor.domain.jobs import COMPLETED_VALUES
from conveyor.domain.status import (
    CLAIMABLE_STATUS,
    LEASED_STATUS,
    TERMINAL_STATUSES,
    UNFINISHED_STATUSES,
    JobStatus,
    sources_for,
)

DialectName = Literal["postgresql", "sqlite"]

JOB_COLUMNS: Final = (
    "id",
    "workspace_id",
    "type",
    "status",
    "priority",
    "payload",
    "result",
    "error",
    "progress_percent",
    "agent_task_id",
    "attempt",
    "max_attempts",
    "run_at",
    "idempotency_key",
    "worker_id",
    "lease_id",
    "lease_expires_at",
    "retry_of",
    "retry_backoff_seconds",
    "retry_backoff_max_seconds",
    "created_at",
    "started_at",
    "completed_at",
    "updated_at",
    "version",
    "last_event_seq",
    "error_detail",
    "concurrency_key",
    "timeout_seconds",
)
"""In the order of `Job`'s fields (PostgreSQL decodes jobs by position)."""
STEP_COLUMNS: Final = (
    "id",
    "job_id",
    "ordinal",
    "name",
    "phase",
    "type",
    "status",
    "started_at",
    "completed_at",
    "duration_ms",
    "tokens_input",
    "tokens_output",
    "output",
)
EVENT_COLUMNS: Final = (
    "id",
    "job_id",
    "workspace_id",
    "job_type",
    "seq",
    "step_id",
    "type",
    "actor",
    "payload",
    "created_at",
    "tx",
)
SCHEDULE_COLUMNS: Final = (
    "id",
    "workspace_id",
    "name",
    "cron",
    "timezone",
    "job_type",
    "job_payload",
    "job_priority",
    "job_max_attempts",
    "job_timeout_seconds",
    "job_concurrency_key",
    "overlap",
    "catch_up",
    "paused",
    "next_run_at",
    "last_run_at",
    "last_job_id",
    "last_skipped_at",
    "last_skip_reason",
    "firing_tick",
    "created_at",
    "updated_at",
    "version",
)
SCHEDULE_RUN_COLUMNS: Final = (
    "id",
    "schedule_id",
    "workspace_id",
    "tick",
    "outcome",
    "job_id",
    "created_at",
)
PICK_COLUMNS: Final = ("id", "workspace_id", "type", "concurrency_key", "priority", "run_at")
"""What a claim's pick reads of a job: enough to weigh it as a candidate (`Candidate`)."""


def columns(names: Iterable[str], table: str | None = None) -> str:
    """A column list for SELECT or RETURNING, qualified by `table` when given."""
    return ", ".join(name if table is None else f"{table}.{name}" for name in names)


def status_condition(statuses: Iterable[JobStatus], column: str = "status") -> str:
    """`column` holds one of `statuses`, as SQL. One status reads `status = 'X'`, the form
    both databases match against a partial index's predicate."""
    values = sorted(status.value for status in statuses)
    if not values:
        raise ValueError("no status to match")
    if len(values) == 1:
        return f"{column} = '{values[0]}'"
    return f"{column} IN ({', '.join(repr(value) for value in values)})"


SETTLED_STATUSES: Final = frozenset(set(JobStatus) - {CLAIMABLE_STATUS, LEASED_STATUS})
"""The statuses the status and type indexes hold: queued and running jobs have partial
indexes of their own (see store/tables.py)."""


def settled_condition(column: str = "status") -> str:
    """The predicate of the indexes of settled jobs, as they are defined. A query that
    reads one must say it in these words: SQLite uses a partial index only when the query
    repeats its predicate's terms (PostgreSQL also proves it from `status = 'FAILED'`)."""
    return f"{column} NOT IN ('{CLAIMABLE_STATUS.value}', '{LEASED_STATUS.value}')"


_COLUMN_LISTS: Final[Mapping[str, tuple[str, ...]]] = {
    "job_columns": JOB_COLUMNS,
    "step_columns": STEP_COLUMNS,
    "event_columns": EVENT_COLUMNS,
    "schedule_columns": SCHEDULE_COLUMNS,
    "schedule_run_columns": SCHEDULE_RUN_COLUMNS,
    "pick_columns": PICK_COLUMNS,
}
# Status facts come from the domain's status machine, never restated in SQL: conditions
# (`{claimable}`, or `{claimable:j}` for a table's alias) and the leased status's literal.
_STATUS_CONDITIONS: Final[Mapping[str, frozenset[JobStatus]]] = {
    "claimable": frozenset({CLAIMABLE_STATUS}),
    "leased": frozenset({LEASED_STATUS}),
    "completable": sources_for(JobStatus.COMPLETED),
    "unfinished": UNFINISHED_STATUSES,
    "finished": TERMINAL_STATUSES,
}
assert sources_for(JobStatus.COMPLETED, by_system=True) == {LEASED_STATUS}, (
    "a completion takes its job off its limits (`completed_leaves`, migration 0022) as a "
    "job leaving RUNNING: a limited job left in another status would be taken off twice"
)


def _literal(value: object) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"no SQL literal for {value!r}")


# What completing sets, as the domain's decision has it (the batch completions' SET).
_COMPLETED_VALUES: Final = ", ".join(
    f"{column} = {_literal(value)}" for column, value in sorted(COMPLETED_VALUES.items())
)
_STATUS_LITERALS: Final[Mapping[str, str]] = {
    "leased_status": f"'{LEASED_STATUS.value}'",
    "completed_status": f"'{JobStatus.COMPLETED.value}'",
    "completed_values": _COMPLETED_VALUES,
}


def type_limit(table: str) -> str:
    """The name of the type limit (`type:<type>`: domain.capacity.limit_type) of the job row
    `table`."""
    return f"'{TYPE_LIMIT_PREFIX}' || {table}.type"


def is_type_limit(name: str) -> str:
    """A condition: the limit name `name` (a column) is a type limit's. Also the predicate of
    the index of type limits (store/tables.py), which SQLite uses only when a query says it
    in these words."""
    return f"substr({name}, 1, {len(TYPE_LIMIT_PREFIX)}) = '{TYPE_LIMIT_PREFIX}'"


def limited_type(name: str) -> str:
    """The job type a type limit's name (`name`, a column) governs."""
    return f"substr({name}, {len(TYPE_LIMIT_PREFIX) + 1})"


def limit_of_its_names(table: str) -> str:
    """A condition on the job row `table`: a limit of its names (its concurrency key,
    `type:<type>`: domain.capacity.limit_names) exists in its workspace."""
    return (
        f"EXISTS (SELECT 1 FROM limits l WHERE l.workspace_id = {table}.workspace_id "
        f"AND l.name IN ({table}.concurrency_key, {type_limit(table)}))"
    )


# Parts that need a table's alias: conditions and expressions on a job row (`{governed:jobs}`,
# `{type_limit:c}`) and on a limit row (`{is_type_limit:l}`, `{limited_type:l}`). Limit names
# are the domain's (`TYPE_LIMIT_PREFIX`), never restated in SQL.
_ROW_PARTS: Final[Mapping[str, Callable[[str], str]]] = {
    "governed": limit_of_its_names,
    "type_limit": type_limit,
    "is_type_limit": lambda table: is_type_limit(f"{table}.name"),
    "limited_type": lambda table: limited_type(f"{table}.name"),
}

_PART = re.compile(r"\{([a-z_]+)(?::([a-z_]+))?\}")
_NAME_LINE = re.compile(r"^-- name: ([a-z_]+)\s*$")


@dataclass(frozen=True, slots=True)
class Query:
    """One named statement; `parts` are those still to be given to `compose`."""

    name: str
    template: str
    parts: frozenset[str]

    @property
    def sql(self) -> str:
        """The statement, for a query with no parts left to fill."""
        if self.parts:
            raise ValueError(f"query {self.name} needs its parts: {sorted(self.parts)}")
        return self.template

    def compose(self, **parts: str) -> str:
        """The statement with each of its parts filled in (all of them, nothing else)."""
        if set(parts) != self.parts:
            raise ValueError(
                f"query {self.name} takes parts {sorted(self.parts)}, not {sorted(parts)}"
            )
        return _PART.sub(lambda match: parts[match.group(1)], self.template)


def _fill_static(template: str, query: str) -> str:
    def fill(match: re.Match[str]) -> str:
        name, table = match.group(1), match.group(2)
        if name in _COLUMN_LISTS:
            return columns(_COLUMN_LISTS[name], table)
        if name in _STATUS_CONDITIONS:
            column = "status" if table is None else f"{table}.status"
            return status_condition(_STATUS_CONDITIONS[name], column)
        if name in _STATUS_LITERALS and table is None:
            return _STATUS_LITERALS[name]
        if name in _ROW_PARTS:
            if table is None:
                raise ValueError(f"query {query}: {{{name}}} needs a table: {{{name}:<table>}}")
            return _ROW_PARTS[name](table)
        return match.group(0)

    return _PART.sub(fill, template)


def parse_queries(text: str, source: str) -> dict[str, Query]:
    """The named queries in one file's text."""
    found: dict[str, Query] = {}
    name: str | None = None
    lines: list[str] = []

    def finish() -> None:
        if name is None:
            return
        body = "\n".join(lines).strip().rstrip(";").strip()
        if not body:
            raise ValueError(f"{source}: query {name} is empty")
        if name in found:
            raise ValueError(f"{source}: query {name} is defined twice")
        template = _fill_static(body, f"{source}: {name}")
        parts = frozenset(match.group(1) for match in _PART.finditer(template))
        found[name] = Query(name, template, parts)

    for line in text.splitlines():
        if (header := _NAME_LINE.match(line)) is not None:
            finish()
            name, lines = header.group(1), []
        elif line.lstrip().startswith("--"):
            continue  # a note for the reader
        elif name is not None:
            lines.append(line.rstrip())
        elif line.strip():
            raise ValueError(f"{source}: text before the first query: {line!r}")
    finish()
    return found


def _read(file_name: str) -> dict[str, Query]:
    text = resources.files("conveyor.store").joinpath("sql", file_name).read_text("utf-8")
    return parse_queries(text, file_name)


class Queries:
    """Every query one dialect runs: `shared.sql` and the dialect's own file."""

    def __init__(self, dialect: DialectName) -> None:
        shared = _read("shared.sql")
        own = _read("postgres.sql" if dialect == "postgresql" else "sqlite.sql")
        if clash := sorted(set(shared) & set(own)):
            raise ValueError(f"{dialect}: {clash} defined in shared.sql and the dialect's file")
        self.dialect = dialect
        self._queries = {**shared, **own}

    def __getitem__(self, name: str) -> Query:
        try:
            return self._queries[name]
        except KeyError:
            raise KeyError(f"no query named {name} for {self.dialect}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._queries

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self._queries)

    def in_list(self, column: str, param: str) -> str:
        """A condition: `column` is one of the list bound to `:param` (lists bind
        differently on each database: its `in_list`)."""
        return self["in_list"].compose(column=column, param=f":{param}")

    def bytewise(self, column: str) -> str:
        """`column`, compared and ordered byte by byte on both databases (its `bytewise`)."""
        return self["bytewise"].compose(column=column)

    def unindexed(self, column: str) -> str:
        """`column`, kept off the indexes where the database would otherwise pick one by
        an equality on it (its `unindexed`)."""
        return self["unindexed"].compose(column=column)


@cache
def queries_for(dialect: DialectName) -> Queries:
    """Loaded once per process and dialect."""
    return Queries(dialect)
