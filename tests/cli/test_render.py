"""What `conveyor status` prints from the stats, including the fields a newer server adds
(`workers[].types`, `workers[].state`, `unserved_types`) and tolerating their absence.

Rendered straight from a stats body: the server this branch runs against does not send the
newer fields yet; tests/cli/test_jobs.py covers `conveyor status` end to end."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console

from conveyor.cli import render
from conveyor.cli.schedules import print_schedule
from conveyor.client.http import END_OF_STREAM

NOW = datetime(2026, 12, 4, 12, 30, 20, tzinfo=UTC)


def stats(**extra: Any) -> dict[str, Any]:
    return {
        "counts": [{"type": "command", "status": "QUEUED", "count": 3}],
        "by_status": {"QUEUED": 3, "COMPLETED": 0},
        "throughput": [],
        "workers": [
            {
                "worker_id": "host:1:in-process",
                "first_seen_at": NOW.isoformat(),
                "last_seen_at": NOW.isoformat(),
                "running": 1,
            }
        ],
        "oldest_queued_at": None,
        "oldest_queued_age_seconds": 4.0,
        **extra,
    }


def printed(body: dict[str, Any]) -> list[str]:
    console = Console(record=True, width=200)
    render.print_status(console, body)
    return [line.strip() for line in console.export_text().splitlines()]


def test_unserved_types_get_a_warning_each_and_workers_their_state_and_types() -> None:
    body = stats(unserved_types=[{"type": "command", "queued": 3}, {"type": "x.y", "queued": 1}])
    body["workers"] = [
        {**body["workers"][0], "state": "active", "types": ["demo.echo", "demo.sleep"]},
        {**body["workers"][0], "worker_id": "gone:2", "state": "stopped", "types": []},
    ]
    lines = printed(body)
    assert "3 jobs of type `command` due now: no live worker serves this type" in lines
    assert "1 job of type `x.y` due now: no live worker serves this type" in lines
    header = next(line for line in lines if line.startswith("WORKER"))
    assert header.split() == ["WORKER", "STATE", "LAST", "SEEN", "RUNNING", "TYPES"]
    assert any(
        line.startswith("host:1:in-process") and line.endswith("demo.echo, demo.sleep")
        for line in lines
    )
    assert any(line.startswith("gone:2") and "stopped" in line for line in lines)


def test_a_server_without_the_newer_fields_still_prints() -> None:
    lines = printed(stats())
    assert not any("no live worker" in line for line in lines)
    header = next(line for line in lines if line.startswith("WORKER"))
    assert header.split() == ["WORKER", "LAST", "SEEN", "RUNNING"]


def test_throughput_sums_the_minutes_inside_each_window() -> None:
    def minute(ago: timedelta, completed: int, failed: int) -> dict[str, Any]:
        start = (NOW - ago).replace(second=0, microsecond=0)
        return {
            "minute": start.isoformat(),
            "completed": completed,
            "failed": failed,
            "cancelled": 0,
        }

    minutes = [
        minute(timedelta(seconds=5), 4, 1),
        minute(timedelta(seconds=61), 1, 0),  # finished a minute ago: the previous minute
        minute(timedelta(minutes=10), 10, 0),
        minute(timedelta(minutes=50), 100, 2),
    ]
    console = Console(record=True, width=200)
    console.print(render.throughput_table(minutes, now=NOW))
    rows = {
        line.strip().rsplit(maxsplit=3)[0]: line.split()[-3:]
        for line in console.export_text().splitlines()
        if line.strip().startswith("last")
    }
    assert rows == {
        "last 1 min": ["5", "1", "0"],
        "last 15 min": ["15", "1", "0"],
        "last 60 min": ["115", "3", "0"],
    }


def test_counts_are_singular_for_one() -> None:
    assert [render.count(n, "job") for n in (0, 1, 2)] == ["0 jobs", "1 job", "2 jobs"]


def test_following_names_each_status_change_once() -> None:
    assert [
        render.change_word(event_type)
        for event_type in (
            "job.created",
            "job.queued",
            "job.started",
            "job.progress",
            "job.lease_expired",
            "job.retrying",
            "job.completed",
            "step.output",
        )
    ] == ["CREATED", "QUEUED", "RUNNING", None, "LEASE EXPIRED", "RETRYING", "COMPLETED", None]
    assert render.change_word("job.timed_out") == "TIMED OUT"


def job_body(**changes: Any) -> dict[str, Any]:
    """A job as `GET …/jobs/{id}` answers it (the fields `jobs show` reads)."""
    return {
        "id": "j-1",
        "status": "FAILED",
        "type": "report.build",
        "priority": 5,
        "progress_percent": 0,
        "attempt": 1,
        "max_attempts": 1,
        "created_at": NOW.isoformat(),
        "version": 4,
        "payload": {},
        "result": None,
        "error": "timed out after 0.5 s",
        "timeout_seconds": 0.5,
        **changes,
    }


def schedule_body(**job: Any) -> dict[str, Any]:
    """A schedule as `GET …/schedules/{id}` answers it; `job` changes its job's fields."""
    return {
        "id": "s-1",
        "name": "nightly",
        "cron": "30 2 * * *",
        "timezone": "UTC",
        "job": {
            "type": "report.build",
            "payload": {},
            "priority": 5,
            "max_attempts": 1,
            "timeout_seconds": None,
            "concurrency_key": None,
            **job,
        },
        "overlap": "allow",
        "catch_up": "none",
        "paused": False,
        "upcoming": [],
        "last_run_at": None,
        "last_job_id": None,
        "last_skipped_at": None,
        "last_skip_reason": None,
    }


def test_a_job_shows_its_timeout_and_a_timed_out_attempt_says_so() -> None:
    job = job_body()
    console = Console(record=True, width=200)
    render.print_job(console, job)
    lines = [line.split() for line in console.export_text().splitlines()]
    assert ["timeout", "0.5", "s"] in lines
    render.print_job(console, {**job, "timeout_seconds": None})
    assert ["timeout", "-"] in [line.split() for line in console.export_text().splitlines()]
    event = {"type": "job.timed_out", "payload": {"attempt": 2, "timeout_seconds": 30}}
    assert render.describe(event) == "attempt 2 ran past 30 s"


def test_what_callers_wrote_is_printed_as_text_brackets_and_all() -> None:
    """Rich reads `[b]` or `[a-z]` as markup and drops it: text from callers (names,
    payloads, actors) must come out as they wrote it."""
    console = Console(record=True, width=200)
    step = {
        "ordinal": 1,
        "name": "[setup] fetch",
        "phase": "SETUP",
        "type": "COMMAND",
        "status": "COMPLETED",
    }
    event = {
        "seq": 1,
        "timestamp": NOW.isoformat(),
        "type": "job.created",
        "actor": "worker:[blue]",
        "payload": {"note": "[b]old"},
    }
    job = job_body(agent_task_id="[ticket-7]", steps=[step], events=[event])
    console.print(render.jobs_table([job]))
    render.print_job(console, job)
    print_schedule(console, schedule_body(payload={"note": "[b]old"}), [])
    text = console.export_text()
    for written in ("[ticket-7]", "[setup] fetch", "worker:[blue]", '{"note": "[b]old"}'):
        assert written in text, f"{written!r} lost in:\n{text}"
    assert text.count('{"note": "[b]old"}') == 2, "the event's payload and the schedule's"


def test_a_schedule_shows_its_jobs_timeout_and_concurrency_key_when_set() -> None:
    def shown(schedule: dict[str, Any]) -> list[list[str]]:
        console = Console(record=True, width=200)
        print_schedule(console, schedule, [])
        return [line.split() for line in console.export_text().splitlines()]

    lines = shown(schedule_body(timeout_seconds=90, concurrency_key="acme-reports"))
    assert ["timeout", "90", "s"] in lines
    assert ["concurrency", "key", "acme-reports"] in lines
    labels = [line[0] for line in shown(schedule_body()) if line]
    assert "timeout" not in labels, "a job with no timeout of its own shows none"
    assert "concurrency" not in labels


def test_a_job_shows_when_it_is_due_and_how_far_off_while_it_waits() -> None:
    later = (datetime.now(UTC) + timedelta(days=400, minutes=1)).isoformat()
    waiting = job_body(status="QUEUED", error=None, run_at=later)
    console = Console(record=True, width=200)
    render.print_job(console, waiting)
    assert ["due", later, "(in", "400d)"] in [
        line.split() for line in console.export_text().splitlines()
    ]
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    for done in (job_body(run_at=past, status="QUEUED"), job_body(run_at=later)):
        console = Console(record=True, width=200)
        render.print_job(console, done)
        lines = [line.split() for line in console.export_text().splitlines()]
        assert ["due", done["run_at"]] in lines, "come due, or started: no count down"

    console = Console(record=True, width=200)
    console.print(render.jobs_table([waiting, {**waiting, "id": "j-2", "run_at": past}]))
    rows = {line.split()[0]: line for line in console.export_text().splitlines()}
    assert "QUEUED due in 400d" in rows["j-1"]
    assert "due" not in rows["j-2"]


def test_a_long_limit_name_is_cut_and_does_not_widen_the_name_column() -> None:
    """One 200-character name widened NAME for every row (the table wrapped): the column
    is capped, the long name cut on its one line, and a caption says where it is whole."""

    def limit(name: str) -> dict[str, Any]:
        return {
            "name": name,
            "running": 0,
            "max_running": 3,
            "queued": 1,
            "rate": None,
            "started_in_window": 0,
            "paused": False,
            "waiting_because": None,
        }

    long_name = "customer/" + "x" * 191
    console = Console(record=True, width=200)  # what a pipe gets (cli.shared.console)
    console.print(render.limits_table([limit("openai"), limit(long_name)]))
    lines = console.export_text().splitlines()
    assert lines[0].index("RUNNING") == render.LIMIT_NAME_WIDTH + 2, "NAME is capped"
    _header, short_row, long_row, caption = lines
    assert short_row.split() == ["openai", "0/3", "1", "-", "-", "no", "-"]
    cut = long_name[: render.LIMIT_NAME_WIDTH - 1] + "…"
    assert long_row.split() == [cut, "0/3", "1", "-", "-", "no", "-"]
    assert "limits list --json" in caption

    console = Console(record=True, width=200)
    console.print(render.limits_table([limit("openai")]))
    assert len(console.export_text().splitlines()) == 2, "no caption when no name is cut"


def test_shown_writes_out_what_would_drive_a_terminal_and_nothing_else() -> None:
    given = "\x00\x1b[31m\x07\x7f\x85\x9b\u202a\u202e\u2066\u2069 ok é 名 [b]\\"
    assert render.shown(given).plain == (
        "\\x00\\x1b[31m\\x07\\x7f\\x85\\x9b\\u202a\\u202e\\u2066\\u2069 ok é 名 [b]\\"
    )
    assert render.shown("a\nb\tc\rd").plain == "a\\x0ab\\x09c\\x0dd"
    assert render.shown("a\nb\tc\rd", lines=True).plain == "a\nb\tc\\x0dd"
    assert render.shown(42).plain == "42"


def test_every_table_and_line_writes_out_control_characters() -> None:
    evil = "\x1b]0;pwned\x07\u202e"
    console = Console(record=True, width=300)
    console.print(render.limits_table([{
        "name": evil, "running": 0, "queued": 1, "paused": True, "max_running": None,
        "waiting_because": "paused",
    }]))  # fmt: skip
    console.print(render.workers_table([{
        "worker_id": evil, "last_seen_at": NOW.isoformat(), "running": 1, "state": evil,
        "types": [evil],
    }]))  # fmt: skip
    console.print(render.keys_table([]))
    render.follow_changes(
        console, [{"type": "job.created", "job_id": evil, "job_type": evil, "timestamp": ""}]
    )
    status = render.watch(
        console,
        [
            {"type": "step.output", "seq": 1, "timestamp": "", "payload": {"text": evil}},
            {"type": "job.progress", "seq": 2, "payload": {"progress_percent": 5, "message": evil}},
            {"type": END_OF_STREAM, "status": evil},
        ],
        as_json=False,
    )
    assert status == evil
    text = console.export_text()
    assert not [c for c in "\x1b\x07\u202e" if c in text], ascii(text)
    assert text.count("\\x1b]0;pwned\\x07\\u202e") >= 6, text
