"""Settings: every one can come from a `CONVEYOR_*` environment variable; the command line
overrides the environment. Documented in the README's Configuration section."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from conveyor.domain.errors import InvalidInput
from conveyor.domain.jobs import DEFAULT_LEASE_SECONDS, DEFAULT_TIMEOUT_GRACE_SECONDS
from conveyor.domain.lifetime import DEFAULT_RETENTION, Retention, validate_days


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = "sqlite:///conveyor.db"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 0
    """In-process worker slots (jobs run at once inside the server); 0 = none."""
    handlers: tuple[str, ...] = ()
    """`module:object` handler registries the in-process workers load."""
    allow_command_jobs: bool = False
    """Let workers run the built-in `command` job type (it runs programs)."""
    worker_workspace: str = ""
    """The workspace whose jobs the in-process workers claim; empty: every workspace (in
    fair turns, by weight)."""
    worker_lease_seconds: float = DEFAULT_LEASE_SECONDS
    shutdown_grace_seconds: float = 30.0
    """How long stopping workers wait for running jobs before handing them back."""
    migrate: bool = False
    """Bring the schema up to date when the server starts."""
    insecure_local: bool = False
    """Serve without API keys (only on a loopback address)."""
    admin_key_file: Path = Path("conveyor-admin.key")
    auth_cache_seconds: float = 10.0
    """PostgreSQL servers remember a valid key this long (changes to keys are announced and
    drop it at once); 0 checks every request against the database. SQLite never caches."""
    session_ttl_seconds: float = 12 * 3600.0
    """How long a dashboard sign-in lasts."""
    cookie_secure: bool = False
    """Mark the session cookie Secure (set it when serving behind HTTPS)."""
    pool_size: int = 10
    sqlite_synchronous: str = "FULL"
    reaper_interval_seconds: float = 2.0
    timeout_grace_seconds: float = DEFAULT_TIMEOUT_GRACE_SECONDS
    """How long past a job's timeout the server still leases it (its worker's time to stop
    the handler and say so); then heartbeats are refused and the reaper takes it back."""
    claim_poll_interval_seconds: float = 10.0
    """How often a waiting claim looks again with no wake-up: only a safety net (claims
    are woken when work is queued, room appears under a limit, or a job comes due)."""
    schedule_recheck_seconds: float = 10.0
    """The scheduler looks at the schedules at least this often: how long a schedule
    created or changed through another server may take to be seen here."""
    sse_ping_seconds: float = 15.0
    sse_buffer_events: int = 1000
    sse_send_timeout_seconds: float = 20.0
    """A stream's client that takes no data for this long is disconnected (it stopped
    reading, or cannot keep up); it may reconnect and resume with Last-Event-ID."""
    max_request_bytes: int = 1_048_576
    max_json_bytes: int = 262_144
    """Largest payload, result or event payload, as JSON text."""
    max_json_depth: int = 32
    rate_limit_per_second: float = 0.0
    """Sustained create/claim requests per key per second; 0 = unlimited."""
    rate_limit_burst: int = 100
    access_log: bool = True
    """Log one line per HTTP request (route, status, duration, key id)."""
    metrics_token: str = ""
    """When set, /metrics wants `Authorization: Bearer <token>` (401 without); unset, it
    answers only on a loopback address (403 elsewhere: metrics name every workspace)."""
    retention_completed_days: int | None = DEFAULT_RETENTION.completed_days
    """Days a COMPLETED job is kept (with its steps and events), unless its workspace
    sets its own; None (`none` or `forever` in the environment) keeps them forever."""
    retention_failed_days: int | None = DEFAULT_RETENTION.failed_days
    retention_cancelled_days: int | None = DEFAULT_RETENTION.cancelled_days
    prune_interval_seconds: float = 60.0
    """How often the pruner deletes what retention lets go."""
    prune_batch_jobs: int = 500
    """Jobs (with their steps and events) the pruner deletes per transaction."""
    log_format: str = "auto"
    """`json`, `text`, or `auto` (JSON unless writing to a terminal)."""
    log_level: str = "INFO"

    @property
    def on_loopback(self) -> bool:
        """Whether the server listens on this machine only."""
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    @property
    def retention(self) -> Retention:
        """The instance's retention: what a workspace that sets none of its own keeps."""
        return Retention(
            completed_days=self.retention_completed_days,
            failed_days=self.retention_failed_days,
            cancelled_days=self.retention_cancelled_days,
        )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for spec in fields(cls):
            raw = environ.get(f"CONVEYOR_{spec.name.upper()}")
            if raw is not None:
                values[spec.name] = _parse(spec.name, spec.type, raw)
        values.update({name: value for name, value in overrides.items() if value is not None})
        return replace(cls(), **values)


def _parse(name: str, kind: object, raw: str) -> Any:
    kind_name = kind if isinstance(kind, str) else getattr(kind, "__name__", str(kind))
    try:
        if kind_name == "bool":
            if raw.lower() in ("1", "true", "yes", "on"):
                return True
            if raw.lower() in ("0", "false", "no", "off", ""):
                return False
            raise ValueError(raw)
        if kind_name == "int":
            return int(raw)
        if kind_name == "int | None":  # days of retention: `none` or `forever` keeps forever
            if raw.strip().lower() in ("none", "forever"):
                return None
            days = int(raw)
            validate_days(days, f"CONVEYOR_{name.upper()}")
            return days
        if kind_name == "float":
            return float(raw)
        if kind_name == "Path":
            return Path(raw)
        if kind_name.startswith("tuple"):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
    except ValueError:
        raise InvalidInput(f"CONVEYOR_{name.upper()}", f"cannot read {raw!r}") from None
    return raw
