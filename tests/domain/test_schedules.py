"""Schedules without a database: cron rules in time zones (DST included), and what a
scheduler decides when a schedule is due, with the clock passed in."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4
from zoneinfo import available_timezones

import pytest

from conveyor.domain.cursors import encode_cursor
from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import decide_creation_events
from conveyor.domain.schedules import (
    LATE_TICK_GRACE,
    UPCOMING_COUNT,
    CatchUp,
    CronRule,
    Overlap,
    Schedule,
    ScheduleChanges,
    ScheduleCursor,
    ScheduledJob,
    ScheduleRunCursor,
    ScheduleSpec,
    TickAction,
    decide_tick,
    decide_update,
    job_origin,
    manual_idempotency_key,
    tick_idempotency_key,
)

NOW = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)


def at(text: str) -> datetime:
    """An instant written in UTC: `2026-03-29 01:00`."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def make_schedule(cron: str = "*/5 * * * *", timezone: str = "UTC", **overrides: Any) -> Schedule:
    rule = CronRule.parse(cron, timezone)
    fields: dict[str, Any] = {
        "id": uuid4(),
        "workspace_id": uuid4(),
        "name": "nightly",
        "cron": cron,
        "timezone": timezone,
        "job": ScheduledJob(type="report.build", payload={"kind": "daily"}),
        "overlap": Overlap.ALLOW,
        "catch_up": CatchUp.NONE,
        "paused": False,
        "next_run_at": rule.next_after(NOW - timedelta(seconds=1)),
        "last_run_at": None,
        "last_job_id": None,
        "last_skipped_at": None,
        "last_skip_reason": None,
        "firing_tick": None,
        "created_at": NOW - timedelta(days=1),
        "updated_at": NOW - timedelta(days=1),
        "version": 3,
    }
    fields.update(overrides)
    return Schedule(**fields)


# -- cron rules ----------------------------------------------------------------------------


def test_five_fields_and_names_give_the_fire_times_cron_would() -> None:
    assert CronRule.parse("*/5 * * * *").upcoming(at("2026-12-05 10:02"), 3) == [
        at("2026-12-05 10:05"),
        at("2026-12-05 10:10"),
        at("2026-12-05 10:15"),
    ]
    assert CronRule.parse("@hourly").next_after(at("2026-12-05 10:00")) == at("2026-12-05 11:00")
    assert CronRule.parse("@daily").next_after(at("2026-12-05 10:00")) == at("2026-12-06 00:00")
    assert CronRule.parse("@weekly").next_after(at("2026-12-05 10:00")) == at("2026-12-06 00:00")
    assert CronRule.parse("@monthly").next_after(at("2026-12-05 10:00")) == at("2027-01-01 00:00")
    assert CronRule.parse("@YEARLY").next_after(at("2026-12-05 10:00")) == at("2027-01-01 00:00")


def test_next_after_is_strictly_after() -> None:
    rule = CronRule.parse("0 * * * *")
    assert rule.next_after(at("2026-12-05 10:00")) == at("2026-12-05 11:00")
    assert rule.next_after(at("2026-12-05 09:59:59.999")) == at("2026-12-05 10:00")


def test_a_time_zone_moves_the_ticks() -> None:
    rule = CronRule.parse("30 9 * * *", "Asia/Tokyo")  # UTC+9, no DST
    assert rule.next_after(at("2026-12-05 00:00")) == at("2026-12-05 00:30")


@pytest.mark.parametrize(
    ("cron", "message"),
    [
        ("", "must not be empty"),
        ("* * * *", "must have 5 fields"),
        ("* * * * * *", "must have 5 fields"),
        ("61 * * * *", "Bad minute"),
        ("* 24 * * *", "Bad hour"),
        ("* * * 13 *", "Bad month"),
        ("*/0 * * * *", "Bad minute"),
        ("@reboot", "unknown name"),
        ("x" * 300, "at most 200"),
    ],
)
def test_an_invalid_expression_is_refused_naming_the_cron_field(cron: str, message: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        CronRule.parse(cron)
    assert refused.value.field == "cron"
    assert message in refused.value.message


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "../../etc/passwd", "", "Europe/"])
def test_an_unknown_time_zone_is_refused_naming_the_timezone_field(timezone: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        CronRule.parse("0 * * * *", timezone)
    assert refused.value.field == "timezone"


@pytest.mark.parametrize("timezone", ["localtime", "LocalTime", "utc", "posixrules", "right/UTC"])
def test_a_name_the_host_has_but_iana_does_not_is_refused(timezone: str) -> None:
    """Debian's zone directory holds `localtime` (the host's own zone: `zoneinfo` lists
    it), `posixrules` and the `right/` tree; none is an IANA name, and `localtime` means
    something else on each server."""
    with pytest.raises(InvalidInput) as refused:
        CronRule.parse("0 0 * * *", timezone)
    assert refused.value.field == "timezone"


HOST_HAS_LOCALTIME = "localtime" in available_timezones()
"""Debian's zone directory lists `localtime`; a system without it never took it."""


@pytest.mark.skipif(not HOST_HAS_LOCALTIME, reason="this system's zones hold no localtime")
def test_a_schedule_stored_in_localtime_before_it_was_refused_still_lists_and_pauses() -> None:
    """Refusing `localtime` from callers must not break a schedule stored with it: its
    rule is still read (lists show its next runs), a change that leaves its zone alone
    is taken, and only a time zone given again is checked."""
    stored = replace(make_schedule("0 0 * * *"), timezone="localtime")
    assert len(stored.upcoming()) == UPCOMING_COUNT
    paused = decide_update(stored, ScheduleChanges(paused=True), NOW)
    assert paused is not None
    assert (paused.paused, paused.timezone) == (True, "localtime")
    with pytest.raises(InvalidInput) as refused:
        decide_update(stored, ScheduleChanges(timezone="localtime", cron="@hourly"), NOW)
    assert refused.value.field == "timezone"
    moved = decide_update(stored, ScheduleChanges(timezone="Europe/Berlin"), NOW)
    assert moved is not None
    assert moved.next_run_at == at("2026-12-05 23:00")


def test_factory_is_an_iana_zone_and_is_taken() -> None:
    """`Factory` is in the IANA database (UTC with the abbreviation -00): the same on
    every server, so nothing to refuse."""
    rule = CronRule.parse("0 0 * * *", "Factory")
    assert rule.next_after(NOW) == at("2026-12-06 00:00")


# -- DST: what cronsim (Debian's cron) does, pinned -------------------------------------------


def test_berlin_spring_forward_a_0230_daily_runs_once_at_0300_local() -> None:
    # 2026-03-29: 02:00 CET becomes 03:00 CEST; 02:30 does not exist that day.
    rule = CronRule.parse("30 2 * * *", "Europe/Berlin")
    assert rule.upcoming(at("2026-03-27 12:00"), 4) == [
        at("2026-03-28 01:30"),  # 02:30 CET
        at("2026-03-29 01:00"),  # 03:00 CEST: right after the gap, once
        at("2026-03-30 00:30"),  # 02:30 CEST
        at("2026-03-31 00:30"),
    ]


def test_new_york_spring_forward_a_0230_daily_runs_once_at_0300_local() -> None:
    # 2026-03-08: 02:00 EST becomes 03:00 EDT.
    rule = CronRule.parse("30 2 * * *", "America/New_York")
    assert rule.upcoming(at("2026-03-07 12:00"), 3) == [
        at("2026-03-08 07:00"),  # 03:00 EDT
        at("2026-03-09 06:30"),  # 02:30 EDT
        at("2026-03-10 06:30"),
    ]


def test_new_york_fall_back_a_0130_daily_runs_once_at_the_first_0130() -> None:
    # 2026-11-01: 02:00 EDT becomes 01:00 EST; 01:30 happens twice (05:30 and 06:30 UTC).
    rule = CronRule.parse("30 1 * * *", "America/New_York")
    ticks = rule.upcoming(at("2026-10-31 12:00"), 3)
    assert ticks == [at("2026-11-01 05:30"), at("2026-11-02 06:30"), at("2026-11-03 06:30")]


def test_fall_back_from_inside_the_repeated_hour_never_goes_back() -> None:
    # At 01:10 EST (the second pass), the first 01:30 (EDT) is already past: the next
    # tick is the next day's, never one before the moment asked about.
    rule = CronRule.parse("0,15,30,45 1 * * *", "America/New_York")
    assert rule.next_after(at("2026-11-01 06:10")) == at("2026-11-02 06:00")
    assert rule.latest_due(at("2026-11-01 05:00"), at("2026-11-01 06:10")) == at("2026-11-01 05:45")


def test_berlin_fall_back_an_hourly_schedule_fires_every_real_hour() -> None:
    # 2026-10-25: 03:00 CEST becomes 02:00 CET: `0 * * * *` runs on elapsed time.
    rule = CronRule.parse("0 * * * *", "Europe/Berlin")
    assert rule.upcoming(at("2026-10-24 23:30"), 4) == [
        at("2026-10-25 00:00"),  # 02:00 CEST
        at("2026-10-25 01:00"),  # 02:00 CET
        at("2026-10-25 02:00"),  # 03:00 CET
        at("2026-10-25 03:00"),
    ]


# -- ticks -----------------------------------------------------------------------------------


def test_a_schedule_not_yet_due_needs_no_decision() -> None:
    schedule = make_schedule(next_run_at=NOW + timedelta(minutes=1))
    assert decide_tick(schedule, NOW, previous_run_unfinished=False) is None
    assert decide_tick(replace(schedule, next_run_at=None), NOW, previous_run_unfinished=False) is (
        None
    )


def test_an_on_time_tick_fires_and_the_schedule_moves_to_the_next() -> None:
    schedule = make_schedule(next_run_at=at("2026-12-05 10:00"))
    decision = decide_tick(schedule, at("2026-12-05 10:00:00.004"), previous_run_unfinished=False)
    assert decision is not None
    assert (decision.tick, decision.action, decision.next_run_at) == (
        at("2026-12-05 10:00"),
        TickAction.FIRE,
        at("2026-12-05 10:05"),
    )


def test_overlap_skip_skips_while_the_previous_run_is_unfinished() -> None:
    schedule = make_schedule(overlap=Overlap.SKIP, next_run_at=at("2026-12-05 10:00"))
    now = at("2026-12-05 10:00:01")
    busy = decide_tick(schedule, now, previous_run_unfinished=True)
    idle = decide_tick(schedule, now, previous_run_unfinished=False)
    assert busy is not None
    assert idle is not None
    assert busy.action == TickAction.SKIP_OVERLAP
    assert busy.next_run_at == at("2026-12-05 10:05")
    assert idle.action == TickAction.FIRE
    allowing = decide_tick(
        replace(schedule, overlap=Overlap.ALLOW), now, previous_run_unfinished=True
    )
    assert allowing is not None
    assert allowing.action == TickAction.FIRE


def test_after_downtime_catch_up_none_skips_every_missed_tick() -> None:
    schedule = make_schedule(catch_up=CatchUp.NONE, next_run_at=at("2026-12-05 10:00"))
    now = at("2026-12-05 13:02")  # 3 hours down: 37 ticks missed
    decision = decide_tick(schedule, now, previous_run_unfinished=False)
    assert decision is not None
    assert decision.action == TickAction.SKIP_MISSED
    assert decision.tick == at("2026-12-05 13:00")
    assert decision.next_run_at == at("2026-12-05 13:05")


def test_after_downtime_catch_up_latest_fires_the_most_recent_missed_tick_once() -> None:
    schedule = make_schedule(catch_up=CatchUp.LATEST, next_run_at=at("2026-12-05 10:00"))
    now = at("2026-12-05 13:02")
    decision = decide_tick(schedule, now, previous_run_unfinished=False)
    assert decision is not None
    assert (decision.tick, decision.action, decision.next_run_at) == (
        at("2026-12-05 13:00"),
        TickAction.FIRE,
        at("2026-12-05 13:05"),
    )


def test_a_tick_just_come_due_after_missed_ones_is_on_time_and_fires() -> None:
    schedule = make_schedule(catch_up=CatchUp.NONE, next_run_at=at("2026-12-05 10:00"))
    now = at("2026-12-05 13:00:00.5")
    decision = decide_tick(schedule, now, previous_run_unfinished=False)
    assert decision is not None
    assert (decision.tick, decision.action) == (at("2026-12-05 13:00"), TickAction.FIRE)


def test_a_tick_later_than_the_grace_counts_as_missed() -> None:
    schedule = make_schedule(cron="@daily", next_run_at=at("2026-12-05 00:00"))
    within = decide_tick(
        schedule, at("2026-12-05 00:00") + LATE_TICK_GRACE, previous_run_unfinished=False
    )
    beyond = decide_tick(
        schedule,
        at("2026-12-05 00:00") + LATE_TICK_GRACE + timedelta(seconds=1),
        previous_run_unfinished=False,
    )
    assert within is not None
    assert within.action == TickAction.FIRE
    assert beyond is not None
    assert beyond.action == TickAction.SKIP_MISSED


def test_years_of_downtime_for_a_minutely_schedule_are_decided_without_walking_them() -> None:
    schedule = make_schedule(
        cron="* * * * *", catch_up=CatchUp.LATEST, next_run_at=at("2020-01-01 00:00")
    )
    decision = decide_tick(schedule, at("2026-12-05 10:00:30"), previous_run_unfinished=False)
    assert decision is not None
    assert (decision.tick, decision.action, decision.next_run_at) == (
        at("2026-12-05 10:00"),
        TickAction.FIRE,
        at("2026-12-05 10:01"),
    )


def test_a_rare_schedule_finds_its_latest_missed_tick() -> None:
    schedule = make_schedule(
        cron="0 0 29 2 *", catch_up=CatchUp.LATEST, next_run_at=at("2016-02-29 00:00")
    )
    decision = decide_tick(schedule, at("2026-12-05 10:00"), previous_run_unfinished=False)
    assert decision is not None
    assert decision.tick == at("2024-02-29 00:00")
    assert decision.next_run_at == at("2028-02-29 00:00")


def test_a_missed_dst_tick_in_new_york_is_still_one_tick() -> None:
    schedule = make_schedule(
        cron="30 1 * * *",
        timezone="America/New_York",
        catch_up=CatchUp.LATEST,
        next_run_at=at("2026-11-01 05:30"),
    )
    # Down over both 01:30s of the fall-back night, back at 01:40 EST.
    decision = decide_tick(schedule, at("2026-11-01 06:40"), previous_run_unfinished=False)
    assert decision is not None
    assert decision.tick == at("2026-11-01 05:30")
    assert decision.next_run_at == at("2026-11-02 06:30")


# -- updates -----------------------------------------------------------------------------------


def test_pausing_clears_next_run_and_resuming_starts_from_now() -> None:
    schedule = make_schedule(next_run_at=at("2026-12-05 10:00"))
    paused = decide_update(schedule, ScheduleChanges(paused=True), NOW)
    assert (paused.paused, paused.next_run_at, paused.upcoming()) == (True, None, [])
    later = at("2026-12-06 08:03")
    resumed = decide_update(paused, ScheduleChanges(paused=False), later)
    assert (resumed.paused, resumed.next_run_at) == (False, at("2026-12-06 08:05"))


def test_a_new_cron_or_time_zone_retimes_and_other_changes_do_not() -> None:
    schedule = make_schedule(next_run_at=at("2026-12-05 10:05"))
    retimed = decide_update(schedule, ScheduleChanges(cron="@hourly", timezone="Asia/Kolkata"), NOW)
    assert retimed.next_run_at == at("2026-12-05 10:30")  # :00 in UTC+5:30
    assert retimed.upcoming(3) == [
        at("2026-12-05 10:30"),
        at("2026-12-05 11:30"),
        at("2026-12-05 12:30"),
    ]
    reworded = decide_update(
        schedule, ScheduleChanges(job={"priority": 2}, overlap=Overlap.SKIP), NOW
    )
    assert reworded.next_run_at == at("2026-12-05 10:05")
    assert (reworded.job.priority, reworded.job.type, reworded.overlap) == (
        2,
        "report.build",
        Overlap.SKIP,
    )


@pytest.mark.parametrize(
    "changes",
    [
        ScheduleChanges(),
        ScheduleChanges(cron=" */5 * * * * ", timezone="UTC", paused=False),
        ScheduleChanges(job={}),
        ScheduleChanges(job={"type": "report.build", "timeout_seconds": None}),
        ScheduleChanges(overlap=Overlap.ALLOW),
    ],
)
def test_changes_that_leave_a_schedule_as_it_is_decide_nothing_to_store(
    changes: ScheduleChanges,
) -> None:
    assert decide_update(make_schedule(next_run_at=at("2026-12-05 10:05")), changes, NOW) is None


@pytest.mark.parametrize(
    ("before", "after"), [(True, 1), (1, 1.0), (0, False), ({"a": 1}, {"a": True})]
)
def test_a_payload_python_takes_for_equal_is_still_a_change(before: Any, after: Any) -> None:
    """`true == 1` and `1 == 1.0` in Python, not in JSON: such a change is stored."""
    schedule = make_schedule(job=ScheduledJob(type="report.build", payload={"x": before}))
    updated = decide_update(schedule, ScheduleChanges(job={"payload": {"x": after}}), NOW)
    assert updated is not None
    assert updated.job.payload == {"x": after}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        (ScheduleChanges(cron="* * *"), "cron"),
        (ScheduleChanges(timezone="Nowhere/Special"), "timezone"),
        (ScheduleChanges(job={"priority": 11}), "job.priority"),
        (ScheduleChanges(job={"type": "Not A Type"}), "job.type"),
        (ScheduleChanges(job={"max_attempts": 0}), "job.max_attempts"),
        (ScheduleChanges(job={"colour": "red"}), "job.colour"),
    ],
)
def test_an_invalid_change_names_its_field(changes: ScheduleChanges, field: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        decide_update(make_schedule(), changes, NOW)
    assert refused.value.field == field


def test_a_spec_names_its_invalid_field() -> None:
    job = ScheduledJob(type="report.build")
    with pytest.raises(InvalidInput) as refused:
        ScheduleSpec(name="has space", cron="@daily", job=job).validate()
    assert refused.value.field == "name"
    with pytest.raises(InvalidInput) as refused:
        ScheduleSpec(name="ok", cron="@daily", job=replace(job, timeout_seconds=-1)).validate()
    assert refused.value.field == "job.timeout_seconds"


@pytest.mark.parametrize(
    "name",
    [
        "0193b2c4-5d6e-7f80-9a1b-2c3d4e5f6a7b",
        "0193B2C45D6E7F809A1B2C3D4E5F6A7B",
        "00000000-0000-0000-0000-000000000000",
    ],
)
def test_a_name_a_route_would_read_as_an_id_is_refused(name: str) -> None:
    job = ScheduledJob(type="report.build")
    with pytest.raises(InvalidInput) as refused:
        ScheduleSpec(name=name, cron="@daily", job=job).validate()
    assert refused.value.field == "name"
    # Names close to one stay names.
    ScheduleSpec(name=name[:-1], cron="@daily", job=job).validate()


# -- what the created job carries --------------------------------------------------------------


def test_a_ticks_job_has_a_key_per_tick_and_names_schedule_and_tick_when_created() -> None:
    schedule = make_schedule()
    tick = at("2026-12-05 10:05")
    key = tick_idempotency_key(schedule.id, tick)
    assert key == f"schedule:{schedule.id}:2026-12-05T10:05:00Z"
    spec = schedule.job.spec(idempotency_key=key, origin=job_origin(schedule, tick))
    created = decide_creation_events(spec, "system")[0]
    assert created.payload == {
        "type": "report.build",
        "priority": 5,
        "retry_of": None,
        "schedule_id": str(schedule.id),
        "schedule": "nightly",
        "tick": "2026-12-05T10:05:00Z",
    }
    manual = job_origin(schedule, None)
    assert manual["tick"] is None
    assert manual["manual"] is True
    assert manual_idempotency_key(schedule.id, "abc") == f"schedule:{schedule.id}:manual:abc"
    with pytest.raises(InvalidInput):
        manual_idempotency_key(schedule.id, "x" * 101)


def test_a_runs_cursor_round_trips_names_its_schedule_and_refuses_anything_else() -> None:
    schedule_id = uuid4()
    cursor = ScheduleRunCursor(schedule_id, 42)
    token = cursor.encode()
    assert "=" not in token
    assert ScheduleRunCursor.decode(token) == cursor
    cursor.check_list(schedule_id)
    with pytest.raises(InvalidInput) as refused:
        cursor.check_list(uuid4())
    assert refused.value.field == "cursor"
    bad = [
        "",
        "not a cursor",
        token[:-3],
        ScheduleCursor("alpha").encode(),
        encode_cursor(f"run:{schedule_id.hex}:0"),
        encode_cursor(f"run:{schedule_id.hex}:-1"),
        encode_cursor(f"run:{schedule_id.hex}:{2**63}"),
        encode_cursor(f"run:{schedule_id.hex}:4:2"),
        encode_cursor(f"run:{schedule_id}:42"),  # the id with dashes: not what encode writes
        encode_cursor(f"schedule:{schedule_id.hex}:42"),
    ]
    for token in bad:
        with pytest.raises(InvalidInput) as refused:
            ScheduleRunCursor.decode(token)
        assert refused.value.field == "cursor", token
