"""Schedules: cron rules that create jobs, and what a scheduler decides at each tick.

Pure: every decision takes the clock's reading as an argument. Cron expressions are read by
cronsim (a small, typed, maintained evaluator that follows Debian's cron, DST quirks
included) against the IANA time zone database (zoneinfo): a schedule's ticks are instants
in UTC, computed from wall-clock times in its time zone.

What DST does to a schedule is what Debian's cron does (cronsim's rules):

* A job at a fixed time (minute and hour both given, like `30 2 * * *`) whose wall-clock
  time does not exist that day (spring forward) runs once, at the first instant after the
  gap (03:00 local); one whose time happens twice (fall back) runs once, at the first.
* An expression with `*` (or `*/n`) in the minute or hour field runs on real elapsed time:
  `0 * * * *` fires every hour of the day, both 01:00s of a fall-back night included.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum
from functools import cache, lru_cache
from typing import Any, Final
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from cronsim import CronSim, CronSimError

from conveyor.domain.cursors import decode_cursor, encode_cursor, invalid_cursor
from conveyor.domain.errors import InvalidInput
from conveyor.domain.events import JsonValue
from conveyor.domain.idempotency import SCHEDULE_KEY_PREFIX
from conveyor.domain.jobs import PRIORITY_DEFAULT, JobSpec
from conveyor.domain.limits import same_json

SCHEDULE_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}\Z")
CRON_MAX_LENGTH: Final = 200
TIMEZONE_MAX_LENGTH: Final = 64
DEFAULT_TIMEZONE: Final = "UTC"
UPCOMING_COUNT: Final = 5
"""How many fire times a schedule's JSON lists in `upcoming`."""
LATE_TICK_GRACE: Final = timedelta(seconds=60)
"""A tick found due more than this long after its time was missed: no server was running
(or none could reach the database) when it came. `catch_up` says what happens to it."""
MANUAL_KEY_MAX_LENGTH: Final = 100
MAX_SCHEDULES_LISTED: Final = 500
"""The most schedules one page of the list holds (and how many it holds unless asked for
fewer: a workspace with no more than this many reads them all at once, as before pages;
the SDK and the CLI ask for this many when they read every schedule)."""
MAX_RUNS_LISTED: Final = 200
"""The most runs one page of a schedule's history holds."""
DEFAULT_RUNS_LISTED: Final = 50
"""How many runs a page of a schedule's history holds unless asked for another number."""

CRON_NAMES: Final[Mapping[str, str]] = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The @-names cron understands, as the five fields they stand for (@reboot has no
meaning for a service that runs on many machines)."""

_FIXED_POINT: Final = datetime(2000, 1, 1, tzinfo=UTC)
"""Where an expression is first evaluated when it is checked (any instant would do)."""
_MAX_REPEATS: Final = 1500
"""At most this many fire times lie before a start inside a repeated (fall-back) hour:
cronsim evaluates fixed-time rules on the wall clock, so it may answer the earlier pass."""
_LATEST_TICK_WINDOWS: Final = (
    timedelta(minutes=2),
    timedelta(hours=2),
    timedelta(days=2),
    timedelta(days=64),
    timedelta(days=800),
)


class Overlap(StrEnum):
    ALLOW = "allow"
    """Fire every tick, whatever the previous run is doing."""
    SKIP = "skip"
    """Skip a tick while the job the previous tick (or trigger) made is unfinished."""


class CatchUp(StrEnum):
    NONE = "none"
    """Ticks missed while no server ran are skipped."""
    LATEST = "latest"
    """The most recent missed tick runs once; the older ones are skipped."""


class SkipReason(StrEnum):
    OVERLAP = "overlap"
    MISSED = "missed"


class TickAction(StrEnum):
    FIRE = "fire"
    SKIP_OVERLAP = "skip_overlap"
    SKIP_MISSED = "skip_missed"

    @property
    def skip_reason(self) -> SkipReason | None:
        return {
            TickAction.FIRE: None,
            TickAction.SKIP_OVERLAP: SkipReason.OVERLAP,
            TickAction.SKIP_MISSED: SkipReason.MISSED,
        }[self]


class RunOutcome(StrEnum):
    """What became of one tick (or trigger) of a schedule, as its run history says."""

    FIRED = "fired"
    TRIGGERED = "triggered"
    SKIPPED_OVERLAP = "skipped_overlap"
    MISSED = "missed"


# ---------------------------------------------------------------------------------------
# Cron rules


HOST_ZONE_NAMES: Final = frozenset({"localtime"})
"""Names a system's zone database may hold for the host's own zone, not an IANA zone:
Debian links /usr/share/zoneinfo/localtime to /etc/localtime, so `available_timezones()`
lists it. Each server would read its own host's zone, and servers in other zones would
compute other ticks. (`Factory`, by contrast, is an IANA zone: the same everywhere.)
Refused from callers; a schedule stored with one before is still read (`stored`)."""


@cache
def _known_zones() -> frozenset[str]:
    return frozenset(available_timezones())


def zone_for(name: str, *, stored: bool = False) -> tzinfo:
    """The time zone an IANA name stands for, or InvalidInput naming the `timezone` field.
    `stored`: the name is a stored schedule's, not a caller's, and a host's own zone
    (HOST_ZONE_NAMES) stored before it was refused is read as it was then, so the schedule
    still lists and fires until its time zone is changed."""
    if not 0 < len(name) <= TIMEZONE_MAX_LENGTH:
        raise InvalidInput("timezone", f"must be 1..{TIMEZONE_MAX_LENGTH} characters")
    if name == "UTC":
        return UTC
    if name.casefold() in HOST_ZONE_NAMES and not stored:
        raise InvalidInput(
            "timezone",
            f"{name!r} is the server's own zone, not an IANA name (servers in other zones "
            "would fire at other times): use an IANA name such as Europe/Berlin",
        )
    known = _known_zones()
    unknown = InvalidInput(
        "timezone", f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin"
    )
    # Without a readable list (no system database, no tzdata), ZoneInfo alone decides.
    if known and name not in known:
        raise unknown
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise unknown from None


def _five_fields(expression: str) -> str:
    text = " ".join(expression.split())
    if not text:
        raise InvalidInput("cron", "must not be empty")
    if len(text) > CRON_MAX_LENGTH:
        raise InvalidInput("cron", f"must be at most {CRON_MAX_LENGTH} characters")
    if text.startswith("@"):
        fields = CRON_NAMES.get(text.lower())
        if fields is None:
            raise InvalidInput("cron", f"unknown name {text!r}: use one of {', '.join(CRON_NAMES)}")
        return fields
    if len(text.split(" ")) != 5:
        raise InvalidInput(
            "cron",
            "must have 5 fields (minute hour day-of-month month day-of-week) or be one of "
            + ", ".join(CRON_NAMES),
        )
    return text


@dataclass(frozen=True, slots=True)
class CronRule:
    """A cron expression in a time zone: when a schedule fires, as instants in UTC."""

    expression: str
    timezone: str
    fields: str = field(repr=False)
    zone: tzinfo = field(repr=False, compare=False)

    @classmethod
    def parse(
        cls, expression: str, timezone: str = DEFAULT_TIMEZONE, *, stored: bool = False
    ) -> CronRule:
        """Check both; a refusal names its field (`cron` or `timezone`). `stored`:
        the time zone is a stored schedule's, not a caller's (`zone_for`'s `stored`)."""
        fields = _five_fields(expression)
        zone = zone_for(timezone, stored=stored)
        try:
            next(CronSim(fields, _FIXED_POINT.astimezone(zone)))
        except CronSimError as error:
            raise InvalidInput("cron", f"is not a valid cron expression ({error})") from None
        except StopIteration:
            pass  # valid, but with no fire time in the 50 years cronsim looks at: next_after says
        return cls(expression.strip(), timezone, fields, zone)

    def next_after(self, moment: datetime) -> datetime | None:
        """The first fire time strictly after `moment` (None: none within 50 years)."""
        ticks = CronSim(self.fields, moment.astimezone(self.zone))
        for _ in range(_MAX_REPEATS):
            try:
                candidate = next(ticks).astimezone(UTC)
            except StopIteration:
                return None
            if candidate > moment:
                return candidate
        return None

    def upcoming(self, after: datetime, count: int = UPCOMING_COUNT) -> list[datetime]:
        """The next `count` fire times after `after`."""
        found: list[datetime] = []
        moment = after
        while len(found) < count:
            following = self.next_after(moment)
            if following is None:
                break
            found.append(following)
            moment = following
        return found

    def latest_due(self, first_due: datetime, now: datetime) -> datetime:
        """The most recent fire time in [first_due, now] (`first_due` is one, and is not
        after `now`). After a long downtime there may be very many: the search looks back
        from `now` over growing windows instead of walking them all."""
        following = self.next_after(first_due)
        if following is None or following > now:
            return first_due
        for window in _LATEST_TICK_WINDOWS:
            begin = now - window
            if begin <= first_due:
                break
            found = self._last_between(begin, now)
            if found is not None:
                return found
        return self._last_between(first_due, now) or first_due

    def _last_between(self, begin: datetime, end: datetime) -> datetime | None:
        """The last fire time after `begin` and not after `end`."""
        last = None
        moment = begin
        while (following := self.next_after(moment)) is not None and following <= end:
            last = moment = following
        return last


@lru_cache(maxsize=1024)
def _stored_rule(expression: str, timezone: str) -> CronRule:
    """Stored schedules' rules, parsed once per process (lists show every schedule's
    next runs; a rule is immutable)."""
    return CronRule.parse(expression, timezone, stored=True)


def first_run_at(rule: CronRule, now: datetime) -> datetime:
    """When a new (or resumed, or re-timed) schedule first fires."""
    found = rule.next_after(now)
    if found is None:
        raise InvalidInput("cron", "never fires (no matching time in the next 50 years)")
    return found


# ---------------------------------------------------------------------------------------
# Schedules


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """The job each tick creates."""

    type: str
    payload: JsonValue = field(default_factory=dict)
    priority: int = PRIORITY_DEFAULT
    max_attempts: int = 1
    timeout_seconds: float | None = None
    concurrency_key: str | None = None

    def spec(
        self, *, idempotency_key: str | None = None, origin: Mapping[str, JsonValue] | None = None
    ) -> JobSpec:
        return JobSpec(
            type=self.type,
            payload=self.payload,
            priority=self.priority,
            max_attempts=self.max_attempts,
            timeout_seconds=self.timeout_seconds,
            concurrency_key=self.concurrency_key,
            idempotency_key=idempotency_key,
            origin=origin,
        )

    def validate(self) -> None:
        """A job's own rules, its fields named as the schedule's (`job.priority`)."""
        try:
            self.spec().validate()
        except InvalidInput as error:
            raise InvalidInput(f"job.{error.field}", error.message) from None


JOB_FIELDS: Final = frozenset(ScheduledJob.__dataclass_fields__)
NULLABLE_JOB_FIELDS: Final = frozenset({"payload", "timeout_seconds", "concurrency_key"})


@dataclass(frozen=True, slots=True)
class ScheduleSpec:
    """What a client asks for when it creates a schedule."""

    name: str
    cron: str
    job: ScheduledJob
    timezone: str = DEFAULT_TIMEZONE
    overlap: Overlap = Overlap.ALLOW
    catch_up: CatchUp = CatchUp.NONE
    paused: bool = False

    def validate(self) -> CronRule:
        validate_schedule_name(self.name)
        rule = CronRule.parse(self.cron, self.timezone)
        self.job.validate()
        return rule


def validate_schedule_name(name: str) -> None:
    if not SCHEDULE_NAME_PATTERN.match(name):
        raise InvalidInput(
            "name", "must be 1..100 characters of [A-Za-z0-9_.-], starting with a letter or digit"
        )
    if id_in_reference(name) is not None:
        raise InvalidInput(
            "name",
            "must not read as an id (a UUID, with or without dashes): routes take a "
            "schedule's id or its name, and would take this one for an id",
        )


def id_in_reference(reference: str) -> UUID | None:
    """The id a reference to a schedule (what routes, the SDK and the CLI take: its id or
    its name) names, when it reads as one; None when it can only be a name. Names that
    would read as an id are refused, so a reference means one schedule."""
    try:
        return UUID(reference)
    except ValueError:
        return None


_CURSOR_KIND: Final = "schedule"
_RUN_CURSOR_KIND: Final = "run"
_MAX_RUN_ID: Final = 2**63 - 1
"""The largest id a run can have (a BIGINT on PostgreSQL, SQLite's INTEGER)."""


@dataclass(frozen=True, slots=True)
class ScheduleCursor:
    """A position in a workspace's list of schedules (by name): the last name of the page
    before. The next page holds the names after it, so schedules created or deleted
    meanwhile never shift a page nor make one repeat a schedule."""

    name: str

    def encode(self) -> str:
        return encode_cursor(f"{_CURSOR_KIND}:{self.name}")

    @classmethod
    def decode(cls, token: str) -> ScheduleCursor:
        """A cursor as `encode` wrote it; InvalidInput naming `cursor` for anything else."""
        try:
            kind, name = decode_cursor(token).split(":", 1)
        except ValueError:
            raise invalid_cursor() from None
        if kind != _CURSOR_KIND or not SCHEDULE_NAME_PATTERN.match(name):
            raise invalid_cursor()
        return cls(name)


@dataclass(frozen=True, slots=True)
class ScheduleRunCursor:
    """A position in one schedule's history (newest first): the last run of the page
    before. The next page holds the runs recorded before it (smaller ids), so runs recorded
    meanwhile never shift a page nor make one repeat a run. It names its schedule: another
    schedule's history is another list, and its cursors are refused there."""

    schedule_id: UUID
    run_id: int

    def encode(self) -> str:
        return encode_cursor(f"{_RUN_CURSOR_KIND}:{self.schedule_id.hex}:{self.run_id}")

    @classmethod
    def decode(cls, token: str) -> ScheduleRunCursor:
        """A cursor as `encode` wrote it; InvalidInput naming `cursor` for anything else
        (another list's cursor included)."""
        try:
            kind, schedule_hex, run_id = decode_cursor(token).split(":")
            if kind != _RUN_CURSOR_KIND or not run_id.isdigit() or len(schedule_hex) != 32:
                raise ValueError(kind)
            cursor = cls(UUID(hex=schedule_hex), int(run_id))
        except ValueError:
            raise invalid_cursor() from None
        if not 0 < cursor.run_id <= _MAX_RUN_ID:
            raise invalid_cursor()
        return cursor

    def check_list(self, schedule_id: UUID) -> None:
        """Refuse (InvalidInput naming `cursor`) a cursor of another schedule's history."""
        if self.schedule_id != schedule_id:
            raise invalid_cursor()


@dataclass(frozen=True, slots=True)
class Schedule:
    """A schedule as it was read or written."""

    id: UUID
    workspace_id: UUID
    name: str
    cron: str
    timezone: str
    job: ScheduledJob
    overlap: Overlap
    catch_up: CatchUp
    paused: bool
    next_run_at: datetime | None
    """The tick it fires next; None while paused."""
    last_run_at: datetime | None
    """The tick (or trigger time) of the last job it made."""
    last_job_id: UUID | None
    last_skipped_at: datetime | None
    last_skip_reason: SkipReason | None
    firing_tick: datetime | None
    """A tick decided to fire whose job is not yet known to exist: whichever server sees
    it creates the job (idempotently) and clears it."""
    created_at: datetime
    updated_at: datetime
    version: int

    @property
    def rule(self) -> CronRule:
        return _stored_rule(self.cron, self.timezone)

    def upcoming(self, count: int = UPCOMING_COUNT) -> list[datetime]:
        """Its next fire times, `next_run_at` first; none while paused."""
        if self.next_run_at is None:
            return []
        return [self.next_run_at, *self.rule.upcoming(self.next_run_at, count - 1)]


def new_schedule_next_run(spec: ScheduleSpec, rule: CronRule, now: datetime) -> datetime | None:
    return None if spec.paused else first_run_at(rule, now)


@dataclass(frozen=True, slots=True)
class ScheduleChanges:
    """A partial update (PATCH): None leaves a field as it is; `job` names the job's fields
    to replace. The name is the schedule's handle and does not change."""

    cron: str | None = None
    timezone: str | None = None
    job: Mapping[str, Any] | None = None
    overlap: Overlap | None = None
    catch_up: CatchUp | None = None
    paused: bool | None = None


def decide_update(schedule: Schedule, changes: ScheduleChanges, now: datetime) -> Schedule | None:
    """The schedule as the changes leave it; None when they leave it as it is (nothing to
    store: its version stays, so a client holding it is not refused for a change that
    never was). A new cron or time zone, and resuming, start its ticks afresh from `now`
    (nothing missed in between fires); pausing clears `next_run_at`."""
    cron = schedule.cron if changes.cron is None else changes.cron
    timezone = schedule.timezone if changes.timezone is None else changes.timezone
    rule = CronRule.parse(cron, timezone, stored=changes.timezone is None)
    job = schedule.job
    if changes.job:
        unknown = set(changes.job) - JOB_FIELDS
        if unknown:
            raise InvalidInput(f"job.{sorted(unknown)[0]}", "is not a field of a scheduled job")
        for name, value in changes.job.items():
            if value is None and name not in NULLABLE_JOB_FIELDS:
                raise InvalidInput(f"job.{name}", "must not be null")
        job = replace(job, **changes.job)
        job.validate()
    paused = schedule.paused if changes.paused is None else changes.paused
    retimed = (rule.expression, timezone) != (schedule.cron, schedule.timezone)
    retimed = retimed or paused != schedule.paused
    next_run_at = schedule.next_run_at
    if paused:
        next_run_at = None
    elif retimed or next_run_at is None:
        next_run_at = first_run_at(rule, now)
    updated = replace(
        schedule,
        cron=rule.expression,
        timezone=timezone,
        job=job,
        overlap=schedule.overlap if changes.overlap is None else changes.overlap,
        catch_up=schedule.catch_up if changes.catch_up is None else changes.catch_up,
        paused=paused,
        next_run_at=next_run_at,
    )
    unchanged = updated == schedule and same_json(updated.job.payload, schedule.job.payload)
    return None if unchanged else updated


# ---------------------------------------------------------------------------------------
# Ticks


@dataclass(frozen=True, slots=True)
class TickDecision:
    """What to do with a schedule found due: fire or skip `tick`, then wait for
    `next_run_at`."""

    tick: datetime
    action: TickAction
    next_run_at: datetime | None


def is_due(schedule: Schedule, now: datetime) -> bool:
    return schedule.next_run_at is not None and schedule.next_run_at <= now


def decide_tick(
    schedule: Schedule, now: datetime, *, previous_run_unfinished: bool
) -> TickDecision | None:
    """Decide a due schedule's tick (None when it is not due).

    Only the most recent due tick is considered: ticks older than it were missed (no
    server ran, or none reached the database) and are never fired one by one. The most
    recent one fires if it is on time (within `LATE_TICK_GRACE`) or `catch_up` is
    `latest`; otherwise it too is skipped as missed. A tick that would fire is skipped
    instead when `overlap` is `skip` and the previous run is unfinished. Either way the
    schedule moves on to its first fire time after `now`.
    """
    if not is_due(schedule, now):
        return None
    assert schedule.next_run_at is not None
    rule = schedule.rule
    tick = rule.latest_due(schedule.next_run_at, now)
    next_run_at = rule.next_after(now)
    late = now - tick > LATE_TICK_GRACE
    if late and schedule.catch_up == CatchUp.NONE:
        action = TickAction.SKIP_MISSED
    elif schedule.overlap == Overlap.SKIP and previous_run_unfinished:
        action = TickAction.SKIP_OVERLAP
    else:
        action = TickAction.FIRE
    return TickDecision(tick, action, next_run_at)


def tick_text(tick: datetime) -> str:
    """A tick as its idempotency key and events write it: an ISO instant in UTC, to the
    second (`2026-12-05T02:30:00Z`)."""
    return tick.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def tick_idempotency_key(schedule_id: UUID, tick: datetime) -> str:
    """The key of the job a tick creates: one job per tick, whichever server fires it."""
    return f"{SCHEDULE_KEY_PREFIX}{schedule_id}:{tick_text(tick)}"


def manual_idempotency_key(schedule_id: UUID, token: str) -> str:
    """The key of the job a trigger ("run now") creates: `token` is the caller's
    idempotency key, or a fresh id."""
    if not 0 < len(token) <= MANUAL_KEY_MAX_LENGTH:
        raise InvalidInput("idempotency_key", f"must be 1..{MANUAL_KEY_MAX_LENGTH} characters")
    return f"{SCHEDULE_KEY_PREFIX}{schedule_id}:manual:{token}"


def job_origin(schedule: Schedule, tick: datetime | None) -> dict[str, JsonValue]:
    """What the created job's `job.created` event says of where it came from; `tick` None
    for a trigger."""
    origin: dict[str, JsonValue] = {
        "schedule_id": str(schedule.id),
        "schedule": schedule.name,
        "tick": None if tick is None else tick_text(tick),
    }
    if tick is None:
        origin["manual"] = True
    return origin


def schedule_actor(schedule_id: UUID) -> str:
    """Who the events of a scheduled job's creation name."""
    return f"schedule:{schedule_id}"


@dataclass(frozen=True, slots=True)
class ScheduleRun:
    """One entry of a schedule's history: a tick fired or skipped, or a trigger."""

    id: int
    schedule_id: UUID
    tick: datetime | None
    outcome: RunOutcome
    job_id: UUID | None
    created_at: datetime
    job_status: str | None = None
    """The job's status when read (None when it made none, or the job is gone)."""


def run_outcome(action: TickAction) -> RunOutcome:
    return {
        TickAction.FIRE: RunOutcome.FIRED,
        TickAction.SKIP_OVERLAP: RunOutcome.SKIPPED_OVERLAP,
        TickAction.SKIP_MISSED: RunOutcome.MISSED,
    }[action]
