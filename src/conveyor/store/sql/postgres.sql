-- PostgreSQL's own statements (see conveyor/store/queries.py).
--
-- Why they differ from SQLite's: the hot paths are each one statement, so one round trip
-- and their own transaction. A data-modifying CTE updates the job rows and inserts their
-- events together; the UPDATE's row locks number the events, and FOR UPDATE SKIP LOCKED
-- lets concurrent claimers pass each other instead of queueing on the same rows. Values
-- travel as typed arrays (unnest) or JSON records, and lists bind as arrays (= ANY).

-- ---------------------------------------------------------------------------------------
-- Creating jobs

-- name: insert_jobs
-- Any number of jobs in one statement, with their first events as the domain words them
-- (decide_creation_events; a test compares the two stores' events).
-- Each column comes either as one value per job or, when every job of the batch has the
-- same value, once: the per-job array is then empty, unnest pads it with NULL and COALESCE
-- takes the shared value. A bulk create of uniform jobs sends two arrays (ids, payloads)
-- instead of twelve; the driver's and the database's cost grows with elements.
-- {on_conflict} is there only when a job of the batch carries an idempotency key: ON
-- CONFLICT makes every row a speculative insertion, which costs even rows without one.
-- {answer}: without keys every row is inserted, stamped with the transaction's now(), and
-- that one value is the whole answer; with keys, the rows inserted say which they were.
WITH inserted AS (
    INSERT INTO jobs (id, workspace_id, type, status, priority, payload, result, error,
        progress_percent, agent_task_id, attempt, max_attempts, run_at, idempotency_key,
        worker_id, lease_id, lease_expires_at, retry_of, retry_backoff_seconds,
        retry_backoff_max_seconds, created_at, started_at, completed_at, updated_at,
        version, last_event_seq, last_step_ordinal, concurrency_key, timeout_seconds)
    SELECT j.id, :ws, j.type, j.status, j.priority, j.payload::jsonb, NULL, NULL, 0,
        j.agent_task_id, 1, j.max_attempts, COALESCE(j.run_at, now()), j.idempotency_key,
        NULL, NULL, NULL, j.retry_of, j.backoff, j.backoff_max, now(), NULL, NULL, now(), 1,
        CASE WHEN j.status = 'QUEUED' THEN 2 ELSE 1 END, 0, j.concurrency_key,
        j.timeout_seconds
    FROM (
        SELECT j.id, COALESCE(j.type, :type::text) AS type,
            COALESCE(j.status, :status::text) AS status,
            COALESCE(j.priority, :priority::smallint) AS priority,
            COALESCE(j.payload, :payload::text) AS payload,
            COALESCE(j.agent_task_id, :agent_task_id::text) AS agent_task_id,
            COALESCE(j.max_attempts, :max_attempts::int) AS max_attempts,
            COALESCE(j.run_at, :run_at::timestamptz) AS run_at,
            COALESCE(j.idempotency_key, :key::text) AS idempotency_key,
            COALESCE(j.retry_of, :retry_of::uuid) AS retry_of,
            COALESCE(j.backoff, :backoff::float8) AS backoff,
            COALESCE(j.backoff_max, :backoff_max::float8) AS backoff_max,
            COALESCE(j.concurrency_key, :concurrency_key::text) AS concurrency_key,
            COALESCE(j.timeout_seconds, :timeout_seconds::float8) AS timeout_seconds
        FROM unnest(:ids::uuid[], :types::text[], :statuses::text[], :priorities::smallint[],
            :payloads::text[], :agent_task_ids::text[], :max_attempts_each::int[],
            :run_ats::timestamptz[], :keys::text[], :retry_ofs::uuid[], :backoffs::float8[],
            :backoff_maxes::float8[], :concurrency_keys::text[], :timeouts::float8[])
            AS j(id, type, status, priority, payload, agent_task_id, max_attempts, run_at,
                idempotency_key, retry_of, backoff, backoff_max, concurrency_key,
                timeout_seconds)
    ) j
    {on_conflict}
    RETURNING id, type, status, priority, retry_of, run_at, created_at
), created_events AS (
    INSERT INTO events (job_id, workspace_id, job_type, seq, step_id, type, actor, payload,
        created_at)
    SELECT id, :ws, type, 1, NULL::uuid, 'job.created', :actor,
        COALESCE(:created_payload::jsonb,
            jsonb_build_object('type', type, 'priority', priority, 'retry_of', retry_of)),
        now()
    FROM inserted
    UNION ALL
    SELECT id, :ws, type, 2, NULL::uuid, 'job.queued', :actor, '{"attempt": 1}'::jsonb, now()
    FROM inserted WHERE status = 'QUEUED'
)
{answer};

-- name: skip_known_idempotency_keys
ON CONFLICT (workspace_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING;

-- name: answer_creation_time
SELECT now() AS created_at;

-- name: answer_inserted_jobs
SELECT id, run_at, created_at FROM inserted;

-- ---------------------------------------------------------------------------------------
-- Claims, completions and changes

-- name: group_picks
-- The most urgent due jobs of each group, as many as its share ({columns} of them): groups
-- without a concurrency key (:free_ws, one share each) and groups with one (:key_ws, :keys).
-- FOR UPDATE SKIP LOCKED lets concurrent claimers pass each other instead of queueing on
-- the same rows. Both read ix_jobs_claimable in its order, which is why concurrency_key
-- leads the ORDER BY: `IS NULL` is no equality to the planner, and without it every claim
-- sorted all of a workspace's due jobs without a key.
SELECT {columns} FROM unnest(:free_ws::uuid[], :free_shares::int[]) AS g(ws, share)
CROSS JOIN LATERAL (
    SELECT id, workspace_id, type, concurrency_key, priority, run_at FROM jobs
    WHERE workspace_id = g.ws AND concurrency_key IS NULL AND {claimable}
        AND run_at <= now() {type_condition}
    ORDER BY concurrency_key, priority, run_at, id
    LIMIT g.share
    FOR UPDATE SKIP LOCKED
) j
UNION ALL
SELECT {columns} FROM unnest(:key_ws::uuid[], :keys::text[], :key_shares::int[])
    AS g(ws, key, share)
CROSS JOIN LATERAL (
    SELECT id, workspace_id, type, concurrency_key, priority, run_at FROM jobs
    WHERE workspace_id = g.ws AND concurrency_key = g.key AND {claimable}
        AND run_at <= now() {type_condition}
    ORDER BY concurrency_key, priority, run_at, id
    LIMIT g.share
    FOR UPDATE SKIP LOCKED
) j;

-- name: claimable_keys
-- The concurrency keys with jobs due (of the types the claim takes: {type_condition}) in
-- a workspace ({ws}), up to :max_groups: those after {after} in key order, then, if they
-- run short, from the first key up to {after} (`wrapped`). {ws} and {after} are the
-- columns of each workspace a claim scans in one statement
-- (`claimable_keys_of_workspaces`). One index probe each (a skip scan of
-- ix_jobs_claimable), in one statement: the LIMIT stops each scan as soon as it has
-- enough, so the second runs only when the first ran out. Keys only, unlike SQLite's: a
-- claim here picks its jobs under row locks (`group_picks`), from scans read ahead on
-- another connection.
WITH RECURSIVE later(concurrency_key) AS (
    SELECT (
        SELECT concurrency_key FROM jobs
        WHERE workspace_id = {ws} AND {claimable} AND concurrency_key > {after}
            AND run_at <= conveyor_now() {type_condition}
        ORDER BY concurrency_key LIMIT 1
    )
    UNION ALL
    SELECT (
        SELECT concurrency_key FROM jobs
        WHERE workspace_id = {ws} AND {claimable} AND concurrency_key > later.concurrency_key
            AND run_at <= conveyor_now() {type_condition}
        ORDER BY concurrency_key LIMIT 1
    )
    FROM later WHERE later.concurrency_key IS NOT NULL
), earlier(concurrency_key) AS (
    SELECT (
        SELECT concurrency_key FROM jobs
        WHERE workspace_id = {ws} AND {claimable} AND concurrency_key <= {after}
            AND run_at <= conveyor_now() {type_condition}
        ORDER BY concurrency_key LIMIT 1
    )
    UNION ALL
    SELECT (
        SELECT concurrency_key FROM jobs
        WHERE workspace_id = {ws} AND {claimable} AND concurrency_key > earlier.concurrency_key
            AND concurrency_key <= {after} AND run_at <= conveyor_now() {type_condition}
        ORDER BY concurrency_key LIMIT 1
    )
    FROM earlier WHERE earlier.concurrency_key IS NOT NULL
)
SELECT concurrency_key, 0 AS wrapped FROM later WHERE concurrency_key IS NOT NULL
UNION ALL
SELECT concurrency_key, 1 AS wrapped FROM earlier WHERE concurrency_key IS NOT NULL
LIMIT :max_groups;

-- name: claimable_keys_of_workspaces
-- The key scans of a claim's keyed workspaces (:workspaces, each from its :afters) in one
-- statement: this file's scan (`claimable_keys`, above, as {scan}) run for each, its LIMIT stopping
-- each workspace's own. In each workspace's scan order: the keys after, then the keys
-- wrapped round to, each in key order.
SELECT g.ws AS workspace_id, k.concurrency_key, k.wrapped
FROM unnest(:workspaces::uuid[], :afters::text[]) WITH ORDINALITY AS g(ws, after, n)
CROSS JOIN LATERAL ({scan}) k
ORDER BY g.n, k.wrapped, k.concurrency_key;

-- name: start_jobs
-- Chosen jobs ({chosen}: id, and whether a limit may govern it: its workspace's claim lock
-- is held) start under fresh leases, each with its job.started event; a job that a limit
-- of its names governs (its concurrency key, `type:<type>`: domain/capacity.py,
-- limit_names) starts `limited` and counts in them, until its leave takes it off them
-- (`completed_leaves`, or migration 0018's trigger), and where a limit has a rate, its
-- start is recorded for the window.
-- Where no limit governs, {chosen} is what the groups' shares pick (`group_picks`), in the
-- same statement; where limits govern, the same when the shares are final (no type limit
-- caps: store/claims.py, `Fitted.final`), else the ids the domain admitted, picked and
-- locked earlier in this transaction; both under the workspaces' claim locks. {claimable} and
-- {leased_status} come from the transition table (a claim is the move between them);
-- {answer} is the projection the caller asked for. A job with a timeout is leased no
-- further than its deadline, timeout_seconds + :grace from its start (LEAST ignores the
-- NULL of a job without one). Stamped with the statement's time, not the transaction's:
-- a limited claim's transaction began before it waited for the claim locks, and a start
-- stamped then would precede the ending that made its room (and shorten its lease).
WITH chosen AS ({chosen}), claimed AS (
    UPDATE jobs SET status = {leased_status}, worker_id = :worker_id,
        lease_id = gen_random_uuid(),
        lease_expires_at = statement_timestamp()
            + make_interval(secs => LEAST(:lease, timeout_seconds + :grace)),
        lease_seconds = :lease,
        started_at = statement_timestamp(), updated_at = statement_timestamp(),
        version = version + 1,
        last_event_seq = last_event_seq + 1,
        limited = CASE WHEN chosen.limited THEN {governed:jobs} ELSE false END
    -- Joined with its rows rather than filtered by id = ANY(ARRAY(…)): a generic plan
    -- cached while the table was small turns the latter into a sequential scan.
    FROM chosen WHERE jobs.id = chosen.id AND {claimable:jobs}
    RETURNING {job_columns:jobs}, jobs.limited
), started AS (
    INSERT INTO events (job_id, workspace_id, job_type, seq, step_id, type, actor, payload,
        created_at)
    SELECT id, workspace_id, type, last_event_seq, NULL, 'job.started', :actor,
        jsonb_build_object('attempt', attempt, 'worker_id', worker_id), statement_timestamp()
    FROM claimed
), counted_in AS (
    SELECT c.workspace_id, n.name, count(*) AS n
    FROM (SELECT * FROM claimed WHERE claimed.limited) c
    CROSS JOIN LATERAL (VALUES (c.concurrency_key), ({type_limit:c})) AS n(name)
    WHERE n.name IS NOT NULL
    GROUP BY c.workspace_id, n.name
), counted AS (
    UPDATE limits l SET running = l.running + s.n
    FROM counted_in s WHERE l.workspace_id = s.workspace_id AND l.name = s.name
    RETURNING l.workspace_id, l.name, l.rate_per_seconds, s.n
), windowed AS (
    INSERT INTO limit_starts (workspace_id, name, started_at)
    SELECT s.workspace_id, s.name, statement_timestamp()
    FROM counted s CROSS JOIN generate_series(1, s.n)
    WHERE s.rate_per_seconds IS NOT NULL
)
SELECT {answer} FROM claimed ORDER BY priority, run_at, id;

-- name: picked_unlimited
-- `start_jobs`'s {chosen} where no limit governs: every job the shares pick, none if a
-- limit has come to one of the workspaces planned (:planned) since the plan was read (a
-- plan serves a few claims: store/claims.py, PLAN_REUSE_SECONDS). Asked once, before the
-- picks, under the workspaces' shared claim locks (`conveyor_no_limits`, migration 0018):
-- a limit being created waits for this claim to commit and then counts its starts, or
-- this claim waits for it and sees it.
SELECT picked.id, false AS limited FROM ({picks}) picked
WHERE (SELECT conveyor_no_limits(:planned::uuid[]));

-- name: picked_limited
-- `start_jobs`'s {chosen} where limits govern and the shares are final: every job they
-- pick ({picks}).
SELECT picked.id, true AS limited FROM ({picks}) picked;

-- name: admitted
-- `start_jobs`'s {chosen} where limits govern and `admit` weighed the candidates: the
-- jobs it admitted.
SELECT id, true AS limited FROM unnest(:ids::uuid[]) AS c(id);

-- name: fold_limit_leaves
-- The leaves of the limited jobs of workspaces (:workspaces; migration 0018) taken off the
-- limits of their names (their key, `type:<type>`), under the workspaces' claim locks
-- (claims and creating a limit hold them). One statement: the rows deleted are the rows
-- counted, however many leaves commit meanwhile.
WITH gone AS (
    DELETE FROM limit_leaves WHERE workspace_id = ANY(:workspaces::uuid[])
    RETURNING workspace_id, concurrency_key, type
), names AS (
    SELECT workspace_id, concurrency_key AS name FROM gone WHERE concurrency_key IS NOT NULL
    UNION ALL
    SELECT g.workspace_id, {type_limit:g} FROM gone g
)
UPDATE limits l SET running = l.running - g.n
FROM (SELECT workspace_id, name, count(*) AS n FROM names GROUP BY workspace_id, name) g
WHERE l.workspace_id = g.workspace_id AND l.name = g.name;

-- name: take_claim_locks
-- The claim locks of workspaces, in one order (no deadlock), held to commit: exclusive for
-- :workspaces (limits govern them: reading the limits' counts and starting more is one
-- step for every claimer; creating or deleting a limit), shared for :shared (a claim under limits
-- whose plan also holds workspaces without: `limits_came`).
SELECT conveyor_claim_locks(:workspaces::uuid[], :shared::uuid[]);

-- name: limits_came
-- Whether a limit has come to one of the workspaces (:workspaces) a claim's plan found
-- without, since: asked under their shared claim locks (the claim then plans afresh).
SELECT EXISTS (SELECT 1 FROM limits l WHERE l.workspace_id = ANY(:workspaces::uuid[])) AS came;

-- name: named_limits
-- Limits a statement reads by name ({named}): the parallel lists :limit_ws, :limit_names
-- and :limit_most as rows o(ws, name, most).
unnest(:limit_ws::uuid[], :limit_names::text[], :limit_most::int[]) AS o(ws, name, most);

-- name: in_list
-- A list parameter binds as an array.
{column} = ANY({param});

-- name: unindexed
-- A column a condition should not reach through an index: PostgreSQL plans by cost.
{column};

-- name: bytewise
-- Text compared and ordered byte by byte, as SQLite's BINARY does, whatever collation the
-- database was made with (under en_US, `Zeta` follows `alpha` and `-`, `.`, `_` are
-- skipped): a list by name reads in the same order on both databases.
{column} COLLATE "C";

-- name: complete_jobs
-- A batch of completions: each job of the workspace named whose lease is still the one
-- given (its status one the table lets complete) is completed with its job.completed
-- event, setting what the domain's decide_completion sets ({completed_values}). One
-- statement whatever the workspaces (an instance worker's batch holds many). The limited
-- ones leave their limits here (`completed_leaves`; migration 0022).
WITH input AS (
    SELECT * FROM jsonb_to_recordset(:completions::jsonb)
        AS c(id uuid, workspace_id uuid, lease_id uuid, result jsonb)
), done AS (
    UPDATE jobs SET status = {completed_status}, result = input.result, {completed_values},
        completed_at = now(), updated_at = now(), version = version + 1,
        last_event_seq = last_event_seq + 1
    FROM input
    WHERE jobs.id = input.id AND jobs.workspace_id = input.workspace_id
        AND jobs.lease_id = input.lease_id
        AND {completable:jobs}
    RETURNING {job_columns:jobs}, jobs.limited
), completed AS (
    INSERT INTO events (job_id, workspace_id, job_type, seq, step_id, type, actor, payload,
        created_at)
    SELECT id, workspace_id, type, last_event_seq, NULL, 'job.completed', :actor,
        jsonb_build_object('attempt', attempt), now()
    FROM done
), left_limits AS ({leaves})
SELECT {answer} FROM done;

-- name: completed_leaves
-- The leaves of the limited jobs a statement completed ({completed}: its CTE of the rows it
-- changed, with `limited`), which migration 0022's trigger leaves to it: a completion
-- moves a job only from RUNNING and keeps `limited` as it was, so these are the jobs it
-- took off their limits. Each wakes its workspace's claimers, as the trigger's leaves do
-- (PostgreSQL folds the same notice within a transaction).
INSERT INTO limit_leaves (workspace_id, concurrency_key, type)
SELECT c.workspace_id, c.concurrency_key, c.type FROM {completed} c
CROSS JOIN LATERAL (SELECT pg_notify('conveyor_jobs', c.workspace_id::text)) woken
WHERE c.limited;

-- name: no_leaves
-- `apply_change_with_events`' {leaves} for a change that completes nothing: not run (a
-- CTE no part of the statement reads, and no insert).
SELECT NULL;

-- name: apply_change_with_events
-- A guarded change ({change}: the shared apply_change, composed) and its events (any
-- number, none too) in one statement; the events' numbers follow the job's bumped
-- last_event_seq. A completion writes its leaves ({leaves}: `completed_leaves`, else
-- `no_leaves`). Every change on PostgreSQL is this statement.
WITH changed AS ({change}), new_events AS (
    INSERT INTO events (job_id, workspace_id, job_type, seq, step_id, type, actor, payload,
        created_at)
    SELECT changed.id, changed.workspace_id, changed.type,
        changed.last_event_seq - :event_count + e.n, e.step_id, e.type, e.actor, e.payload,
        now()
    FROM changed
    CROSS JOIN jsonb_to_recordset(:events::jsonb)
        AS e(n int, type text, actor text, payload jsonb, step_id uuid)
), left_limits AS ({leaves})
SELECT {job_columns} FROM changed;

-- ---------------------------------------------------------------------------------------
-- Workspace streams: (tx, id) order up to the horizon

-- name: workspace_events_after
-- A workspace's events in (tx, id) order, up to the horizon: the oldest transaction still
-- running. Every transaction below it has ended, so nothing can commit behind what this
-- returns; events of younger transactions wait (held) until the older ones are done. The
-- horizon comes from the statement's own snapshot, the one the page is read with.
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS tx)
SELECT horizon.tx AS horizon,
    EXISTS (SELECT 1 FROM events WHERE workspace_id = :ws AND tx >= horizon.tx) AS held,
    page.*
FROM horizon LEFT JOIN LATERAL (
    SELECT {event_columns} FROM events
    WHERE workspace_id = :ws AND (tx, id) > (:tx, :id) AND tx < horizon.tx
    ORDER BY tx, id LIMIT :limit
) page ON true
ORDER BY page.tx, page.id;

-- name: current_position
-- The newest event below the horizon: a stream starting after it misses nothing committed
-- from now on, and a client told its id resumes exactly there.
WITH horizon AS (SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint AS tx)
SELECT last.tx, last.id FROM horizon CROSS JOIN LATERAL (
    SELECT tx, id FROM events WHERE workspace_id = :ws AND tx < horizon.tx
    ORDER BY tx DESC, id DESC LIMIT 1
) last;

-- name: foreign_events_exist
-- Transaction ids belong to one PostgreSQL server. Events restored onto another keep the
-- old server's, which may lie beyond any this one has handed out: such an event would
-- never pass the horizon, and events written here would sort before it. Found by one
-- index probe per workspace.
SELECT EXISTS (
    SELECT 1 FROM workspaces CROSS JOIN LATERAL (
        SELECT 1 FROM events
        WHERE events.workspace_id = workspaces.id
            AND events.tx >= pg_snapshot_xmax(pg_current_snapshot())::text::bigint
        LIMIT 1
    ) foreign_event
) AS found;

-- name: adopt_all_events
-- Then every event goes back to tx 1, as migration 0009 left them: in id order, before
-- anything written from now on. All of them, in one transaction: moving only the foreign
-- ones would put them before the rest, and a client's resume point would skip or repeat.
UPDATE events SET tx = 1 WHERE tx <> 1;

-- name: take_adoption_lock
-- One server adopts, the others wait (a transaction-level advisory lock).
SELECT pg_advisory_xact_lock(:lock);

-- name: no_statement_timeout
-- Rewriting every event of a large database takes longer than a statement may.
SET LOCAL statement_timeout = 0;

-- name: events_in_ranges
-- One query for every announced range, however many streams wait on them.
SELECT {event_columns:e}
FROM unnest(:job_ids::uuid[], :firsts::int[], :lasts::int[]) AS r(job_id, first_seq, last_seq)
JOIN events e ON e.job_id = r.job_id AND e.seq BETWEEN r.first_seq AND r.last_seq
ORDER BY e.id;

-- ---------------------------------------------------------------------------------------
-- The overview

-- name: throughput_by_minute
-- {finished}: each final status is one range of ix_jobs_workspace_finished.
SELECT CAST(EXTRACT(EPOCH FROM date_trunc('minute', completed_at)) AS BIGINT) AS minute,
    sum(CASE WHEN status = 'COMPLETED' THEN 1 ELSE 0 END) AS completed,
    sum(CASE WHEN status = 'FAILED' THEN 1 ELSE 0 END) AS failed,
    sum(CASE WHEN status = 'CANCELLED' THEN 1 ELSE 0 END) AS cancelled
FROM jobs WHERE workspace_id = :ws AND {finished} AND completed_at IS NOT NULL
    AND completed_at > now() + make_interval(secs => :window)
GROUP BY 1 ORDER BY 1;

-- ---------------------------------------------------------------------------------------
-- Job lists, retention

-- name: estimate_jobs
-- Past the exact count's bound, a list's total is the planner's estimate (PostgreSQL keeps
-- statistics to estimate from; SQLite has none, and says "more than" instead).
EXPLAIN (FORMAT JSON) SELECT 1 FROM jobs WHERE {conditions};

-- name: try_prune_lock
-- One pruner at a time per database: each pruning transaction takes this transaction-level
-- advisory lock first, or, when another server's pruner holds it, leaves the work to it.
SELECT pg_try_advisory_xact_lock(:lock) AS locked;

-- name: prune_jobs
-- One batch in one statement: the selection ({prunable}), the jobs deleted under the same
-- guard (a final status, finished before the cut-off), their events; their steps go by the
-- foreign key's ON DELETE CASCADE. Answers how many, and the furthest event position and
-- highest event id it deleted.
WITH doomed AS ({prunable}), gone AS (
    DELETE FROM jobs USING doomed
    WHERE jobs.id = doomed.id AND jobs.workspace_id = :ws AND {finished:jobs}
        AND jobs.completed_at < conveyor_after(:age)
    RETURNING jobs.id
), gone_events AS (
    DELETE FROM events USING gone WHERE events.job_id = gone.id
    RETURNING events.tx, events.id
)
SELECT (SELECT count(*) FROM gone) AS jobs, (SELECT count(*) FROM gone_events) AS events,
    (SELECT max(id) FROM gone_events) AS highest_id, last.tx AS last_tx, last.id AS last_id
FROM (SELECT 1) AS one LEFT JOIN LATERAL (
    SELECT tx, id FROM gone_events ORDER BY tx DESC, id DESC LIMIT 1
) AS last ON true;
