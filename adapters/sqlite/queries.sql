-- The SQLite store's statements, one "-- name: xyz" block each, loaded once
-- by adapters/sqlite/queries.py. Parameters are named after record fields;
-- datetimes are passed in the canonical UTC text form (see the migration).
-- Ties on equal timestamps fall back to "position", the insertion order.

-- runs ----------------------------------------------------------------------

-- name: insert_run
INSERT INTO runs (
    id, workflow_id, workflow_name, status, input, config, priority, metadata, output,
    error, created_at, started_at, completed_at, duration_ms, total_cost, total_tokens,
    budget, version, workflow_version
) VALUES (
    :id, :workflow_id, :workflow_name, :status, :input, :config, :priority, :metadata, :output,
    :error, :created_at, :started_at, :completed_at, :duration_ms, :total_cost, :total_tokens,
    :budget, :version, :workflow_version
);

-- name: update_run
-- Updates never rewrite a record's identity (its workflow included) or
-- creation time: SQLite rewrites the entries of every index on a column a
-- statement SETs, even to the value it had, and these never change after the
-- insert. (Same for stages, jobs.)
UPDATE runs SET
    workflow_name = :workflow_name, status = :status,
    input = :input, config = :config, priority = :priority, metadata = :metadata,
    output = :output, error = :error, started_at = :started_at,
    completed_at = :completed_at, duration_ms = :duration_ms, total_cost = :total_cost,
    total_tokens = :total_tokens, budget = :budget, version = :version,
    workflow_version = :workflow_version
WHERE id = :id AND version = :expected_version;

-- name: get_run
SELECT * FROM runs WHERE id = :id;

-- name: get_run_with_stages
-- The run and its stage records in one statement (what a job's start and
-- finish read): one row per stage in get_stages' order, the run's columns,
-- the marker column stage_columns, the stage's columns (all NULL for a run
-- without stages), then stored_output: for a COMPLETED stage of execution
-- group :group, the stored value its output_ref names (the outputs a start
-- passes on, or a finish collects), else NULL. No row: no such run.
SELECT runs.*, 0 AS stage_columns, stages.*, blobs.value AS stored_output
FROM runs
LEFT JOIN stages ON stages.workflow_run_id = runs.id
LEFT JOIN blobs ON blobs.key = stages.output_ref
    AND stages.execution_group = :group AND stages.status = 'COMPLETED'
WHERE runs.id = :id
ORDER BY stages.stage_number, stages.position;

-- name: get_runs_with_stages
-- get_run_with_stages for several runs at once (a worker starting a group of
-- jobs): :runs is a JSON array of [run id, group] pairs, one per run; the
-- rows come run by run in that order.
SELECT runs.*, 0 AS stage_columns, stages.*, blobs.value AS stored_output
FROM json_each(:runs) AS wanted
JOIN runs ON runs.id = wanted.value ->> 0
LEFT JOIN stages ON stages.workflow_run_id = runs.id
LEFT JOIN blobs ON blobs.key = stages.output_ref
    AND stages.execution_group = wanted.value ->> 1 AND stages.status = 'COMPLETED'
ORDER BY wanted.key, stages.stage_number, stages.position;

-- name: run_versions
-- What a finish checks before it decides on the records its start left,
-- instead of reading them again: the run's version and its stages' (ids and
-- versions). Every change to a run or a stage record bumps its version.
SELECT 'run' AS kind, id, version FROM runs WHERE id = :workflow_run_id
UNION ALL
SELECT 'stage', id, version FROM stages WHERE workflow_run_id = :workflow_run_id;

-- name: run_versions_and_job
-- run_versions, and a row for the job only if none of the columns a job's
-- update writes has changed (jobs have no version; a renewed lease moves
-- locked_at, a reap its status and reap_count).
SELECT 'run' AS kind, id, version FROM runs WHERE id = :workflow_run_id
UNION ALL
SELECT 'stage', id, version FROM stages WHERE workflow_run_id = :workflow_run_id
UNION ALL
SELECT 'job', id, 0 FROM jobs
WHERE id = :id AND workflow_run_id = :workflow_run_id AND workflow_id = :workflow_id
  AND stage_id = :stage_id AND status = :status AND priority = :priority
  AND attempt = :attempt AND max_attempts = :max_attempts AND worker_id IS :worker_id
  AND locked_at IS :locked_at AND available_at = :available_at AND payload = :payload
  AND last_error IS :last_error AND reap_count = :reap_count;

-- name: versions_of_runs
-- run_versions for several runs (the finishes of a group): :runs is a JSON
-- array of run ids; each row names its run.
SELECT 'run' AS kind, id AS run_id, id, version FROM runs
WHERE id IN (SELECT value FROM json_each(:runs))
UNION ALL
SELECT 'stage', workflow_run_id, id, version FROM stages
WHERE workflow_run_id IN (SELECT value FROM json_each(:runs));

-- name: jobs_as_written
-- The columns a job's update writes, of the jobs whose ids :jobs (a JSON
-- array) names: a group's finishes check that nothing changed them.
SELECT id, workflow_run_id, workflow_id, stage_id, status, priority, attempt, max_attempts,
    worker_id, locked_at, available_at, payload, last_error, reap_count
FROM jobs WHERE id IN (SELECT value FROM json_each(:jobs));

-- name: pending_runs
-- :workflow_ids is NULL (every workflow) or a JSON array of the workflow ids
-- the caller can serve, :versions NULL or a JSON array of [workflow id,
-- version] pairs; each list is built once per statement and the scan
-- still walks runs_pending in order. INDEXED BY: without statistics SQLite
-- would rather look up status = 'PENDING' in runs_status and sort the lot.
SELECT * FROM runs INDEXED BY runs_pending
WHERE status = 'PENDING'
  AND (:workflow_ids IS NULL OR workflow_id IN (SELECT value FROM json_each(:workflow_ids)))
  AND (:versions IS NULL OR (workflow_id, workflow_version) IN (
      SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each(:versions)))
ORDER BY priority DESC, created_at, position
LIMIT :limit;

-- name: list_runs
-- Newest first, one page at a time (migration 0004 explains the indexes).
-- SQLite plans a statement once, before values are bound, so an optional
-- filter written as (:status IS NULL OR status = :status) could use no index:
-- each combination of filters is a statement of its own. The page starts
-- after the run :before (a keyset on created_at, position); without one, after
-- ('~', 0), which every canonical timestamp (digits first) sorts before. An
-- unknown :before gives no row, hence no runs.
SELECT * FROM runs
WHERE (created_at, position) < (
    SELECT created_at, position FROM runs WHERE id = :before
    UNION ALL SELECT '~', 0 WHERE :before IS NULL
)
ORDER BY created_at DESC, position DESC
LIMIT :limit;

-- name: list_runs_by_status
-- Served by runs_status.
SELECT * FROM runs
WHERE status = :status
  AND (created_at, position) < (
    SELECT created_at, position FROM runs WHERE id = :before
    UNION ALL SELECT '~', 0 WHERE :before IS NULL
)
ORDER BY created_at DESC, position DESC
LIMIT :limit;

-- name: list_runs_by_workflow
-- Served by runs_workflow.
SELECT * FROM runs
WHERE workflow_id = :workflow_id
  AND (created_at, position) < (
    SELECT created_at, position FROM runs WHERE id = :before
    UNION ALL SELECT '~', 0 WHERE :before IS NULL
)
ORDER BY created_at DESC, position DESC
LIMIT :limit;

-- name: list_runs_by_status_and_workflow
-- Served by runs_status or runs_workflow (the planner's choice), the other
-- column checked on the walk.
SELECT * FROM runs
WHERE status = :status AND workflow_id = :workflow_id
  AND (created_at, position) < (
    SELECT created_at, position FROM runs WHERE id = :before
    UNION ALL SELECT '~', 0 WHERE :before IS NULL
)
ORDER BY created_at DESC, position DESC
LIMIT :limit;

-- stages --------------------------------------------------------------------

-- name: insert_stage
INSERT INTO stages (
    id, workflow_run_id, stage_id, stage_name, stage_number, execution_group, status,
    config, output_ref, suspended_state, next_poll_at, poll_interval, max_wait_until,
    metrics, error, error_traceback, attempt, created_at, started_at, completed_at,
    duration_ms, version
) VALUES (
    :id, :workflow_run_id, :stage_id, :stage_name, :stage_number, :execution_group, :status,
    :config, :output_ref, :suspended_state, :next_poll_at, :poll_interval, :max_wait_until,
    :metrics, :error, :error_traceback, :attempt, :created_at, :started_at, :completed_at,
    :duration_ms, :version
);

-- name: update_stage
UPDATE stages SET
    stage_name = :stage_name, stage_number = :stage_number,
    execution_group = :execution_group, status = :status, config = :config,
    output_ref = :output_ref, suspended_state = :suspended_state,
    next_poll_at = :next_poll_at, poll_interval = :poll_interval,
    max_wait_until = :max_wait_until, metrics = :metrics, error = :error,
    error_traceback = :error_traceback, attempt = :attempt, started_at = :started_at,
    completed_at = :completed_at, duration_ms = :duration_ms, version = :version
WHERE workflow_run_id = :workflow_run_id AND stage_id = :stage_id
  AND id = :id AND version = :expected_version;

-- name: delete_stage
DELETE FROM stages WHERE workflow_run_id = :workflow_run_id AND stage_id = :stage_id;

-- name: get_stages
SELECT * FROM stages WHERE workflow_run_id = :workflow_run_id ORDER BY stage_number, position;

-- name: due_suspended_stages
SELECT * FROM stages
WHERE status = 'SUSPENDED' AND next_poll_at <= :now
ORDER BY next_poll_at, created_at, position
LIMIT :limit;

-- jobs ----------------------------------------------------------------------

-- name: insert_job
INSERT INTO jobs (
    id, workflow_run_id, workflow_id, stage_id, status, priority, attempt, max_attempts,
    worker_id, locked_at, available_at, payload, last_error, reap_count, created_at,
    workflow_version, limit_key, limit_max_running, limit_rate_count, limit_rate_per_us
) VALUES (
    :id, :workflow_run_id, :workflow_id, :stage_id, :status, :priority, :attempt, :max_attempts,
    :worker_id, :locked_at, :available_at, :payload, :last_error, :reap_count, :created_at,
    :workflow_version, :limit_key, :limit_max_running, :limit_rate_count, :limit_rate_per_us
);

-- name: update_job
UPDATE jobs SET
    workflow_id = :workflow_id, stage_id = :stage_id,
    status = :status, priority = :priority, attempt = :attempt,
    max_attempts = :max_attempts, worker_id = :worker_id, locked_at = :locked_at,
    available_at = :available_at, payload = :payload, last_error = :last_error,
    reap_count = :reap_count
WHERE id = :id;

-- name: get_job
SELECT * FROM jobs WHERE id = :id;

-- name: get_jobs
SELECT * FROM jobs WHERE workflow_run_id = :workflow_run_id ORDER BY created_at, position;

-- name: lease_next_job
-- The caller holds the write lock (BEGIN IMMEDIATE), so choosing and leasing
-- the job in one statement cannot race with another dequeuer. :workflow_ids
-- is NULL (every workflow) or a JSON array of the workflow ids the worker
-- can run, :versions NULL or a JSON array of the [workflow id, version]
-- pairs it holds (each list built once per statement, a "LIST SUBQUERY" in
-- the plan); the scan still walks jobs_queued in lease order.
--
-- Limits (SPEC §15, migration 0008): a job with a limit_key is passed over
-- while its key has limit_max_running jobs LEASED (jobs_limit_leased) or
-- limit_rate_count leases in (now - per, now] (limit_leases_key; :now_us is
-- now in microseconds since the epoch), so held keys never block the jobs
-- behind them. A job without a key skips both counts. The write lock makes
-- counting and leasing one step; the caller records a rate-limited lease.
UPDATE jobs SET status = 'LEASED', worker_id = :worker_id, locked_at = :now
WHERE position = (
    SELECT position FROM jobs AS q
    WHERE status = 'QUEUED' AND available_at <= :now
      AND (:workflow_ids IS NULL OR workflow_id IN (SELECT value FROM json_each(:workflow_ids)))
      AND (:versions IS NULL OR (workflow_id, workflow_version) IN (
          SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
          FROM json_each(:versions)))
      AND (q.limit_key IS NULL OR (
          (q.limit_max_running IS NULL OR q.limit_max_running > (
              SELECT count(*) FROM jobs AS l
              WHERE l.status = 'LEASED' AND l.limit_key = q.limit_key))
          AND (q.limit_rate_count IS NULL OR q.limit_rate_count > (
              SELECT count(*) FROM limit_leases AS r
              WHERE r.limit_key = q.limit_key
                AND r.leased_us > :now_us - q.limit_rate_per_us AND r.leased_us <= :now_us))))
    ORDER BY priority DESC, created_at, position
    LIMIT 1
)
RETURNING *;

-- name: next_queued_jobs
-- The next :limit jobs lease_next_job would choose, were none of them held by
-- a limit (the caller leases those before the first with a limit_key with
-- lease_jobs, and that one with lease_next_job, which applies its limits).
SELECT position, limit_key FROM jobs
WHERE status = 'QUEUED' AND available_at <= :now
  AND (:workflow_ids IS NULL OR workflow_id IN (SELECT value FROM json_each(:workflow_ids)))
  AND (:versions IS NULL OR (workflow_id, workflow_version) IN (
      SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]')
      FROM json_each(:versions)))
ORDER BY priority DESC, created_at, position
LIMIT :limit;

-- name: lease_jobs
-- Lease the jobs at the :positions (a JSON array) that next_queued_jobs chose.
UPDATE jobs SET status = 'LEASED', worker_id = :worker_id, locked_at = :now
WHERE position IN (SELECT value FROM json_each(:positions))
RETURNING *;

-- name: record_limit_lease
-- A rate-limited job was leased at :now_us: remember it, and forget the key's
-- leases that left its window.
DELETE FROM limit_leases WHERE limit_key = :limit_key AND leased_us <= :now_us - :per_us;

-- name: insert_limit_lease
INSERT INTO limit_leases (limit_key, leased_us) VALUES (:limit_key, :now_us);

-- name: running_runs
-- SPEC §15 max_running_runs; BEGIN IMMEDIATE serialises claims. Served by runs_status.
SELECT workflow_id, count(*) AS running FROM runs
WHERE status = 'RUNNING' AND workflow_id IN (SELECT value FROM json_each(:workflow_ids))
GROUP BY workflow_id;

-- name: renew_lease
UPDATE jobs SET locked_at = :now
WHERE id = :job_id AND status = 'LEASED' AND worker_id = :worker_id;

-- name: stale_jobs
SELECT * FROM jobs
WHERE status = 'LEASED' AND locked_at < :leased_before
ORDER BY locked_at, position
LIMIT :limit;

-- outbox --------------------------------------------------------------------

-- name: append_outbox
-- The per-run sequence is max + 1, read and written inside the caller's
-- BEGIN IMMEDIATE transaction: writers are serialised, so sequences are
-- gap-free and follow commit order without a separate lock on the run.
INSERT INTO outbox (
    id, workflow_run_id, sequence, event_type, payload, causation_id, occurred_at
) VALUES (
    :id, :workflow_run_id,
    (SELECT coalesce(max(sequence), 0) + 1 FROM outbox WHERE workflow_run_id = :workflow_run_id),
    :event_type, :payload, :causation_id, :occurred_at
);

-- name: update_outbox
-- Records the outcome of publication attempts, which also ends their claim:
-- :events is a JSON array of [workflow_run_id, sequence, id, published_at,
-- retry_count, dlq_at], one per event of a flush, each found through the
-- (workflow_run_id, sequence) index. Only the publication fields change: what
-- an event says is fixed when it is appended (so the payload is not encoded
-- again for every attempt).
UPDATE outbox SET
    published_at = u.value ->> 3, retry_count = u.value ->> 4, dlq_at = u.value ->> 5,
    claimed_until = NULL
FROM json_each(:events) AS u
WHERE outbox.workflow_run_id = u.value ->> 0 AND outbox.sequence = u.value ->> 1
  AND outbox.id = u.value ->> 2;

-- name: claim_outbox
-- Unpublished, live events in insertion order. An event still claimed by
-- another flush (claimed_until > now) blocks itself and every later event of
-- its run: the running max over the run's events keeps per-run order.
-- Only the oldest :window such events are looked at, which bounds the work
-- behind a large backlog and never breaks per-run order: a run's earlier
-- events are older, so they are always inside the window with its later ones.
-- RETURNING gives rows in no set order; the caller sorts them by position.
WITH waiting AS (
    SELECT position, workflow_run_id, coalesce(claimed_until > :now, 0) AS is_held
    FROM outbox
    WHERE published_at IS NULL AND dlq_at IS NULL
    ORDER BY position
    LIMIT :window
), ranked AS (
    SELECT position,
           max(is_held) OVER (PARTITION BY workflow_run_id ORDER BY position) AS is_blocked
    FROM waiting
)
UPDATE outbox SET claimed_until = :until
WHERE position IN (
    SELECT position FROM ranked WHERE is_blocked = 0 ORDER BY position LIMIT :limit
)
RETURNING *;

-- name: dead_letters
SELECT * FROM outbox WHERE dlq_at IS NOT NULL ORDER BY position LIMIT :limit;

-- name: get_outbox
SELECT * FROM outbox ORDER BY position;

-- name: get_run_outbox
SELECT * FROM outbox WHERE workflow_run_id = :workflow_run_id ORDER BY sequence;

-- idempotency ---------------------------------------------------------------

-- name: get_idempotency
SELECT * FROM idempotency_keys WHERE key = :key AND command_type = :command_type;

-- name: acquire_idempotency
INSERT INTO idempotency_keys (key, command_type, state, fingerprint, result, created_at)
VALUES (:key, :command_type, :state, :fingerprint, :result, :created_at)
ON CONFLICT (key, command_type) DO NOTHING;

-- name: complete_idempotency
INSERT INTO idempotency_keys (key, command_type, state, fingerprint, result, created_at)
VALUES (:key, :command_type, :state, :fingerprint, :result, :created_at)
ON CONFLICT (key, command_type) DO UPDATE SET
    state = excluded.state, fingerprint = excluded.fingerprint,
    result = excluded.result, created_at = excluded.created_at;

-- name: release_idempotency
-- Only a key still IN_PROGRESS: a command whose commit went through but whose
-- caller saw an error (a lost answer) keeps its COMPLETED key for the retry.
DELETE FROM idempotency_keys
WHERE key = :key AND command_type = :command_type AND state = 'IN_PROGRESS';

-- blobs ---------------------------------------------------------------------

-- name: get_blob
SELECT value FROM blobs WHERE key = :key;

-- name: put_blob
INSERT INTO blobs (key, value) VALUES (:key, :value)
ON CONFLICT (key) DO UPDATE SET value = excluded.value;

-- name: delete_blob
DELETE FROM blobs WHERE key = :key;

-- logs ----------------------------------------------------------------------

-- name: insert_log
INSERT INTO logs (
    id, workflow_run_id, stage_record_id, level, message, metadata, created_at
) VALUES (
    :id, :workflow_run_id, :stage_record_id, :level, :message, :metadata, :created_at
);

-- name: get_logs
SELECT * FROM logs WHERE workflow_run_id = :workflow_run_id ORDER BY position;

-- signals -------------------------------------------------------------------

-- name: insert_signal
INSERT INTO signals (
    id, workflow_run_id, name, payload, created_at, consumed_at, stage_id
) VALUES (
    :id, :workflow_run_id, :name, :payload, :created_at, :consumed_at, :stage_id
);

-- name: consume_signal
-- Only a buffered signal can be consumed: no row changed means another
-- transaction consumed it first (the caller raises StaleVersionError).
UPDATE signals SET consumed_at = :consumed_at, stage_id = :stage_id
WHERE id = :id AND consumed_at IS NULL;

-- name: buffered_signals
SELECT * FROM signals
WHERE workflow_run_id = :workflow_run_id AND consumed_at IS NULL
ORDER BY position;

-- name: get_signals
SELECT * FROM signals WHERE workflow_run_id = :workflow_run_id ORDER BY position;

-- schedules -----------------------------------------------------------------

-- name: insert_schedule
INSERT INTO schedules (
    id, workflow_id, cron, every, input, config, timezone, overlap, catchup, enabled,
    next_fire_at, last_fire_at, last_run_id, created_at, updated_at, version
) VALUES (
    :id, :workflow_id, :cron, :every, :input, :config, :timezone, :overlap, :catchup, :enabled,
    :next_fire_at, :last_fire_at, :last_run_id, :created_at, :updated_at, :version
);

-- name: update_schedule
UPDATE schedules SET
    workflow_id = :workflow_id, cron = :cron, every = :every, input = :input,
    config = :config, timezone = :timezone, overlap = :overlap, catchup = :catchup,
    enabled = :enabled, next_fire_at = :next_fire_at, last_fire_at = :last_fire_at,
    last_run_id = :last_run_id, updated_at = :updated_at, version = :version
WHERE id = :id AND version = :expected_version;

-- name: delete_schedule
DELETE FROM schedules WHERE id = :id;

-- name: get_schedule
-- The caller holds the write lock (BEGIN IMMEDIATE): the schedule cannot
-- change under it until its transaction ends.
SELECT * FROM schedules WHERE id = :id;

-- name: due_schedules
-- Served by schedules_due. The caller holds the write lock, so no other
-- transaction sees these schedules as due until it commits their next fire
-- time. :workflow_ids is NULL (every workflow) or a JSON array of ids.
SELECT * FROM schedules
WHERE enabled = 1 AND next_fire_at <= :now
  AND (:workflow_ids IS NULL OR workflow_id IN (SELECT value FROM json_each(:workflow_ids)))
ORDER BY next_fire_at, id
LIMIT :limit;

-- name: get_schedules
SELECT * FROM schedules ORDER BY id;

-- usage ledger --------------------------------------------------------------

-- name: insert_usage
-- A call_id recorded before breaks usage's UNIQUE constraint (a StoreError).
INSERT INTO usage (
    call_id, workflow_run_id, stage_id, attempt, model, kind, input_tokens, output_tokens,
    cached_input_tokens, reasoning_tokens, cost, priced, note, recorded_at
) VALUES (
    :call_id, :workflow_run_id, :stage_id, :attempt, :model, :kind, :input_tokens,
    :output_tokens, :cached_input_tokens, :reasoning_tokens, :cost, :priced, :note,
    :recorded_at
);

-- name: get_usage_call
SELECT * FROM usage WHERE call_id = :call_id;

-- name: get_usage
-- Served by usage_run, in record order.
SELECT * FROM usage WHERE workflow_run_id = :workflow_run_id ORDER BY position;

-- batch cancels ---------------------------------------------------------------

-- name: insert_batch_cancel
-- A second request to cancel one batch replaces the first.
INSERT INTO batch_cancels (
    batch_id, provider, workflow_run_id, stage_id, requested_at, attempts, last_error
) VALUES (
    :batch_id, :provider, :workflow_run_id, :stage_id, :requested_at, :attempts, :last_error
)
ON CONFLICT (batch_id) DO UPDATE SET
    provider = excluded.provider, workflow_run_id = excluded.workflow_run_id,
    stage_id = excluded.stage_id, requested_at = excluded.requested_at,
    attempts = excluded.attempts, last_error = excluded.last_error;

-- name: update_batch_cancel
-- A cancel another tick has cleared meanwhile stays cleared (no row changes).
UPDATE batch_cancels SET
    provider = :provider, workflow_run_id = :workflow_run_id, stage_id = :stage_id,
    requested_at = :requested_at, attempts = :attempts, last_error = :last_error
WHERE batch_id = :batch_id;

-- name: delete_batch_cancel
DELETE FROM batch_cancels WHERE batch_id = :batch_id;

-- name: pending_batch_cancels
-- Served by batch_cancels_pending.
SELECT * FROM batch_cancels ORDER BY requested_at, batch_id LIMIT :limit;

-- name: get_batch_cancels
SELECT * FROM batch_cancels ORDER BY requested_at, batch_id;

-- schema --------------------------------------------------------------------

-- name: schema_version
SELECT coalesce(max(version), 0) AS version FROM schema_version;

-- name: check_writable
-- Rewrites the newest row unchanged: SQLite reports a read-only file only at
-- the first write, and opening is the moment to say so.
UPDATE schema_version SET applied_at = applied_at
WHERE version = (SELECT max(version) FROM schema_version);
