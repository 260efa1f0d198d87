-- Statements that read the same on PostgreSQL and SQLite (see conveyor/store/queries.py).
--
-- The database's clock is read through functions both databases have: conveyor_now(),
-- conveyor_after(seconds) (the clock plus some seconds) and conveyor_seconds_since(t).
-- SQLite's connections register them in Python; PostgreSQL's are SQL functions (migration
-- 0011) that the planner inlines, so they cost nothing there.
-- {job_columns}, {claimable}, {leased}… are filled from the domain when the file is loaded.

-- ---------------------------------------------------------------------------------------
-- Jobs

-- name: get_job
SELECT {job_columns} FROM jobs WHERE id = :job_id AND workspace_id = :ws;

-- name: claim_plan
-- The workspaces a claim may take from ({scope}) that have jobs due of the types it takes
-- ({type_condition}), with what the claim needs to know of each: its weight (fair turns),
-- whether limits govern it (then its claims take its claim lock and count), whether a job
-- due has a concurrency key (then its groups are found by skipping through
-- ix_jobs_claimable) and whether one has none. Both read ix_jobs_claimable, led by the
-- workspace and the key: each look asks for the first job in the index's order (as an
-- EXISTS, PostgreSQL walked the workspace's whole history by creation time instead), and
-- `> ''` is "has a key" (a key has at least one character) as the index can seek it.
-- MATERIALIZED: each look runs once a workspace, not again in the WHERE.
WITH planned AS MATERIALIZED (
    SELECT w.id, w.weight,
        EXISTS (SELECT 1 FROM limits l WHERE l.workspace_id = w.id) AS limited,
        (
            SELECT j.concurrency_key FROM jobs j
            WHERE j.workspace_id = w.id AND {claimable:j} AND j.concurrency_key > ''
                AND j.run_at <= conveyor_now() {type_condition}
            ORDER BY j.concurrency_key LIMIT 1
        ) IS NOT NULL AS keyed,
        (
            SELECT j.id FROM jobs j
            WHERE j.workspace_id = w.id AND {claimable:j} AND j.concurrency_key IS NULL
                AND j.run_at <= conveyor_now() {type_condition}
            ORDER BY j.concurrency_key, j.priority, j.run_at, j.id LIMIT 1
        ) IS NOT NULL AS unkeyed
    FROM workspaces w
    WHERE {scope}
)
SELECT id, weight, limited, keyed, unkeyed FROM planned
WHERE keyed OR unkeyed
ORDER BY id;

-- name: next_due
-- When the next job in {scope} comes due: a waiting claim's timer. One walk of ix_jobs_due
-- (by due time) from :looked to the first job in scope: {scope} names the workspace
-- column so no database reaches it through an index (`unindexed`), which would read the
-- workspace's whole history. Jobs due since :looked (negative seconds from now: when the
-- claim looked for due jobs) count too: one that came due between the two looks answers a
-- due time already past, so the claim looks again at once instead of waiting for the next
-- one.
SELECT (
    SELECT j.run_at FROM jobs j
    WHERE {claimable:j} AND j.run_at > conveyor_after(:looked) AND {scope}
    ORDER BY j.run_at LIMIT 1
) AS due, conveyor_now() AS now;

-- name: limit_states
-- The limits named ({named}: `named_limits`, each a workspace, a name and the share `most`
-- of the group it would govern; one primary-key probe each) that may leave their group
-- less than its share: paused, with a rate, or with less room than that; and all the
-- type limits of the workspaces ({workspaces}: a claim reads them before it knows its
-- candidates' types). With how many of their jobs run: read under the workspaces' claim
-- locks, so no claim elsewhere can start one meanwhile, after `fold_limit_leaves` (a job
-- that leaves after the fold still counts here: a claim may start fewer, never more). A
-- limit not read leaves its group its whole share. Every workspace of a claim in one
-- statement. Two branches, not one condition with OR: that compared every limit of the
-- workspaces with every name.
SELECT l.workspace_id, l.name, l.max_running, l.rate_count, l.rate_per_seconds, l.paused,
    conveyor_now() AS now, l.running
FROM {named}
JOIN limits l ON l.workspace_id = o.ws AND l.name = o.name
WHERE l.paused OR l.rate_count IS NOT NULL OR l.max_running - l.running < o.most
UNION ALL
SELECT l.workspace_id, l.name, l.max_running, l.rate_count, l.rate_per_seconds, l.paused,
    conveyor_now() AS now, l.running
FROM limits l
WHERE {workspaces} AND {is_type_limit:l};

-- name: not_held_back
-- A claim's candidates under type limits without room ({named}: `named_limits`, those
-- limits; store/claims.py, `Fitted.held_types`): none of their jobs. Picked and then
-- refused, the most urgent held jobs took the claim's turns, and a worker of a few slots
-- started nothing while jobs of other types waited behind them.
AND NOT EXISTS (SELECT 1 FROM {named} WHERE o.ws = workspace_id AND o.name = {type_limit:jobs})

-- name: limit_version
-- The version of a limit's settings (no row: there is no such limit).
SELECT version FROM limits WHERE workspace_id = :ws AND name = :name;

-- name: count_into_limit
-- A limit created while jobs of its name run (its concurrency key, or `type:<type>`:
-- {matches}) counts them: marked `limited`, their leaving RUNNING takes them off it. Each
-- row is locked: a job ending meanwhile is either counted and then leaves, or gone.
-- Read through the index of running jobs by deadline ({workspace}: the workspace column
-- kept off the indexes, which hold the workspace's whole history).
UPDATE jobs SET limited = true
WHERE {leased} AND {workspace} = :ws AND {matches}
RETURNING id;

-- name: count_out_of_limits
-- After a limit is deleted, in its transaction: the running jobs of its name ({matches}, as
-- in `count_into_limit`) counted in limits (`limited`) none of whose names (its concurrency
-- key, `type:<type>`: {governed:jobs}) has one left count in none, so their leaving writes
-- no leave (migration 0020). Each row is locked: a job ending meanwhile has either left
-- (its leave is written, and the fold after this takes it) or leaves uncounted. Read as
-- `count_into_limit` reads.
UPDATE jobs SET limited = false
WHERE {leased} AND {workspace} = :ws AND {matches} AND limited AND NOT {governed:jobs};

-- name: recent_starts
-- The starts each rate window of the limits named ({named}: those of `limit_states`'s
-- with a rate, in any of a claim's workspaces) counts, oldest first.
SELECT s.workspace_id, s.name, s.started_at FROM {named}
JOIN limit_starts s ON s.workspace_id = o.ws AND s.name = o.name
JOIN limits l ON l.workspace_id = s.workspace_id AND l.name = s.name
WHERE l.rate_per_seconds IS NOT NULL AND s.started_at > conveyor_after(-l.rate_per_seconds)
ORDER BY s.workspace_id, s.name, s.started_at;

-- name: forget_old_starts
-- Starts older than any window of their workspace's limits count for nothing (in the
-- workspaces {workspaces}; a workspace left without a rate forgets them all). Each
-- workspace's bound is worked out once, not for every start.
WITH bounds AS (
    SELECT workspace_id, conveyor_after(-max(rate_per_seconds)) AS oldest FROM limits
    WHERE {workspaces} AND rate_per_seconds IS NOT NULL
    GROUP BY workspace_id
)
DELETE FROM limit_starts WHERE {workspaces} AND started_at <= COALESCE(
    (SELECT b.oldest FROM bounds b WHERE b.workspace_id = limit_starts.workspace_id),
    conveyor_after(0)
);

-- name: find_by_idempotency_keys
SELECT {job_columns} FROM jobs WHERE workspace_id = :ws AND {keys};

-- name: find_expired_leases
-- Through the partial index on leased jobs by deadline.
SELECT {job_columns} FROM jobs
WHERE {leased} AND lease_expires_at < conveyor_now()
ORDER BY lease_expires_at LIMIT :limit;

-- name: apply_change
-- A decision's change, guarded: {guards} hold the statuses the transition table allows and,
-- as the change asks, the version it was decided on, the lease, the progress, an expired
-- deadline (see conveyor/store/changes.py).
UPDATE jobs SET {assignments}, version = version + 1, updated_at = conveyor_now(),
    last_event_seq = last_event_seq + :event_count
WHERE id = :job_id AND workspace_id = :ws AND {guards}
RETURNING {job_columns}, limited;

-- name: extend_lease
-- Not a change of the job (its version stays): a heartbeat never fails a client's
-- compare-and-set. The lease runs :lease seconds from now, or, where the heartbeat names
-- none (NULL), as long as its claim asked for (`lease_seconds`, migration 0023). An
-- attempt with a timeout is never leased past its deadline, started_at + timeout_seconds
-- + :grace (what is left of it is the lease then), and is not extended at all once the
-- deadline has passed: the reaper takes the job back (conveyor/domain/timeouts.py).
UPDATE jobs SET lease_expires_at = conveyor_after(CASE
        WHEN timeout_seconds IS NOT NULL AND timeout_seconds + :grace
            - conveyor_seconds_since(started_at) < COALESCE(:lease, lease_seconds)
            THEN timeout_seconds + :grace - conveyor_seconds_since(started_at)
        ELSE COALESCE(:lease, lease_seconds) END)
WHERE id = :job_id AND workspace_id = :ws AND lease_id = :lease_id AND {leased}
    AND (timeout_seconds IS NULL
        OR conveyor_seconds_since(started_at) < timeout_seconds + :grace)
RETURNING {job_columns};

-- name: reserve_event_seqs
-- Numbers for a report's events, under the job's report guard; the row lock this takes
-- is held to commit, so the numbers are gap-free and commit in order.
UPDATE jobs SET last_event_seq = last_event_seq + :event_count
WHERE id = :job_id AND workspace_id = :ws AND {guard}
RETURNING last_event_seq, type;

-- name: reserve_more_event_seqs
-- Numbers for the events of a step change, on a job already locked by this transaction.
UPDATE jobs SET last_event_seq = last_event_seq + :event_count WHERE id = :job_id
RETURNING last_event_seq, type;

-- name: insert_event
INSERT INTO events (job_id, workspace_id, job_type, seq, step_id, type, actor, payload,
    created_at)
VALUES (:job_id, :ws, :job_type, :seq, :step_id, :type, :actor, :payload, conveyor_now())
RETURNING {event_columns};

-- ---------------------------------------------------------------------------------------
-- Steps

-- name: list_steps
SELECT {step_columns} FROM steps WHERE job_id = :job_id ORDER BY ordinal;

-- name: get_step
SELECT {step_columns} FROM steps WHERE id = :step_id AND job_id = :job_id;

-- name: reserve_step_ordinal
UPDATE jobs SET last_step_ordinal = last_step_ordinal + 1
WHERE id = :job_id AND workspace_id = :ws AND {guard}
RETURNING last_step_ordinal;

-- name: lock_job_for_report
-- A no-op UPDATE: locks the job row (the order reserve_step_ordinal locks in, too) while
-- its report guard holds.
UPDATE jobs SET last_step_ordinal = last_step_ordinal
WHERE id = :job_id AND workspace_id = :ws AND {guard}
RETURNING id;

-- name: insert_step
INSERT INTO steps ({step_columns})
VALUES (:id, :job_id, :ordinal, :name, :phase, :type, :status, {started_at}, {completed_at},
    {duration_ms}, NULL, NULL, NULL)
RETURNING {step_columns};

-- name: update_step
UPDATE steps SET {assignments} WHERE id = :step_id RETURNING {step_columns};

-- ---------------------------------------------------------------------------------------
-- Events

-- name: list_events
SELECT {event_columns} FROM events WHERE job_id = :job_id AND seq > :after
ORDER BY seq LIMIT :limit;

-- name: event_position
SELECT tx, id FROM events WHERE id = :id AND workspace_id = :ws;

-- ---------------------------------------------------------------------------------------
-- Workspaces, keys and dashboard sessions

-- name: insert_workspace
INSERT INTO workspaces (id, slug, created_at) VALUES (:id, :slug, conveyor_now())
ON CONFLICT (slug) DO NOTHING RETURNING id, slug, created_at, weight;

-- name: workspace_by_id
SELECT id, slug, created_at, weight FROM workspaces WHERE id = :id;

-- name: workspace_by_slug
SELECT id, slug, created_at, weight FROM workspaces WHERE slug = :slug;

-- name: list_workspaces
SELECT id, slug, created_at, weight FROM workspaces ORDER BY slug;

-- name: insert_key
INSERT INTO api_keys (id, workspace_id, role, name, secret_hash, created_at, revoked_at)
VALUES (:id, :ws, :role, :name, :hash, conveyor_now(), NULL)
RETURNING id, workspace_id, role, name, secret_hash, created_at, revoked_at;

-- name: key_with_workspace
SELECT k.id, k.workspace_id, k.role, k.name, k.secret_hash, k.created_at, k.revoked_at,
    w.slug, w.created_at AS workspace_created_at, w.weight AS workspace_weight
FROM api_keys k LEFT JOIN workspaces w ON w.id = k.workspace_id WHERE k.id = :id;

-- name: list_instance_keys
SELECT id, workspace_id, role, name, secret_hash, created_at, revoked_at
FROM api_keys WHERE workspace_id IS NULL ORDER BY created_at;

-- name: revoke_instance_key
UPDATE api_keys SET revoked_at = COALESCE(revoked_at, conveyor_now())
WHERE id = :id AND workspace_id IS NULL
RETURNING id, workspace_id, role, name, secret_hash, created_at, revoked_at;

-- name: list_keys
SELECT id, workspace_id, role, name, secret_hash, created_at, revoked_at
FROM api_keys WHERE workspace_id = :ws ORDER BY created_at;

-- name: revoke_key
UPDATE api_keys SET revoked_at = COALESCE(revoked_at, conveyor_now())
WHERE id = :id AND workspace_id = :ws
RETURNING id, workspace_id, role, name, secret_hash, created_at, revoked_at;

-- name: insert_session
INSERT INTO sessions (id, token_hash, key_id, csrf_token, created_at, expires_at)
VALUES (:id, :hash, :key_id, :csrf, conveyor_now(), conveyor_after(:ttl));

-- name: live_session
SELECT k.id, k.workspace_id, k.role, k.name, k.secret_hash, k.created_at, k.revoked_at,
    w.slug, w.created_at AS workspace_created_at, w.weight AS workspace_weight, s.csrf_token
FROM sessions s JOIN api_keys k ON k.id = s.key_id LEFT JOIN workspaces w ON w.id = k.workspace_id
WHERE s.token_hash = :hash AND s.expires_at > conveyor_now() AND k.revoked_at IS NULL;

-- name: delete_session
-- Expired sessions go too, whenever anyone signs out.
DELETE FROM sessions WHERE token_hash = :hash OR expires_at < conveyor_now();

-- ---------------------------------------------------------------------------------------
-- What the overview and the metrics show

-- name: record_worker_claiming
-- A worker asking for work says which types it serves (:types, a JSON array, or NULL for
-- any) and how long it may go unseen before it counts as stopped.
INSERT INTO workers (workspace_id, worker_id, first_seen_at, last_seen_at, types,
    stale_after_seconds)
VALUES (:ws, :worker_id, conveyor_now(), conveyor_now(), :types, :stale_after)
ON CONFLICT (workspace_id, worker_id) DO UPDATE SET last_seen_at = conveyor_now(),
    types = :types, stale_after_seconds = :stale_after;

-- name: record_worker_heartbeat
INSERT INTO workers (workspace_id, worker_id, first_seen_at, last_seen_at)
VALUES (:ws, :worker_id, conveyor_now(), conveyor_now())
ON CONFLICT (workspace_id, worker_id) DO UPDATE SET last_seen_at = conveyor_now();

-- name: queue_depth
-- Only unfinished jobs: read through the partial indexes on those statuses, never the
-- whole history.
SELECT w.slug, j.type, j.status, count(*) AS n FROM jobs j
JOIN workspaces w ON w.id = j.workspace_id
WHERE {unfinished:j}
GROUP BY w.slug, j.type, j.status;

-- name: count_by_type_and_status
SELECT type, status, count(*) AS n FROM jobs WHERE workspace_id = :ws
GROUP BY type, status ORDER BY type, status;

-- name: workers_seen
-- Stopped: not seen for longer than the worker said it could go unseen.
SELECT w.worker_id, w.first_seen_at, w.last_seen_at, w.types,
    w.last_seen_at > conveyor_after(-w.stale_after_seconds) AS active,
    (SELECT count(*) FROM jobs j WHERE j.workspace_id = w.workspace_id
        AND j.worker_id = w.worker_id AND {leased:j}) AS running
FROM workers w WHERE w.workspace_id = :ws AND w.last_seen_at > conveyor_after(:window)
ORDER BY w.last_seen_at DESC LIMIT 200;

-- name: database_now
-- The database's clock, which leases, deadlines and schedules are kept on (servers on
-- several machines agree on when each comes due).
SELECT conveyor_now() AS now;

-- name: due_jobs_by_type
-- The jobs a worker could claim now, by type, and since when the oldest of each has been
-- claimable: the later of its entering the queue and its run_at (a job made today with a
-- run_at in 2020 has waited since today; one held a week and released now, or put back
-- after its lease expired, since now). A QUEUED job's updated_at is when it entered the
-- queue: every move into QUEUED (create, release, expiry, hand-back, retry) stamps it, and
-- nothing else changes a queued job. CASE rather than GREATEST (PostgreSQL) or max()
-- (SQLite): it reads the same on both.
SELECT type, count(*) AS n,
    min(CASE WHEN updated_at > run_at THEN updated_at ELSE run_at END) AS claimable_since
FROM jobs WHERE workspace_id = :ws AND {claimable} AND run_at <= conveyor_now()
GROUP BY type ORDER BY type;

-- ---------------------------------------------------------------------------------------
-- Limits

-- name: next_limit_version
-- The version a limit's PUT takes: its workspace's next, never one given before.
UPDATE workspaces SET limit_versions = limit_versions + 1 WHERE id = :ws
RETURNING limit_versions AS version;

-- name: put_limit
-- A new limit starts at :running, the jobs of its name running (`count_into_limit`); a
-- changed one keeps its count. Either is at :version (`next_limit_version`).
INSERT INTO limits (workspace_id, name, max_running, rate_count, rate_per_seconds, paused,
    created_at, updated_at, running, version)
VALUES (:ws, :name, :max_running, :rate_count, :rate_per_seconds, :paused, conveyor_now(),
    conveyor_now(), :running, :version)
ON CONFLICT (workspace_id, name) DO UPDATE SET max_running = :max_running,
    rate_count = :rate_count, rate_per_seconds = :rate_per_seconds, paused = :paused,
    updated_at = conveyor_now(), version = :version;

-- name: delete_limit
DELETE FROM limits WHERE workspace_id = :ws AND name = :name;

-- name: no_limits_named
-- A guard of `apply_change`: the job's workspace has none of the limits named ({names}).
NOT EXISTS (SELECT 1 FROM limits l WHERE l.workspace_id = :ws AND {names});

-- name: existing_limits
-- Which of the limits named ({names}) a workspace has.
SELECT l.name FROM limits l WHERE l.workspace_id = :ws AND {names} ORDER BY l.name;

-- name: limits_with_counts
-- Limits ({which}) with what they govern now: running jobs (`running`, less the leaves not
-- yet folded into it: migration 0018; none on SQLite), queued ones (by concurrency key, or
-- by type for `type:<type>`), and the starts their rate window counts.
SELECT w.slug AS workspace, l.workspace_id, l.name, l.max_running, l.rate_count,
    l.rate_per_seconds, l.paused, l.created_at, l.updated_at, l.version,
    l.running - (
        SELECT count(*) FROM limit_leaves v
        WHERE v.workspace_id = l.workspace_id
            AND (v.concurrency_key = l.name OR {type_limit:v} = l.name)
    ) AS running,
    CASE WHEN {is_type_limit:l} THEN (
        SELECT count(*) FROM jobs j
        WHERE j.workspace_id = l.workspace_id AND {claimable:j} AND j.type = {limited_type:l}
    ) ELSE (
        SELECT count(*) FROM jobs j
        WHERE j.workspace_id = l.workspace_id AND {claimable:j} AND j.concurrency_key = l.name
    ) END AS queued,
    (
        SELECT count(*) FROM limit_starts s
        WHERE s.workspace_id = l.workspace_id AND s.name = l.name
            AND l.rate_per_seconds IS NOT NULL
            AND s.started_at > conveyor_after(-l.rate_per_seconds)
    ) AS recent_starts
FROM limits l JOIN workspaces w ON w.id = l.workspace_id
WHERE {which}
ORDER BY w.slug, l.name;

-- ---------------------------------------------------------------------------------------
-- Schedules (conveyor/store/schedules.py)

-- name: insert_schedule
-- A name is unique in its workspace: a taken one inserts nothing and answers no row.
INSERT INTO schedules ({schedule_columns})
VALUES (:id, :ws, :name, :cron, :timezone, :job_type, :job_payload, :job_priority,
    :job_max_attempts, :job_timeout_seconds, :job_concurrency_key, :overlap, :catch_up,
    :paused, :next_run_at, NULL, NULL, NULL, NULL, NULL, conveyor_now(), conveyor_now(), 1)
ON CONFLICT (workspace_id, name) DO NOTHING
RETURNING {schedule_columns};

-- name: get_schedule
SELECT {schedule_columns} FROM schedules WHERE id = :id AND workspace_id = :ws;

-- name: schedule_by_name
SELECT {schedule_columns} FROM schedules WHERE name = :name AND workspace_id = :ws;

-- name: list_schedules
-- A page of a workspace's schedules by name ({name}: the column byte by byte, so both
-- databases read them in one order): :offset in, or {after} a cursor's name
-- (schedule_after_name; nothing for the first page).
SELECT {schedule_columns} FROM schedules WHERE workspace_id = :ws {after}
ORDER BY {name} LIMIT :limit OFFSET :offset;

-- name: schedule_after_name
-- Keyset: the names after the cursor's, in the order the list reads them ({name}, as
-- there), so a schedule created or deleted meanwhile never shifts a page.
AND {name} > :after

-- name: count_schedules
SELECT count(*) AS total FROM schedules WHERE workspace_id = :ws;

-- name: update_schedule
-- A decided update, stored only on the version it was decided on.
UPDATE schedules SET cron = :cron, timezone = :timezone, job_type = :job_type,
    job_payload = :job_payload, job_priority = :job_priority,
    job_max_attempts = :job_max_attempts, job_timeout_seconds = :job_timeout_seconds,
    job_concurrency_key = :job_concurrency_key, overlap = :overlap, catch_up = :catch_up,
    paused = :paused, next_run_at = :next_run_at, updated_at = conveyor_now(),
    version = version + 1
WHERE id = :id AND workspace_id = :ws AND version = :version
RETURNING {schedule_columns};

-- name: delete_schedule
-- Its history goes with it (schedule_runs cascade); the jobs it made stay.
DELETE FROM schedules WHERE id = :id AND workspace_id = :ws RETURNING id;

-- name: due_schedules
-- Every workspace's schedules due by the scheduler's clock, and those with a firing left
-- unfinished (a server stopped between deciding a tick and creating its job).
SELECT {schedule_columns} FROM schedules
WHERE next_run_at <= :now OR firing_tick IS NOT NULL
ORDER BY next_run_at LIMIT :limit;

-- name: scheduler_outlook
-- When the scheduler next has something to do (paused schedules have no next run), and
-- whether a firing is left unfinished. Two index probes: what an idle scheduler sends.
SELECT (SELECT min(next_run_at) FROM schedules) AS next_run_at,
    EXISTS (SELECT 1 FROM schedules WHERE firing_tick IS NOT NULL) AS firing;

-- name: claim_tick
-- A due tick's decision, stored by one server only: on the version it was decided on. A
-- tick to fire stays in firing_tick until its job is known to exist.
UPDATE schedules SET next_run_at = :next_run_at, firing_tick = :firing_tick,
    last_skipped_at = COALESCE(:skipped_at, last_skipped_at),
    last_skip_reason = COALESCE(:skip_reason, last_skip_reason),
    updated_at = conveyor_now(), version = version + 1
WHERE id = :id AND version = :version
RETURNING {schedule_columns};

-- name: finish_firing
-- The tick's job exists: the firing is done, by whichever server gets here first. The
-- tick becomes the last run ({last_run}, :at the tick).
UPDATE schedules SET firing_tick = NULL, {last_run},
    updated_at = conveyor_now(), version = version + 1
WHERE id = :id AND firing_tick = :tick
RETURNING {schedule_columns};

-- name: record_trigger
-- A job made by hand becomes the schedule's last run ({last_run}, :at its creation). The
-- row stays locked to commit; the job's history entry, next in the same transaction
-- (`insert_trigger_run`), decides whether this counts: a trigger retried after its job was
-- recorded finds the entry there and rolls both back.
UPDATE schedules SET {last_run}, updated_at = conveyor_now(), version = version + 1
WHERE id = :id AND workspace_id = :ws
RETURNING id;

-- name: last_run
-- `finish_firing`'s and `record_trigger`'s SET: the run (:at, :job_id) is the last run
-- unless a later one is already. A firing finished late, by a server recovering one that
-- stopped, or a trigger retried late, comes after a run that was made after it.
last_job_id = CASE WHEN last_run_at > :at THEN last_job_id ELSE :job_id END,
last_run_at = CASE WHEN last_run_at > :at THEN last_run_at ELSE :at END

-- name: run_unfinished
-- `overlap: skip`: whether the job of the schedule's last run (:last_job_id), or of its
-- last fired tick, is unfinished. The two differ when a firing finished late (a server
-- recovering one that stopped) after a trigger made since its tick: the trigger's job is
-- the last run, and the tick's may still run. Reads uq_schedule_runs_tick back from the
-- newest tick, past the skipped ones.
SELECT EXISTS (
    SELECT 1 FROM jobs j
    WHERE j.workspace_id = :ws AND {unfinished:j} AND (j.id = :last_job_id OR j.id = (
        SELECT r.job_id FROM schedule_runs r
        WHERE r.schedule_id = :id AND r.tick IS NOT NULL AND r.job_id IS NOT NULL
        ORDER BY r.tick DESC LIMIT 1
    ))
) AS unfinished;

-- name: insert_schedule_run
-- One entry per tick, whoever records it; triggers (no tick) each have their own.
INSERT INTO schedule_runs (schedule_id, workspace_id, tick, outcome, job_id, created_at)
VALUES (:schedule_id, :ws, :tick, :outcome, :job_id, conveyor_now())
ON CONFLICT (schedule_id, tick) WHERE tick IS NOT NULL DO NOTHING;

-- name: insert_trigger_run
-- A trigger's entry, one per job (uq_schedule_runs_trigger): nothing comes back when the
-- job has one already, and the caller rolls its `record_trigger` back.
INSERT INTO schedule_runs (schedule_id, workspace_id, tick, outcome, job_id, created_at)
VALUES (:schedule_id, :ws, NULL, :outcome, :job_id, conveyor_now())
ON CONFLICT (schedule_id, job_id) WHERE tick IS NULL DO NOTHING
RETURNING id;

-- name: list_schedule_runs
-- Newest first, with the status of the job each made (none once the job is gone); {before}:
-- nothing for the first page, or run_before_cursor. Through ix_schedule_runs_schedule.
SELECT {schedule_run_columns:r}, j.status AS job_status
FROM schedule_runs r LEFT JOIN jobs j ON j.id = r.job_id AND j.workspace_id = r.workspace_id
WHERE r.schedule_id = :schedule_id AND r.workspace_id = :ws {before}
ORDER BY r.id DESC LIMIT :limit;

-- name: run_before_cursor
-- Keyset: the runs recorded before the cursor's run. A run recorded later has a larger id
-- (a sequence on PostgreSQL; on SQLite one past the largest id the table holds), so it
-- never shifts a page. The cursor's run may be gone (pruned): its id still marks the place.
-- (SQLite could hand an id below it out again only once every run from the cursor's on, of
-- every schedule, were deleted: schedule_runs.id is not AUTOINCREMENT there.)
AND r.id < :before

-- Job lists and bulk actions (conveyor/store/job_lists.py)

-- name: list_jobs_page
-- Newest first; ids are UUIDv7, so they break ties in creation order. {conditions}: the
-- filter; {after}: nothing, or after_cursor. Through ix_jobs_workspace_created (or the
-- status or type index, by what the filter names).
SELECT {job_columns} FROM jobs WHERE {conditions} {after}
ORDER BY created_at DESC, id DESC LIMIT :limit OFFSET :offset;

-- name: after_cursor
-- The jobs after the cursor's job in list order (keyset), so jobs created meanwhile never
-- shift a page. The cursor's created_at is read from the job's row, exactly as stored
-- (SQLite keeps it finer than the cursor's microseconds); if that job is gone (pruned),
-- the cursor's own time stands in.
AND (created_at, id) < (
    COALESCE(
        (SELECT cursor_job.created_at FROM jobs cursor_job
            WHERE cursor_job.id = :cursor_id AND cursor_job.workspace_id = :ws),
        :cursor_created_at),
    :cursor_id)

-- name: count_jobs_bounded
-- Exact up to :bound jobs, and no further: a list's total reads at most that many index
-- entries, however long the history (past it, the total is an estimate). In list order,
-- so the entries read are the list's newest, through the index its page reads (without
-- an order, PostgreSQL read the table from its oldest rows until enough matched).
SELECT count(*) AS total FROM (
    SELECT 1 FROM jobs WHERE {conditions} ORDER BY created_at DESC LIMIT :bound
) AS bounded;

-- name: not_yet_retried
-- A condition of bulk retries: no job holds the idempotency key a retry of this one
-- takes by default (:retry_key_prefix and the id, see domain/idempotency.py), found
-- through the unique index on idempotency keys. Repeated bulk retries work through what
-- is left, and a job is run again once.
NOT EXISTS (SELECT 1 FROM jobs retried WHERE retried.workspace_id = jobs.workspace_id
    AND retried.idempotency_key = :retry_key_prefix || CAST(jobs.id AS TEXT))

-- ---------------------------------------------------------------------------------------
-- Retention and the pruner (conveyor/store/lifetime.py)

-- name: workspace_settings
SELECT settings, weight FROM workspaces WHERE id = :ws;

-- name: lock_workspace_settings
-- A no-op UPDATE: locks the workspace's row while a change of its settings is decided,
-- so two changes at once (each naming other settings) both land.
UPDATE workspaces SET settings = settings WHERE id = :ws RETURNING settings, weight;

-- name: store_workspace_settings
-- The document and the weight in one statement: a change naming both lands whole.
UPDATE workspaces SET settings = :settings, weight = :weight WHERE id = :ws;

-- name: workspaces_with_settings
SELECT id, slug, settings, weight FROM workspaces ORDER BY slug;

-- name: select_prunable_jobs
-- THE selection of what the pruner deletes, kept in this one place: jobs of a workspace
-- that ended in :status (a final status) longer ago than its retention (:age, negative
-- seconds), oldest first, through ix_jobs_workspace_finished. Never an unfinished job:
-- {finished} and completed_at (set only when a job finishes) say so, and every statement
-- that deletes repeats both as its guard. When jobs depend on jobs, the rule "a job an
-- unfinished job depends on is kept" is one more condition here.
SELECT id FROM jobs
WHERE workspace_id = :ws AND status = :status AND {finished}
    AND completed_at < conveyor_after(:age)
ORDER BY completed_at LIMIT :limit

-- name: count_prunable
-- What a pass would delete now (`conveyor prune --dry-run`): the same selection, counted.
SELECT count(*) AS n FROM ({prunable}) AS prunable;

-- name: record_pruned
-- What a pruning transaction deleted, in the same transaction: the furthest event
-- position and the highest event id (kept as the largest seen), and a running count.
INSERT INTO workspace_pruning (workspace_id, event_tx, event_id, highest_event_id,
    jobs_pruned, pruned_at)
VALUES (:ws, :tx, :id, :highest_id, :jobs, conveyor_now())
ON CONFLICT (workspace_id) DO UPDATE SET
    event_tx = CASE WHEN (excluded.event_tx, excluded.event_id)
            > (workspace_pruning.event_tx, workspace_pruning.event_id)
        THEN excluded.event_tx ELSE workspace_pruning.event_tx END,
    event_id = CASE WHEN (excluded.event_tx, excluded.event_id)
            > (workspace_pruning.event_tx, workspace_pruning.event_id)
        THEN excluded.event_id ELSE workspace_pruning.event_id END,
    highest_event_id = CASE WHEN excluded.highest_event_id > workspace_pruning.highest_event_id
        THEN excluded.highest_event_id ELSE workspace_pruning.highest_event_id END,
    jobs_pruned = workspace_pruning.jobs_pruned + excluded.jobs_pruned,
    pruned_at = excluded.pruned_at;

-- name: prune_schedule_runs
-- A batch of a workspace's schedule history older than :age (negative seconds), oldest
-- first through ix_schedule_runs_created.
DELETE FROM schedule_runs WHERE id IN (
    SELECT id FROM schedule_runs
    WHERE workspace_id = :ws AND created_at < conveyor_after(:age)
    ORDER BY created_at LIMIT :limit
);

-- name: pruned_events
SELECT event_tx, event_id, highest_event_id, jobs_pruned, pruned_at
FROM workspace_pruning WHERE workspace_id = :ws;
