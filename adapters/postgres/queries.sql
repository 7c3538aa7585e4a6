-- Named queries of PostgresStore, one block per store operation.
--
-- Each block starts with a "-- name: xyz" line and holds one statement with
-- named %(param)s parameters. No string formatting happens anywhere: the
-- schema is chosen per connection through search_path.
--
-- A store effect whose statement must change a row (an insert of a new id, an
-- update at the version its decision read) ends in expect_rows(count(*)),
-- which fails the statement on the server when it changed none (migration
-- 0009): the effects of a transaction go out in one round trip with the
-- statement after them, or with its COMMIT.

-- name: get_run
SELECT id, workflow_id, workflow_name, status, input, config, priority, metadata, output,
       error, created_at, started_at, completed_at, duration_ms, total_cost, total_tokens,
       budget, version, workflow_version
FROM runs
WHERE id = %(id)s;

-- name: lock_run
-- A transaction's read of a run locks it until the end of the transaction:
-- read-modify-write transactions on one run take turns (the second reads
-- what the first committed) instead of failing each other with stale
-- versions. The run row is the per-run mutex; plain reads do not wait on it.
SELECT id, workflow_id, workflow_name, status, input, config, priority, metadata, output,
       error, created_at, started_at, completed_at, duration_ms, total_cost, total_tokens,
       budget, version, workflow_version
FROM runs
WHERE id = %(id)s
FOR NO KEY UPDATE;

-- name: list_runs
-- Newest first, one page at a time (migration 0004 explains the indexes).
-- Each combination of filters is a statement of its own: a plan made for an
-- optional filter ("status IS NULL OR status = ...") could use no index on
-- status, and psycopg prepares a statement run often (generic plans). The
-- page starts after the "before" run, a keyset on (created_at, seq) the
-- index scan starts from: without one, after ('infinity', 0), so at the
-- newest run; an unknown id makes the bound NULL, so no run matches.
SELECT id, workflow_id, workflow_name, status, input, config, priority, metadata, output,
       error, created_at, started_at, completed_at, duration_ms, total_cost, total_tokens,
       budget, version, workflow_version
FROM runs
WHERE (created_at, seq) < (
      coalesce((SELECT created_at FROM runs WHERE id = %(before)s::text),
               CASE WHEN %(before)s::text IS NULL THEN 'infinity'::timestamptz END),
      coalesce((SELECT seq FROM runs WHERE id = %(before)s::text),
               CASE WHEN %(before)s::text IS NULL THEN 0 END))
ORDER BY created_at DESC, seq DESC
LIMIT %(limit)s;

-- name: list_runs_by_status
SELECT id, workflow_id, workflow_name, status, input, config, priority, metadata, output,
       error, created_at, started_at, completed_at, duration_ms, total_cost, total_tokens,
       budget, version, workflow_version
FROM runs
WHERE status = %(status)s::text
  AND (created_at, seq) < (
      coalesce((SELECT created_at FROM runs WHERE id = %(before)s::text),
               CASE WHEN %(before)s::text IS NULL THEN 'infinity'::timestamptz END),
      coalesce((SELECT seq FROM runs WHERE id = %(before)s::text),
               CASE WHEN %(before)s::text IS NULL THEN 0 END))
ORDER BY created_at DESC, seq DESC
LIMIT %(limit)s;

-- name: list_runs_by_workflow
SELECT id, workflow_id, workflow_name, status, input, config, priority, metadata, output,
       error, created_at, started_at, completed_at, duration_ms, total_cost, total_tokens,
       budget, version, workflow_version
FROM runs
WHERE workflow_id = %(workflow_id)s::text
  AND (created_at, seq) < (
      coalesce((SELECT created_at FROM runs WHERE id = %(before)s::text),
               CASE WHEN %(before)s::text IS NULL THEN 'infinity'::timestamptz END),
      coalesce((SELECT seq FROM runs WHERE id = %(before)s::text),
               CASE WHEN %(before)s::text IS NULL THEN 0 END))
ORDER BY created_at DESC, seq DESC
LIMIT %(limit)s;

-- name: list_runs_by_status_and_workflow
SELECT id, workflow_id, workflow_name, status, input, config, priority, metadata, output,
       error, created_at, started_at, completed_at, duration_ms, total_cost, total_tokens,
       budget, version, workflow_version
FROM runs
WHERE status = %(status)s::text AND workflow_id = %(workflow_id)s::text
  AND (created_at, seq) < (
      coalesce((SELECT created_at FROM runs WHERE id = %(before)s::text),
               CASE WHEN %(before)s::text IS NULL THEN 'infinity'::timestamptz END),
      coalesce((SELECT seq FROM runs WHERE id = %(before)s::text),
               CASE WHEN %(before)s::text IS NULL THEN 0 END))
ORDER BY created_at DESC, seq DESC
LIMIT %(limit)s;

-- name: pending_runs
-- SKIP LOCKED: concurrent claimers each get different runs; the row locks
-- last until the claim commits the runs as RUNNING. Served by runs_pending_idx.
-- %(workflow_ids)s is NULL (every workflow) or the ids the caller can serve;
-- %(version_ids)s and %(version_names)s NULL or the (workflow id, version)
-- pairs it holds, as two arrays side by side.
SELECT id, workflow_id, workflow_name, status, input, config, priority, metadata, output,
       error, created_at, started_at, completed_at, duration_ms, total_cost, total_tokens,
       budget, version, workflow_version
FROM runs
WHERE status = 'PENDING'
  AND (%(workflow_ids)s::text[] IS NULL OR workflow_id = ANY (%(workflow_ids)s::text[]))
  AND (%(version_ids)s::text[] IS NULL OR (workflow_id, workflow_version) IN (
      SELECT * FROM unnest(%(version_ids)s::text[], %(version_names)s::text[])))
ORDER BY priority DESC, created_at, seq
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: insert_run
WITH inserted AS (
    INSERT INTO runs (id, workflow_id, workflow_name, status, input, config, priority, metadata,
                      output, error, created_at, started_at, completed_at, duration_ms,
                      total_cost, total_tokens, budget, version, workflow_version)
    VALUES (%(id)s, %(workflow_id)s, %(workflow_name)s, %(status)s, %(input)s, %(config)s,
            %(priority)s, %(metadata)s, %(output)s, %(error)s, %(created_at)s, %(started_at)s,
            %(completed_at)s, %(duration_ms)s, %(total_cost)s, %(total_tokens)s, %(budget)s,
            %(version)s, %(workflow_version)s)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT expect_rows(count(*)) FROM inserted;

-- name: update_run
WITH changed AS (
    UPDATE runs
    SET workflow_id = %(workflow_id)s, workflow_name = %(workflow_name)s, status = %(status)s,
        input = %(input)s, config = %(config)s, priority = %(priority)s,
        metadata = %(metadata)s, output = %(output)s, error = %(error)s,
        created_at = %(created_at)s, started_at = %(started_at)s,
        completed_at = %(completed_at)s, duration_ms = %(duration_ms)s,
        total_cost = %(total_cost)s, total_tokens = %(total_tokens)s, budget = %(budget)s,
        version = %(version)s, workflow_version = %(workflow_version)s
    WHERE id = %(id)s AND version = %(expected_version)s
    RETURNING 1
)
SELECT expect_rows(count(*)) FROM changed;

-- name: get_stages
SELECT id, workflow_run_id, stage_id, stage_name, stage_number, execution_group, status,
       config, output_ref, suspended_state, next_poll_at, poll_interval, max_wait_until,
       metrics, error, error_traceback, attempt, created_at, started_at, completed_at,
       duration_ms, version
FROM stages
WHERE workflow_run_id = %(workflow_run_id)s
ORDER BY stage_number, seq;

-- name: get_stages_with_outputs
-- get_stages, each record with what its output_ref names in blobs if it is a
-- COMPLETED stage of execution group %(group)s (stored_input): found or not,
-- and the value.
SELECT s.id, s.workflow_run_id, s.stage_id, s.stage_name, s.stage_number, s.execution_group,
       s.status, s.config, s.output_ref, s.suspended_state, s.next_poll_at, s.poll_interval,
       s.max_wait_until, s.metrics, s.error, s.error_traceback, s.attempt, s.created_at,
       s.started_at, s.completed_at, s.duration_ms, s.version,
       s.status = 'COMPLETED' AND s.execution_group = %(group)s AS stored_input,
       b.key IS NOT NULL AS stored_found, b.value AS stored_value
FROM stages AS s
LEFT JOIN blobs AS b
       ON s.status = 'COMPLETED' AND s.execution_group = %(group)s AND b.key = s.output_ref
WHERE s.workflow_run_id = %(workflow_run_id)s
ORDER BY s.stage_number, s.seq;

-- name: due_suspended_stages
-- SKIP LOCKED: concurrent pollers claim different stages instead of all but
-- one failing on a stale version. Served by stages_suspended_idx.
SELECT id, workflow_run_id, stage_id, stage_name, stage_number, execution_group, status,
       config, output_ref, suspended_state, next_poll_at, poll_interval, max_wait_until,
       metrics, error, error_traceback, attempt, created_at, started_at, completed_at,
       duration_ms, version
FROM stages
WHERE status = 'SUSPENDED' AND next_poll_at <= %(now)s
ORDER BY next_poll_at, created_at, seq
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: insert_stage
WITH inserted AS (
    INSERT INTO stages (id, workflow_run_id, stage_id, stage_name, stage_number, execution_group,
                        status, config, output_ref, suspended_state, next_poll_at, poll_interval,
                        max_wait_until, metrics, error, error_traceback, attempt, created_at,
                        started_at, completed_at, duration_ms, version)
    VALUES (%(id)s, %(workflow_run_id)s, %(stage_id)s, %(stage_name)s, %(stage_number)s,
            %(execution_group)s, %(status)s, %(config)s, %(output_ref)s, %(suspended_state)s,
            %(next_poll_at)s, %(poll_interval)s, %(max_wait_until)s, %(metrics)s, %(error)s,
            %(error_traceback)s, %(attempt)s, %(created_at)s, %(started_at)s, %(completed_at)s, %(duration_ms)s,
            %(version)s)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT expect_rows(count(*)) FROM inserted;

-- name: update_stage
WITH changed AS (
    UPDATE stages
    SET stage_name = %(stage_name)s, stage_number = %(stage_number)s,
        execution_group = %(execution_group)s, status = %(status)s, config = %(config)s,
        output_ref = %(output_ref)s, suspended_state = %(suspended_state)s,
        next_poll_at = %(next_poll_at)s, poll_interval = %(poll_interval)s,
        max_wait_until = %(max_wait_until)s, metrics = %(metrics)s, error = %(error)s,
        error_traceback = %(error_traceback)s, attempt = %(attempt)s, created_at = %(created_at)s, started_at = %(started_at)s,
        completed_at = %(completed_at)s, duration_ms = %(duration_ms)s, version = %(version)s
    WHERE id = %(id)s AND workflow_run_id = %(workflow_run_id)s AND stage_id = %(stage_id)s
      AND version = %(expected_version)s
    RETURNING 1
)
SELECT expect_rows(count(*)) FROM changed;

-- name: delete_stage
DELETE FROM stages WHERE workflow_run_id = %(workflow_run_id)s AND stage_id = %(stage_id)s;

-- name: lock_job
-- A transaction's read of one job locks it until the end of the transaction,
-- like lock_run: a decision on a job read in READ COMMITTED (lease it if it is
-- QUEUED, release it if this worker holds it) would otherwise act on a row a
-- concurrent transaction is changing, and two callers could both lease it.
-- The second reader waits, then reads what the first committed.
SELECT id, workflow_run_id, workflow_id, stage_id, status, priority, attempt, max_attempts,
       worker_id, locked_at, available_at, payload, last_error, reap_count, created_at,
       workflow_version, limit_key, limit_max_running, limit_rate_count, limit_rate_per_us
FROM jobs
WHERE id = %(id)s
FOR NO KEY UPDATE;

-- name: get_jobs
SELECT id, workflow_run_id, workflow_id, stage_id, status, priority, attempt, max_attempts,
       worker_id, locked_at, available_at, payload, last_error, reap_count, created_at,
       workflow_version, limit_key, limit_max_running, limit_rate_count, limit_rate_per_us
FROM jobs
WHERE workflow_run_id = %(workflow_run_id)s
ORDER BY seq;

-- name: lease_next_job
-- One statement: pick the best available QUEUED job (SKIP LOCKED, so
-- concurrent workers never pick the same one) and lease it. Served by
-- jobs_queued_idx. %(workflow_ids)s is NULL (every workflow) or the ids the
-- worker can run, %(version_ids)s and %(version_names)s NULL or the (workflow
-- id, version) pairs it holds, as two arrays side by side: filters on the
-- index scan (the pairs a hashed subplan built once), which keeps its order.
--
-- Limits (SPEC §15, migration 0008): a job with a limit_key is passed over
-- while its key looks full: limit_max_running jobs LEASED
-- (jobs_limit_leased_idx) or limit_rate_count leases in (now - per, now]
-- (limit_leases_key_idx; %(now_us)s is now in microseconds since the epoch),
-- or the key is in %(held)s (keys this transaction found full under their
-- lock). A job without a key skips every count. These counts see committed
-- leases only: the caller counts again under the key's advisory lock
-- (limit_lock, limit_room) before it keeps a limited lease.
--
-- The leased job's run comes back in the same row (its columns prefixed
-- run__), locked as lock_run locks it, unless the job has a limit key (then
-- the key's lock comes first, and the run is read afterwards). The job's id
-- goes into the transaction's wfk.leased_job setting, for leased_stages.
WITH leased AS (
    UPDATE jobs
    SET status = 'LEASED', worker_id = %(worker_id)s, locked_at = %(now)s
    WHERE id = (
        SELECT id FROM jobs AS q
        WHERE status = 'QUEUED' AND available_at <= %(now)s
          AND (%(workflow_ids)s::text[] IS NULL OR workflow_id = ANY (%(workflow_ids)s::text[]))
          AND (%(version_ids)s::text[] IS NULL OR (workflow_id, workflow_version) IN (
              SELECT * FROM unnest(%(version_ids)s::text[], %(version_names)s::text[])))
          AND (q.limit_key IS NULL OR (
              (%(held)s::text[] IS NULL OR q.limit_key <> ALL (%(held)s::text[]))
              AND (q.limit_max_running IS NULL OR q.limit_max_running > (
                  SELECT count(*) FROM jobs AS l
                  WHERE l.status = 'LEASED' AND l.limit_key = q.limit_key))
              AND (q.limit_rate_count IS NULL OR q.limit_rate_count > (
                  SELECT count(*) FROM limit_leases AS r
                  WHERE r.limit_key = q.limit_key
                    AND r.leased_us > %(now_us)s - q.limit_rate_per_us
                    AND r.leased_us <= %(now_us)s))))
        ORDER BY priority DESC, created_at, seq
        LIMIT 1
        FOR UPDATE SKIP LOCKED
    )
    RETURNING id, workflow_run_id, workflow_id, stage_id, status, priority, attempt, max_attempts,
              worker_id, locked_at, available_at, payload, last_error, reap_count, created_at,
              workflow_version, limit_key, limit_max_running, limit_rate_count, limit_rate_per_us,
              set_config('wfk.leased_job', id, true) AS leased
)
SELECT leased.*, run.*
FROM leased
LEFT JOIN LATERAL (
    SELECT r.id AS run__id, r.workflow_id AS run__workflow_id,
           r.workflow_name AS run__workflow_name, r.status AS run__status,
           r.input AS run__input, r.config AS run__config, r.priority AS run__priority,
           r.metadata AS run__metadata, r.output AS run__output, r.error AS run__error,
           r.created_at AS run__created_at, r.started_at AS run__started_at,
           r.completed_at AS run__completed_at, r.duration_ms AS run__duration_ms,
           r.total_cost AS run__total_cost, r.total_tokens AS run__total_tokens,
           r.budget AS run__budget, r.version AS run__version,
           r.workflow_version AS run__workflow_version
    FROM runs AS r
    WHERE r.id = leased.workflow_run_id AND leased.limit_key IS NULL
    FOR NO KEY UPDATE
) AS run ON true;

-- name: leased_stages
-- After lease_next_job, in the same round trip (a statement of its own, so
-- that it sees what was committed before the run's lock was granted): the
-- stage records of the leased job's run, unless the job has a limit key, as
-- get_stages_with_outputs returns them for the execution group before the
-- leased stage's (whose outputs the leased stage takes as input).
SELECT s.id, s.workflow_run_id, s.stage_id, s.stage_name, s.stage_number, s.execution_group,
       s.status, s.config, s.output_ref, s.suspended_state, s.next_poll_at, s.poll_interval,
       s.max_wait_until, s.metrics, s.error, s.error_traceback, s.attempt, s.created_at,
       s.started_at, s.completed_at, s.duration_ms, s.version,
       (s.status = 'COMPLETED' AND s.execution_group = this.execution_group - 1)
           IS TRUE AS stored_input,
       b.key IS NOT NULL AS stored_found, b.value AS stored_value
FROM jobs AS leased
JOIN stages AS s ON s.workflow_run_id = leased.workflow_run_id
LEFT JOIN stages AS this
       ON this.workflow_run_id = leased.workflow_run_id AND this.stage_id = leased.stage_id
LEFT JOIN blobs AS b
       ON s.status = 'COMPLETED' AND s.execution_group = this.execution_group - 1
      AND b.key = s.output_ref
WHERE leased.id = current_setting('wfk.leased_job', true) AND leased.status = 'LEASED'
  AND leased.worker_id = %(worker_id)s AND leased.limit_key IS NULL
ORDER BY s.stage_number, s.seq;

-- name: advisory_lock
-- Held until the transaction ends. Class 87150 serialises the leases of one
-- limit key, class 87151 the claims of one workflow (max_running_runs); class
-- 87152 is the look turn (look_turn_take).
SELECT 1 AS locked FROM pg_advisory_xact_lock(%(space)s, hashtext(%(key)s));

-- name: advisory_try_lock
-- A lease in a transaction that already holds row locks (a finish that leases
-- the next job) only tries: it never waits on a key in a cycle with another.
SELECT pg_try_advisory_xact_lock(%(space)s, hashtext(%(key)s)) AS locked;

-- name: limit_room
-- Counted under the key's lock, in a statement of its own so that it sees every
-- lease committed before the lock was granted (READ COMMITTED); the leased
-- count includes the caller's own, uncommitted lease.
SELECT (SELECT count(*) FROM jobs
        WHERE status = 'LEASED' AND limit_key = %(limit_key)s) AS leased,
       (SELECT count(*) FROM limit_leases
        WHERE limit_key = %(limit_key)s AND leased_us > %(now_us)s - %(per_us)s
          AND leased_us <= %(now_us)s) AS recent;

-- name: unlease_job
-- Give back a lease its key had no room for (a QUEUED job holds no worker).
UPDATE jobs SET status = 'QUEUED', worker_id = NULL, locked_at = NULL WHERE id = %(id)s
RETURNING id;

-- name: record_limit_lease
-- A rate-limited job was leased at %(now_us)s: remember it, and forget the
-- key's leases that left its window.
WITH pruned AS (
    DELETE FROM limit_leases
    WHERE limit_key = %(limit_key)s AND leased_us <= %(now_us)s - %(per_us)s
)
INSERT INTO limit_leases (limit_key, leased_us) VALUES (%(limit_key)s, %(now_us)s)
RETURNING leased_us;

-- name: running_runs
-- max_running_runs (SPEC §15): counted after advisory_lock on each workflow id
-- (class 87151, in sorted order, held until the claim commits), in a statement
-- of its own, so it sees every claim committed before the locks were granted.
SELECT workflow_id, count(*) AS running FROM runs
WHERE status = 'RUNNING' AND workflow_id = ANY (%(workflow_ids)s::text[])
GROUP BY workflow_id;

-- name: stale_jobs
-- Locked so that a lease renewed while the reaper decides is not reaped:
-- the renewal waits, or the re-checked row no longer qualifies.
SELECT id, workflow_run_id, workflow_id, stage_id, status, priority, attempt, max_attempts,
       worker_id, locked_at, available_at, payload, last_error, reap_count, created_at,
       workflow_version, limit_key, limit_max_running, limit_rate_count, limit_rate_per_us
FROM jobs
WHERE status = 'LEASED' AND locked_at < %(leased_before)s
ORDER BY seq
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: insert_job
WITH inserted AS (
    INSERT INTO jobs (id, workflow_run_id, workflow_id, stage_id, status, priority, attempt,
                      max_attempts, worker_id, locked_at, available_at, payload, last_error,
                      reap_count, created_at, workflow_version, limit_key, limit_max_running,
                      limit_rate_count, limit_rate_per_us)
    VALUES (%(id)s, %(workflow_run_id)s, %(workflow_id)s, %(stage_id)s, %(status)s, %(priority)s,
            %(attempt)s, %(max_attempts)s, %(worker_id)s, %(locked_at)s, %(available_at)s,
            %(payload)s, %(last_error)s, %(reap_count)s, %(created_at)s, %(workflow_version)s,
            %(limit_key)s, %(limit_max_running)s, %(limit_rate_count)s, %(limit_rate_per_us)s)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT expect_rows(count(*)) FROM inserted;

-- name: update_job
WITH changed AS (
    UPDATE jobs
    SET workflow_run_id = %(workflow_run_id)s, workflow_id = %(workflow_id)s,
        stage_id = %(stage_id)s, status = %(status)s, priority = %(priority)s,
        attempt = %(attempt)s, max_attempts = %(max_attempts)s, worker_id = %(worker_id)s,
        locked_at = %(locked_at)s, available_at = %(available_at)s, payload = %(payload)s,
        last_error = %(last_error)s, reap_count = %(reap_count)s, created_at = %(created_at)s
    WHERE id = %(id)s
    RETURNING 1
)
SELECT expect_rows(count(*)) FROM changed;

-- name: renew_lease
UPDATE jobs
SET locked_at = %(now)s
WHERE id = %(id)s AND status = 'LEASED' AND worker_id = %(worker_id)s;

-- name: notify_jobs
-- Sent after the COMMIT of a transaction that queued a job or created a run,
-- in the same round trip, as a transaction of its own. PostgreSQL serialises
-- the commits of notifying transactions (under one lock, held until the
-- commit is flushed): inside the writing transaction, a NOTIFY would make the
-- workers' commits wait for one another's disk flush. This transaction
-- writes nothing but the notification, and commits without waiting for the
-- flush: a notification is a wake-up, and the work it announces is already
-- durable.
SELECT set_config('synchronous_commit', 'off', true), pg_notify(%(channel)s, '');

-- name: look_turn_wait
-- The look turn (adapters/postgres/listener.py), on the LISTEN connection: how
-- long look_turn_take may wait, as lock_timeout ('250ms').
SELECT set_config('lock_timeout', %(timeout)s, false);

-- name: look_turn_take
-- Class 87152 (see advisory_lock for the others), one key per schema: a
-- session lock, held by one idle worker at a time while it looks for the work
-- a notification announced, and given up with its session.
SELECT pg_advisory_lock(87152, hashtext(%(schema)s));

-- name: look_turn_check
-- Whether work may be waiting: a PENDING run to claim or a QUEUED job to lease
-- (a probe of runs_pending_idx and of jobs_queued_idx; jobs not yet available
-- and filters a worker applies are not looked at: a check may say yes where a
-- look finds nothing, never the other way round). With nothing, the turn goes
-- back in the same statement.
WITH found AS (
    SELECT EXISTS (SELECT 1 FROM runs WHERE status = 'PENDING')
        OR EXISTS (SELECT 1 FROM jobs WHERE status = 'QUEUED') AS work
)
SELECT work,
    CASE WHEN work THEN false ELSE pg_advisory_unlock(87152, hashtext(%(schema)s)) END AS released
FROM found;

-- name: look_turn_give
SELECT pg_advisory_unlock(87152, hashtext(%(schema)s));

-- name: append_outbox
-- The per-run counter row is upserted in the same statement. The upsert
-- holds that row's lock until commit, so a second writer for the same run
-- waits here and then reads the committed counter: sequences are gap-free
-- (a rollback undoes the counter too) and follow commit order. A counter
-- row, rather than a lock on the run row, also covers an event whose run
-- row is created in the same transaction or does not exist, and never
-- blocks plain updates of the run. A repeated event id replaces the event
-- (with the new sequence), as the in-memory store does.
WITH next AS (
    INSERT INTO outbox_sequences AS s (workflow_run_id, last_sequence)
    VALUES (%(workflow_run_id)s, 1)
    ON CONFLICT (workflow_run_id) DO UPDATE SET last_sequence = s.last_sequence + 1
    RETURNING last_sequence
)
INSERT INTO outbox (id, workflow_run_id, sequence, event_type, payload, causation_id,
                    occurred_at)
SELECT %(id)s, %(workflow_run_id)s, next.last_sequence, %(event_type)s, %(payload)s,
       %(causation_id)s, %(occurred_at)s
FROM next
ON CONFLICT (id) DO UPDATE
SET workflow_run_id = EXCLUDED.workflow_run_id, sequence = EXCLUDED.sequence,
    event_type = EXCLUDED.event_type, payload = EXCLUDED.payload,
    causation_id = EXCLUDED.causation_id, occurred_at = EXCLUDED.occurred_at,
    published_at = NULL, retry_count = 0, dlq_at = NULL;

-- name: append_outbox_many
-- Several events in one statement, as append_outbox would append them one
-- after another: each run's counter row is upserted once (in run id order)
-- by the number of its events, which take the numbers up to the new value
-- in their given order (ordinality n), and they are inserted in that order
-- (seq). The events come as one JSON array of objects, %(rows)s, as the
-- multi-row writes of batched.sql take theirs. Event ids are distinct (the
-- store applies a repeat on its own).
WITH events AS (
    SELECT r->>'id' AS id, r->>'workflow_run_id' AS workflow_run_id,
           r->>'event_type' AS event_type, r->>'causation_id' AS causation_id,
           (r->>'occurred_at')::timestamptz AS occurred_at, r->'payload' AS payload, n
    FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS e(r, n)
    LIMIT %(count)s
),
added AS (
    SELECT workflow_run_id, count(*)::integer AS added
    FROM events
    GROUP BY workflow_run_id
),
next AS (
    INSERT INTO outbox_sequences AS s (workflow_run_id, last_sequence)
    SELECT workflow_run_id, added FROM added ORDER BY workflow_run_id
    ON CONFLICT (workflow_run_id) DO UPDATE SET last_sequence = s.last_sequence + EXCLUDED.last_sequence
    RETURNING s.workflow_run_id, s.last_sequence
)
INSERT INTO outbox (id, workflow_run_id, sequence, event_type, payload, causation_id,
                    occurred_at)
SELECT e.id, e.workflow_run_id,
       (next.last_sequence - added.added
        + row_number() OVER (PARTITION BY e.workflow_run_id ORDER BY e.n))::integer,
       e.event_type, e.payload, e.causation_id, e.occurred_at
FROM events AS e
JOIN next ON next.workflow_run_id = e.workflow_run_id
JOIN added ON added.workflow_run_id = e.workflow_run_id
ORDER BY e.n
ON CONFLICT (id) DO UPDATE
SET workflow_run_id = EXCLUDED.workflow_run_id, sequence = EXCLUDED.sequence,
    event_type = EXCLUDED.event_type, payload = EXCLUDED.payload,
    causation_id = EXCLUDED.causation_id, occurred_at = EXCLUDED.occurred_at,
    published_at = NULL, retry_count = 0, dlq_at = NULL;

-- name: update_outbox_many
-- Records the outcome of publication attempts, which also ends their claim:
-- one row per event of a flush, found by id, run and sequence (an event
-- appended again under its id since the claim is another event, left alone).
-- Only the publication fields change: what an event says is fixed when it is
-- appended, so its payload is not sent again for every attempt. The events
-- come as one JSON array of objects, %(rows)s, as in append_outbox_many.
UPDATE outbox AS o
SET published_at = u.published_at, retry_count = u.retry_count, dlq_at = u.dlq_at,
    claimed_until = NULL
FROM (
    SELECT r->>'id' AS id, r->>'workflow_run_id' AS workflow_run_id,
           (r->>'sequence')::integer AS sequence,
           (r->>'published_at')::timestamptz AS published_at,
           (r->>'retry_count')::integer AS retry_count, (r->>'dlq_at')::timestamptz AS dlq_at
    FROM jsonb_array_elements(%(rows)s::jsonb) AS e(r)
    LIMIT %(count)s
) AS u
WHERE o.id = u.id AND o.workflow_run_id = u.workflow_run_id AND o.sequence = u.sequence;

-- name: claim_outbox
-- Claims without a global lock. An unpublished event is held back when it or
-- an earlier event of its run is under a live claim (per-run order); the
-- oldest other events are chosen and row-locked with SKIP LOCKED. A chosen
-- event that another flush locked a moment ago (its claim not yet committed)
-- is missed, and holds back the later chosen events of its run as well. The
-- claim itself is the claimed_until column. "held" reads outbox_claimed_idx,
-- "chosen" walks outbox_unpublished_idx and stops after %(limit)s rows; the
-- id arrays make the lock and the update primary-key lookups whatever the
-- table statistics say (a join here went quadratic on fresh tables).
WITH held AS MATERIALIZED (
    SELECT workflow_run_id, min(seq) AS seq
    FROM outbox
    WHERE claimed_until > %(now)s AND published_at IS NULL AND dlq_at IS NULL
    GROUP BY workflow_run_id
),
chosen AS MATERIALIZED (
    SELECT o.id, o.workflow_run_id, o.seq
    FROM outbox AS o
    WHERE o.published_at IS NULL AND o.dlq_at IS NULL
      AND NOT EXISTS (
          SELECT 1 FROM held AS h
          WHERE h.workflow_run_id = o.workflow_run_id AND h.seq <= o.seq
      )
    ORDER BY o.seq
    LIMIT %(limit)s
),
locked AS MATERIALIZED (
    SELECT o.id, o.workflow_run_id, o.seq
    FROM outbox AS o
    WHERE o.id = ANY (ARRAY(SELECT id FROM chosen))
      -- (not "published_at IS NULL AND dlq_at IS NULL": that matches the
      -- partial index, which a planner without statistics then scans whole)
      AND coalesce(o.published_at, o.dlq_at) IS NULL
      AND (o.claimed_until IS NULL OR o.claimed_until <= %(now)s)
    FOR UPDATE OF o SKIP LOCKED
),
missed AS MATERIALIZED (
    SELECT workflow_run_id, min(seq) AS seq
    FROM chosen
    WHERE id NOT IN (SELECT id FROM locked)
    GROUP BY workflow_run_id
),
claimed AS (
    UPDATE outbox AS o
    SET claimed_until = %(until)s
    WHERE o.id = ANY (ARRAY(
        SELECT l.id FROM locked AS l
        WHERE NOT EXISTS (
            SELECT 1 FROM missed AS m
            WHERE m.workflow_run_id = l.workflow_run_id AND m.seq < l.seq
        )
    ))
    RETURNING o.id, o.workflow_run_id, o.sequence, o.event_type, o.payload, o.causation_id,
              o.occurred_at, o.published_at, o.retry_count, o.dlq_at, o.seq
)
SELECT id, workflow_run_id, sequence, event_type, payload, causation_id, occurred_at,
       published_at, retry_count, dlq_at
FROM claimed
ORDER BY seq;

-- name: dead_letters
SELECT id, workflow_run_id, sequence, event_type, payload, causation_id, occurred_at,
       published_at, retry_count, dlq_at
FROM outbox
WHERE dlq_at IS NOT NULL
ORDER BY seq
LIMIT %(limit)s;

-- name: get_outbox
SELECT id, workflow_run_id, sequence, event_type, payload, causation_id, occurred_at,
       published_at, retry_count, dlq_at
FROM outbox
ORDER BY seq;

-- name: get_run_outbox
SELECT id, workflow_run_id, sequence, event_type, payload, causation_id, occurred_at,
       published_at, retry_count, dlq_at
FROM outbox
WHERE workflow_run_id = %(workflow_run_id)s
ORDER BY sequence;

-- name: get_idempotency
SELECT key, command_type, state, fingerprint, result, created_at
FROM idempotency_keys
WHERE key = %(key)s AND command_type = %(command_type)s
-- Locked like runs and jobs: a caller taking over an abandoned key decides on
-- the row it read, so a second taker must wait and see the first one's claim.
FOR NO KEY UPDATE;

-- name: acquire_idempotency
-- Race-free: a concurrent insert of the same key makes this one wait for
-- that transaction, then do nothing; the caller then reads the winner.
INSERT INTO idempotency_keys (key, command_type, state, fingerprint, result, created_at)
VALUES (%(key)s, %(command_type)s, %(state)s, %(fingerprint)s, %(result)s, %(created_at)s)
ON CONFLICT DO NOTHING;

-- name: complete_idempotency
INSERT INTO idempotency_keys (key, command_type, state, fingerprint, result, created_at)
VALUES (%(key)s, %(command_type)s, %(state)s, %(fingerprint)s, %(result)s, %(created_at)s)
ON CONFLICT (key, command_type) DO UPDATE
SET state = EXCLUDED.state, fingerprint = EXCLUDED.fingerprint, result = EXCLUDED.result,
    created_at = EXCLUDED.created_at;

-- name: release_idempotency
-- Only a key still IN_PROGRESS: a command whose commit went through but whose
-- caller saw an error (a lost answer) keeps its COMPLETED key for the retry.
DELETE FROM idempotency_keys
WHERE key = %(key)s AND command_type = %(command_type)s AND state = 'IN_PROGRESS';

-- name: get_blob
SELECT value FROM blobs WHERE key = %(key)s;

-- name: put_blob
INSERT INTO blobs (key, value) VALUES (%(key)s, %(value)s)
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;

-- name: delete_blob
DELETE FROM blobs WHERE key = %(key)s;

-- name: insert_log
INSERT INTO logs (id, workflow_run_id, stage_record_id, level, message, metadata, created_at)
VALUES (%(id)s, %(workflow_run_id)s, %(stage_record_id)s, %(level)s, %(message)s,
        %(metadata)s, %(created_at)s);

-- name: get_logs
SELECT id, workflow_run_id, stage_record_id, level, message, metadata, created_at
FROM logs
WHERE workflow_run_id = %(workflow_run_id)s
ORDER BY seq;

-- name: insert_signal
WITH inserted AS (
    INSERT INTO signals (id, workflow_run_id, name, payload, created_at, consumed_at, stage_id)
    VALUES (%(id)s, %(workflow_run_id)s, %(name)s, %(payload)s, %(created_at)s, %(consumed_at)s,
            %(stage_id)s)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT expect_rows(count(*)) FROM inserted;

-- name: consume_signal
-- Only a buffered signal is consumed. A concurrent consumer of the same
-- signal waits for this row, then finds it consumed and changes nothing
-- (the caller raises StaleVersionError).
WITH changed AS (
    UPDATE signals
    SET consumed_at = %(consumed_at)s, stage_id = %(stage_id)s
    WHERE id = %(id)s AND consumed_at IS NULL
    RETURNING 1
)
SELECT expect_rows(count(*)) FROM changed;

-- name: buffered_signals
SELECT id, workflow_run_id, name, payload, created_at, consumed_at, stage_id
FROM signals
WHERE workflow_run_id = %(workflow_run_id)s AND consumed_at IS NULL
ORDER BY seq;

-- name: get_signals
SELECT id, workflow_run_id, name, payload, created_at, consumed_at, stage_id
FROM signals
WHERE workflow_run_id = %(workflow_run_id)s
ORDER BY seq;

-- name: insert_schedule
WITH inserted AS (
    INSERT INTO schedules (id, workflow_id, cron, every, input, config, timezone, overlap, catchup,
                           enabled, next_fire_at, last_fire_at, last_run_id, created_at,
                           updated_at, version)
    VALUES (%(id)s, %(workflow_id)s, %(cron)s, %(every)s, %(input)s, %(config)s, %(timezone)s,
            %(overlap)s, %(catchup)s, %(enabled)s, %(next_fire_at)s, %(last_fire_at)s,
            %(last_run_id)s, %(created_at)s, %(updated_at)s, %(version)s)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT expect_rows(count(*)) FROM inserted;

-- name: update_schedule
WITH changed AS (
    UPDATE schedules
    SET workflow_id = %(workflow_id)s, cron = %(cron)s, every = %(every)s, input = %(input)s,
        config = %(config)s, timezone = %(timezone)s, overlap = %(overlap)s,
        catchup = %(catchup)s, enabled = %(enabled)s, next_fire_at = %(next_fire_at)s,
        last_fire_at = %(last_fire_at)s, last_run_id = %(last_run_id)s,
        created_at = %(created_at)s, updated_at = %(updated_at)s, version = %(version)s
    WHERE id = %(id)s AND version = %(expected_version)s
    RETURNING 1
)
SELECT expect_rows(count(*)) FROM changed;

-- name: delete_schedule
DELETE FROM schedules WHERE id = %(id)s;

-- name: lock_schedule
-- Like lock_run: a transaction's read of a schedule locks it until the end
-- of the transaction, so read-modify-write transactions on one schedule
-- take turns, and a tick's due_schedules skips it meanwhile.
SELECT id, workflow_id, cron, every, input, config, timezone, overlap, catchup, enabled,
       next_fire_at, last_fire_at, last_run_id, created_at, updated_at, version
FROM schedules
WHERE id = %(id)s
FOR NO KEY UPDATE;

-- name: due_schedules
-- SKIP LOCKED: concurrent ticks each get different schedules (or none); the
-- row locks last until the tick commits their next fire times, after which
-- they are no longer due. Served by schedules_due_idx. %(workflow_ids)s is
-- NULL (every workflow) or the ids the caller can start.
SELECT id, workflow_id, cron, every, input, config, timezone, overlap, catchup, enabled,
       next_fire_at, last_fire_at, last_run_id, created_at, updated_at, version
FROM schedules
WHERE enabled AND next_fire_at <= %(now)s
  AND (%(workflow_ids)s::text[] IS NULL OR workflow_id = ANY (%(workflow_ids)s::text[]))
ORDER BY next_fire_at, id COLLATE "C"
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: get_schedules
-- Byte order of ids ("C"), as the other stores sort them, whatever the
-- database's collation.
SELECT id, workflow_id, cron, every, input, config, timezone, overlap, catchup, enabled,
       next_fire_at, last_fire_at, last_run_id, created_at, updated_at, version
FROM schedules
ORDER BY id COLLATE "C";

-- name: insert_usage
-- A call_id recorded before inserts nothing (the caller raises StoreError).
WITH inserted AS (
    INSERT INTO usage (call_id, workflow_run_id, stage_id, attempt, model, kind, input_tokens,
                       output_tokens, cached_input_tokens, reasoning_tokens, cost, priced, note,
                       recorded_at)
    VALUES (%(call_id)s, %(workflow_run_id)s, %(stage_id)s, %(attempt)s, %(model)s, %(kind)s,
            %(input_tokens)s, %(output_tokens)s, %(cached_input_tokens)s, %(reasoning_tokens)s,
            %(cost)s, %(priced)s, %(note)s, %(recorded_at)s)
    ON CONFLICT DO NOTHING
    RETURNING 1
)
SELECT expect_rows(count(*)) FROM inserted;

-- name: get_usage_call
SELECT call_id, workflow_run_id, stage_id, attempt, model, kind, input_tokens, output_tokens,
       cached_input_tokens, reasoning_tokens, cost, priced, note, recorded_at
FROM usage
WHERE call_id = %(call_id)s;

-- name: get_usage
-- Served by usage_run_idx, in record order.
SELECT call_id, workflow_run_id, stage_id, attempt, model, kind, input_tokens, output_tokens,
       cached_input_tokens, reasoning_tokens, cost, priced, note, recorded_at
FROM usage
WHERE workflow_run_id = %(workflow_run_id)s
ORDER BY seq;

-- name: insert_batch_cancel
-- A second request to cancel one batch replaces the first.
INSERT INTO batch_cancels (batch_id, provider, workflow_run_id, stage_id, requested_at,
                           attempts, last_error)
VALUES (%(batch_id)s, %(provider)s, %(workflow_run_id)s, %(stage_id)s, %(requested_at)s,
        %(attempts)s, %(last_error)s)
ON CONFLICT (batch_id) DO UPDATE
SET provider = excluded.provider, workflow_run_id = excluded.workflow_run_id,
    stage_id = excluded.stage_id, requested_at = excluded.requested_at,
    attempts = excluded.attempts, last_error = excluded.last_error;

-- name: update_batch_cancel
-- A cancel another tick has cleared meanwhile stays cleared (no row changes).
UPDATE batch_cancels
SET provider = %(provider)s, workflow_run_id = %(workflow_run_id)s, stage_id = %(stage_id)s,
    requested_at = %(requested_at)s, attempts = %(attempts)s, last_error = %(last_error)s
WHERE batch_id = %(batch_id)s;

-- name: delete_batch_cancel
DELETE FROM batch_cancels WHERE batch_id = %(batch_id)s;

-- name: pending_batch_cancels
-- Served by batch_cancels_pending_idx; ties by id in byte order, as every store.
SELECT batch_id, provider, workflow_run_id, stage_id, requested_at, attempts, last_error
FROM batch_cancels
ORDER BY requested_at, batch_id COLLATE "C"
LIMIT %(limit)s;

-- name: get_batch_cancels
SELECT batch_id, provider, workflow_run_id, stage_id, requested_at, attempts, last_error
FROM batch_cancels
ORDER BY requested_at, batch_id COLLATE "C";

-- name: savepoint_apply
SAVEPOINT wfk_apply;

-- name: release_apply
RELEASE SAVEPOINT wfk_apply;

-- name: rollback_apply
ROLLBACK TO SAVEPOINT wfk_apply;

-- name: lock_migrations
-- Held until the migrating transaction ends: processes that open the same
-- schema at once migrate one after the other.
SELECT pg_advisory_xact_lock(%(key)s);

-- name: create_schema_version
CREATE TABLE IF NOT EXISTS schema_version (
    version    integer PRIMARY KEY,
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- name: schema_version
SELECT coalesce(max(version), 0) AS version FROM schema_version;

-- name: record_version
INSERT INTO schema_version (version) VALUES (%(version)s);
