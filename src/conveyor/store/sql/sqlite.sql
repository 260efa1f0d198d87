-- SQLite's own statements (see conveyor/store/queries.py).
--
-- Why they differ from PostgreSQL's: SQLite has one writer, so there is nothing to skip
-- past (no SKIP LOCKED) and rows commit in id order (tx is 0). Every statement sent from
-- the event loop to SQLite's thread and back costs a thread hop, which outweighs the
-- statement itself, so the hot paths run a whole batch as one function on the writer's
-- thread (conveyor/store/sqlite_jobs.py), one simple statement per job. Timestamps are
-- REAL Unix seconds, UUIDs and JSON text; lists bind as JSON arrays (json_each).

-- name: insert_job
INSERT INTO jobs (id, workspace_id, type, status, priority, payload, result, error,
    progress_percent, agent_task_id, attempt, max_attempts, run_at, idempotency_key,
    worker_id, lease_id, lease_expires_at, retry_of, retry_backoff_seconds,
    retry_backoff_max_seconds, created_at, started_at, completed_at, updated_at, version,
    last_event_seq, last_step_ordinal, concurrency_key, timeout_seconds)
VALUES (:id, :ws, :type, :status, :priority, :payload, NULL, NULL, 0, :agent_task_id, 1,
    :max_attempts, COALESCE(:run_at, conveyor_now()), :idempotency_key, NULL, NULL, NULL,
    :retry_of, :retry_backoff_seconds, :retry_backoff_max_seconds, conveyor_now(), NULL,
    NULL, conveyor_now(), 1, :event_count, 0, :concurrency_key, :timeout_seconds)
ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
RETURNING {job_columns};

-- name: start_jobs
-- The jobs of :ids (a JSON array, as `in_list` binds lists) start under fresh leases: what
-- the groups' shares picked (`pick_group`, read by the same batch just before), or of
-- those the jobs the domain admitted where a type limit may refuse some (store/claims.py,
-- `Fitted.final`). :limited says whether a limit may govern them (the claim is under
-- limits: the writer is its alone), and those a limit of their names governs (their
-- concurrency key, `type:<type>`: domain/capacity.py, limit_names) start `limited` and
-- count in them (migration 0018's trigger). {claimable} and {leased_status} come from the
-- transition table (a claim is the move between them). The start events are written by
-- the same batch on the writer's thread. A job with a timeout is leased no further than
-- its deadline, timeout_seconds + :grace from its start (SQLite's min() is NULL when an
-- argument is: hence the COALESCE).
UPDATE jobs SET status = {leased_status}, worker_id = :worker_id,
    lease_id = conveyor_uuid4(),
    lease_expires_at = conveyor_after(min(:lease, COALESCE(timeout_seconds + :grace, :lease))),
    lease_seconds = :lease,
    started_at = conveyor_now(), updated_at = conveyor_now(), version = version + 1,
    last_event_seq = last_event_seq + 1,
    limited = CASE WHEN :limited THEN {governed:jobs} ELSE 0 END
WHERE id IN (SELECT value FROM json_each(:ids)) AND {claimable}
RETURNING {job_columns};

-- name: claimable_keys
-- The concurrency keys with jobs due (of the types the claim takes: {type_condition}) in
-- workspace {ws} (a parameter), up to :max_groups: those after {after} in key order, then,
-- if they run short, from the first key up to {after} (`wrapped`); each with its most
-- urgent due job ({pick_columns}, as `pick_group` answers), which is what a group of that key
-- picks with a share of one. One index probe a key (a skip scan of ix_jobs_claimable: the
-- first entry of a key in the index's order is its most urgent due job) and a look-up of
-- that job, in one statement: a `pick_group` per key on top was a read per group offered
-- (docs/benchmarks.md, stop 35). The claim reads it in its own transaction on the writer's
-- thread, so the job found is still due and QUEUED when its group picks. The LIMIT stops
-- each scan as soon as it has enough, so the second runs only when the first ran out.
WITH RECURSIVE later({pick_columns}) AS (
    SELECT {pick_columns:j}
    FROM jobs j WHERE j.id = (
        SELECT id FROM jobs
        WHERE workspace_id = {ws} AND {claimable} AND concurrency_key > {after}
            AND run_at <= conveyor_now() {type_condition}
        ORDER BY concurrency_key, priority, run_at, id LIMIT 1
    )
    UNION ALL
    SELECT {pick_columns:j}
    FROM later, jobs j WHERE j.id = (
        SELECT id FROM jobs
        WHERE workspace_id = {ws} AND {claimable} AND concurrency_key > later.concurrency_key
            AND run_at <= conveyor_now() {type_condition}
        ORDER BY concurrency_key, priority, run_at, id LIMIT 1
    )
), earlier({pick_columns}) AS (
    SELECT {pick_columns:j}
    FROM jobs j WHERE j.id = (
        SELECT id FROM jobs
        WHERE workspace_id = {ws} AND {claimable} AND concurrency_key <= {after}
            AND run_at <= conveyor_now() {type_condition}
        ORDER BY concurrency_key, priority, run_at, id LIMIT 1
    )
    UNION ALL
    SELECT {pick_columns:j}
    FROM earlier, jobs j WHERE j.id = (
        SELECT id FROM jobs
        WHERE workspace_id = {ws} AND {claimable} AND concurrency_key > earlier.concurrency_key
            AND concurrency_key <= {after} AND run_at <= conveyor_now() {type_condition}
        ORDER BY concurrency_key, priority, run_at, id LIMIT 1
    )
)
SELECT {pick_columns}, 0 AS wrapped FROM later
UNION ALL
SELECT {pick_columns}, 1 AS wrapped FROM earlier
LIMIT :max_groups;

-- name: pick_group
-- A group's ({group}: no concurrency key, or :key) most urgent due jobs, as many as its
-- :share: what a claim starts where no limit governs or the fitted shares are final, and
-- weighs where a type limit may refuse jobs. A read per group whose share is more than one
-- or that has no key (a key's share of one is the job `claimable_keys` found), then one
-- `start_jobs` for them all: an UPDATE per group was most of a claim over many keys
-- (docs/benchmarks.md, stop 34). Read in the order of ix_jobs_claimable:
-- `+run_at` keeps SQLite (never ANALYZEd) from taking ix_jobs_due for the due condition,
-- which read every due job of the workspace and sorted them, for each group.
SELECT {pick_columns} FROM jobs
WHERE workspace_id = :ws AND {group} AND {claimable} AND +run_at <= conveyor_now()
    {type_condition}
ORDER BY concurrency_key, priority, run_at, id LIMIT :share;

-- name: take_claim_locks
-- One writer: a transaction's write lock (BEGIN IMMEDIATE) is every workspace's claim lock
-- (PostgreSQL takes an advisory lock per workspace instead).
SELECT 1 AS locked;

-- name: fold_limit_leaves
-- Nothing to fold: a leave is taken off its limits as the job leaves RUNNING (by the
-- completing batch, `completed_leaves`, or migration 0018's trigger), and limit_leaves
-- stays empty.
SELECT 0 AS folded;

-- name: record_start
INSERT INTO limit_starts (workspace_id, name, started_at) VALUES (:ws, :name, conveyor_now());

-- name: named_limits
-- Limits a statement reads by name ({named}): the parallel lists :limit_ws, :limit_names
-- and :limit_most (JSON arrays) as rows o(ws, name, most). The other two lists are read at
-- each name's index (json_extract; SQLite keeps a parsed list for the statement): joining
-- three json_each on their keys compared every element with every other.
(SELECT json_extract(:limit_ws, '$[' || n.key || ']') AS ws, n.value AS name,
    json_extract(:limit_most, '$[' || n.key || ']') AS most
    FROM json_each(:limit_names) n) AS o;

-- name: in_list
-- A list parameter binds as a JSON array.
{column} IN (SELECT value FROM json_each({param}));

-- name: bytewise
-- Text compared and ordered byte by byte: SQLite's own way (BINARY).
{column};

-- name: unindexed
-- A column a condition should not reach through an index: SQLite (never ANALYZEd) takes
-- the index an equality leads, and a unary plus keeps the column off every index.
+{column};

-- name: complete_job
-- One completion of a batch, guarded by its lease and by the statuses the table lets
-- complete; `limited`: whether the batch takes it off its limits (`completed_leaves`).
UPDATE jobs SET status = {completed_status}, result = :result, {completed_values},
    completed_at = conveyor_now(), updated_at = conveyor_now(), version = version + 1,
    last_event_seq = last_event_seq + 1
WHERE id = :job_id AND workspace_id = :ws AND lease_id = :lease_id AND {completable}
RETURNING {job_columns}, limited;

-- name: completed_leaves
-- The limited jobs a batch completed, taken off the limits of their names in one
-- statement (:leaves, a JSON array of [workspace, name, jobs]), which migration 0022's
-- trigger leaves to it: a completion moves a job only from RUNNING and keeps `limited` as
-- it was. PostgreSQL's writes them into limit_leaves instead.
UPDATE limits SET running = running - o.n
FROM (SELECT value ->> 0 AS ws, value ->> 1 AS name, value ->> 2 AS n
    FROM json_each(:leaves)) AS o
WHERE limits.workspace_id = o.ws AND limits.name = o.name;

-- name: workspace_events_after
-- One writer commits events in id order (tx is 0): every committed event can be passed on.
-- Every position is (0, id), so "after (tx, id)" is "tx = 0 and id after": SQLite seeks a
-- row value's first column only, and `(tx, id) > (0, :id)` read every event of the
-- workspace from its first (a long history made each resume slower).
SELECT {event_columns} FROM events
WHERE workspace_id = :ws AND tx = :tx AND id > :id
ORDER BY tx, id LIMIT :limit;

-- name: current_position
SELECT tx, id FROM events WHERE workspace_id = :ws ORDER BY tx DESC, id DESC LIMIT 1;

-- name: events_in_range
SELECT {event_columns} FROM events WHERE job_id = :job_id AND seq BETWEEN :first AND :last;

-- name: throughput_by_minute
-- {finished}: each final status is one range of ix_jobs_workspace_finished.
SELECT (CAST(completed_at / 60 AS INTEGER) * 60) AS minute,
    sum(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END) AS completed,
    sum(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END) AS failed,
    sum(CASE WHEN status = 'CANCELLED' THEN 1 ELSE 0 END) AS cancelled
FROM jobs WHERE workspace_id = :ws AND {finished} AND completed_at IS NOT NULL
    AND completed_at > conveyor_now() + :window
GROUP BY 1 ORDER BY 1;

-- name: try_prune_lock
-- One pruner at a time: SQLite has one writer, and each pruning transaction holds the
-- write lock from its BEGIN IMMEDIATE (PostgreSQL takes an advisory lock instead).
SELECT 1 AS locked;

-- name: prune_jobs
-- One batch: the selection ({prunable}), deleted under the same guard (a final status,
-- finished before the cut-off); then prune_events. Nothing writes in between (one writer,
-- one transaction). Their steps go by the foreign key's ON DELETE CASCADE.
DELETE FROM jobs
WHERE id IN ({prunable}) AND workspace_id = :ws AND {finished}
    AND completed_at < conveyor_after(:age)
RETURNING id;

-- name: prune_events
-- The events of the jobs prune_jobs just deleted (tx is 0 on SQLite).
DELETE FROM events WHERE job_id IN (SELECT value FROM json_each(:job_ids)) RETURNING id;
