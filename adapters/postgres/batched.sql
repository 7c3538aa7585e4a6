-- Multi-row forms of the checked writes of queries.sql (update_run,
-- update_stage, update_job, insert_stage, insert_job) and of put_blob: the effects of one
-- kind in a transaction, on distinct rows, as one statement. The rows come as
-- one JSON array, %(rows)s, in the effects' order: one object per row whose
-- keys are the single-row statement's parameters, with their meaning there
-- (times as ISO 8601 text, durations as interval text, numerics as text, a
-- JSON column's value as itself; ->, not jsonb_to_recordset, so that a JSON
-- null stays the jsonb null the single-row statement writes). One text is
-- cheaper to send than an array per column. LIMIT %(count)s (the number of
-- rows) changes nothing but the planner's guess of how many there are (100 for
-- any jsonb_array_elements), so that it looks each row up by its key.
-- expect_ids (migration 0010) fails the statement unless every row was
-- changed, naming the first that was not.
--
-- And the lease of several jobs at once (lease_jobs), with their runs and
-- stages (leased_runs, leased_runs_stages), all three in one round trip; and
-- the finish's check of one job or several: sent with the finish's writes,
-- failing unless every record is as the finish assumed (expect_jobs_and_runs,
-- expect_runs_stages), or asked first, reading them (lock_jobs_and_runs,
-- get_runs_stages).

-- name: update_runs
WITH v AS (
    SELECT r->>'id' AS id, r->>'workflow_id' AS workflow_id,
           r->>'workflow_name' AS workflow_name, r->>'status' AS status, r->'input' AS input,
           r->'config' AS config, (r->>'priority')::integer AS priority,
           r->'metadata' AS metadata, r->'output' AS output, r->>'error' AS error,
           (r->>'created_at')::timestamptz AS created_at,
           (r->>'started_at')::timestamptz AS started_at,
           (r->>'completed_at')::timestamptz AS completed_at,
           (r->>'duration_ms')::bigint AS duration_ms, (r->>'total_cost')::numeric AS total_cost,
           (r->>'total_tokens')::bigint AS total_tokens, (r->>'budget')::numeric AS budget,
           (r->>'version')::integer AS version, r->>'workflow_version' AS workflow_version,
           (r->>'expected_version')::integer AS expected_version, n
    FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS e(r, n)
    LIMIT %(count)s
),
changed AS (
    UPDATE runs
    SET workflow_id = v.workflow_id, workflow_name = v.workflow_name, status = v.status,
        input = v.input, config = v.config, priority = v.priority, metadata = v.metadata,
        output = v.output, error = v.error, created_at = v.created_at,
        started_at = v.started_at, completed_at = v.completed_at,
        duration_ms = v.duration_ms, total_cost = v.total_cost,
        total_tokens = v.total_tokens, budget = v.budget, version = v.version,
        workflow_version = v.workflow_version
    FROM v
    WHERE runs.id = v.id AND runs.version = v.expected_version
    RETURNING runs.id
)
SELECT expect_ids(array(SELECT id FROM v ORDER BY n), array(SELECT id FROM changed));

-- name: update_stages
WITH v AS (
    SELECT r->>'id' AS id, r->>'workflow_run_id' AS workflow_run_id,
           r->>'stage_id' AS stage_id, r->>'stage_name' AS stage_name,
           (r->>'stage_number')::integer AS stage_number,
           (r->>'execution_group')::integer AS execution_group, r->>'status' AS status,
           r->'config' AS config, r->>'output_ref' AS output_ref,
           r->'suspended_state' AS suspended_state,
           (r->>'next_poll_at')::timestamptz AS next_poll_at,
           (r->>'poll_interval')::interval AS poll_interval,
           (r->>'max_wait_until')::timestamptz AS max_wait_until, r->'metrics' AS metrics,
           r->>'error' AS error, r->>'error_traceback' AS error_traceback,
           (r->>'attempt')::integer AS attempt, (r->>'created_at')::timestamptz AS created_at,
           (r->>'started_at')::timestamptz AS started_at,
           (r->>'completed_at')::timestamptz AS completed_at,
           (r->>'duration_ms')::bigint AS duration_ms, (r->>'version')::integer AS version,
           (r->>'expected_version')::integer AS expected_version, n
    FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS e(r, n)
    LIMIT %(count)s
),
changed AS (
    UPDATE stages
    SET stage_name = v.stage_name, stage_number = v.stage_number,
        execution_group = v.execution_group, status = v.status, config = v.config,
        output_ref = v.output_ref, suspended_state = v.suspended_state,
        next_poll_at = v.next_poll_at, poll_interval = v.poll_interval,
        max_wait_until = v.max_wait_until, metrics = v.metrics, error = v.error,
        error_traceback = v.error_traceback, attempt = v.attempt, created_at = v.created_at,
        started_at = v.started_at, completed_at = v.completed_at,
        duration_ms = v.duration_ms, version = v.version
    FROM v
    WHERE stages.id = v.id AND stages.workflow_run_id = v.workflow_run_id
      AND stages.stage_id = v.stage_id AND stages.version = v.expected_version
    RETURNING stages.id
)
SELECT expect_ids(array(SELECT id FROM v ORDER BY n), array(SELECT id FROM changed));

-- name: update_jobs
WITH v AS (
    SELECT r->>'id' AS id, r->>'workflow_run_id' AS workflow_run_id,
           r->>'workflow_id' AS workflow_id, r->>'stage_id' AS stage_id, r->>'status' AS status,
           (r->>'priority')::integer AS priority, (r->>'attempt')::integer AS attempt,
           (r->>'max_attempts')::integer AS max_attempts, r->>'worker_id' AS worker_id,
           (r->>'locked_at')::timestamptz AS locked_at,
           (r->>'available_at')::timestamptz AS available_at, r->'payload' AS payload,
           r->>'last_error' AS last_error, (r->>'reap_count')::integer AS reap_count,
           (r->>'created_at')::timestamptz AS created_at, n
    FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS e(r, n)
    LIMIT %(count)s
),
changed AS (
    UPDATE jobs
    SET workflow_run_id = v.workflow_run_id, workflow_id = v.workflow_id,
        stage_id = v.stage_id, status = v.status, priority = v.priority,
        attempt = v.attempt, max_attempts = v.max_attempts, worker_id = v.worker_id,
        locked_at = v.locked_at, available_at = v.available_at, payload = v.payload,
        last_error = v.last_error, reap_count = v.reap_count, created_at = v.created_at
    FROM v
    WHERE jobs.id = v.id
    RETURNING jobs.id
)
SELECT expect_ids(array(SELECT id FROM v ORDER BY n), array(SELECT id FROM changed));

-- name: insert_stages
-- Inserted in the given order (n), so the rows' seq follows it as one
-- insert_stage after another would.
WITH v AS (
    SELECT r->>'id' AS id, r->>'workflow_run_id' AS workflow_run_id,
           r->>'stage_id' AS stage_id, r->>'stage_name' AS stage_name,
           (r->>'stage_number')::integer AS stage_number,
           (r->>'execution_group')::integer AS execution_group, r->>'status' AS status,
           r->'config' AS config, r->>'output_ref' AS output_ref,
           r->'suspended_state' AS suspended_state,
           (r->>'next_poll_at')::timestamptz AS next_poll_at,
           (r->>'poll_interval')::interval AS poll_interval,
           (r->>'max_wait_until')::timestamptz AS max_wait_until, r->'metrics' AS metrics,
           r->>'error' AS error, r->>'error_traceback' AS error_traceback,
           (r->>'attempt')::integer AS attempt, (r->>'created_at')::timestamptz AS created_at,
           (r->>'started_at')::timestamptz AS started_at,
           (r->>'completed_at')::timestamptz AS completed_at,
           (r->>'duration_ms')::bigint AS duration_ms, (r->>'version')::integer AS version, n
    FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS e(r, n)
    LIMIT %(count)s
),
inserted AS (
    INSERT INTO stages (id, workflow_run_id, stage_id, stage_name, stage_number, execution_group,
                        status, config, output_ref, suspended_state, next_poll_at, poll_interval,
                        max_wait_until, metrics, error, error_traceback, attempt, created_at,
                        started_at, completed_at, duration_ms, version)
    SELECT id, workflow_run_id, stage_id, stage_name, stage_number, execution_group, status,
           config, output_ref, suspended_state, next_poll_at, poll_interval, max_wait_until,
           metrics, error, error_traceback, attempt, created_at, started_at, completed_at,
           duration_ms, version
    FROM v
    ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT expect_ids(array(SELECT id FROM v ORDER BY n), array(SELECT id FROM inserted));

-- name: insert_jobs
-- In the given order (n), as insert_stages.
WITH v AS (
    SELECT r->>'id' AS id, r->>'workflow_run_id' AS workflow_run_id,
           r->>'workflow_id' AS workflow_id, r->>'stage_id' AS stage_id, r->>'status' AS status,
           (r->>'priority')::integer AS priority, (r->>'attempt')::integer AS attempt,
           (r->>'max_attempts')::integer AS max_attempts, r->>'worker_id' AS worker_id,
           (r->>'locked_at')::timestamptz AS locked_at,
           (r->>'available_at')::timestamptz AS available_at, r->'payload' AS payload,
           r->>'last_error' AS last_error, (r->>'reap_count')::integer AS reap_count,
           (r->>'created_at')::timestamptz AS created_at,
           r->>'workflow_version' AS workflow_version, r->>'limit_key' AS limit_key,
           (r->>'limit_max_running')::integer AS limit_max_running,
           (r->>'limit_rate_count')::integer AS limit_rate_count,
           (r->>'limit_rate_per_us')::bigint AS limit_rate_per_us, n
    FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS e(r, n)
    LIMIT %(count)s
),
inserted AS (
    INSERT INTO jobs (id, workflow_run_id, workflow_id, stage_id, status, priority, attempt,
                      max_attempts, worker_id, locked_at, available_at, payload, last_error,
                      reap_count, created_at, workflow_version, limit_key, limit_max_running,
                      limit_rate_count, limit_rate_per_us)
    SELECT id, workflow_run_id, workflow_id, stage_id, status, priority, attempt, max_attempts,
           worker_id, locked_at, available_at, payload, last_error, reap_count, created_at,
           workflow_version, limit_key, limit_max_running, limit_rate_count, limit_rate_per_us
    FROM v
    ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT expect_ids(array(SELECT id FROM v ORDER BY n), array(SELECT id FROM inserted));

-- name: put_blobs
-- put_blob of several distinct keys: each value as itself (a JSON null stays
-- the jsonb null put_blob writes).
INSERT INTO blobs (key, value)
SELECT r->>'key', r->'value'
FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS e(r, n)
ORDER BY n
LIMIT %(count)s
ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value;

-- name: lease_jobs
-- Up to %(limit)s jobs, as that many lease_next_job statements in a row would
-- lease them while none has a limit key: the best available QUEUED jobs (SKIP
-- LOCKED), leased up to the first one with a limit key, which is left QUEUED
-- (its row stays locked by this transaction until it ends) for lease_next_job
-- to take under its limits. Always one row more than the jobs leased in
-- order (n), whose job columns are NULL: first_limited is the position of the
-- first candidate with a limit key (%(limit)s + 1: none). The leased jobs'
-- ids and their runs' ids (sorted) go into the transaction's wfk.leased_jobs
-- and wfk.leased_runs settings, for leased_runs and leased_runs_stages.
WITH picked AS (
    SELECT id, limit_key, priority, created_at, seq
    FROM jobs AS q
    WHERE status = 'QUEUED' AND available_at <= %(now)s
      AND (%(workflow_ids)s::text[] IS NULL OR workflow_id = ANY (%(workflow_ids)s::text[]))
      AND (%(version_ids)s::text[] IS NULL OR (workflow_id, workflow_version) IN (
          SELECT * FROM unnest(%(version_ids)s::text[], %(version_names)s::text[])))
    ORDER BY priority DESC, created_at, seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
),
ordered AS (
    SELECT id, limit_key, row_number() OVER (ORDER BY priority DESC, created_at, seq) AS n
    FROM picked
),
cut AS (
    SELECT coalesce(min(n) FILTER (WHERE limit_key IS NOT NULL), %(limit)s + 1) AS first_limited
    FROM ordered
),
leased AS (
    UPDATE jobs
    SET status = 'LEASED', worker_id = %(worker_id)s, locked_at = %(now)s
    FROM ordered, cut
    WHERE jobs.id = ordered.id AND ordered.n < cut.first_limited
    RETURNING jobs.id, jobs.workflow_run_id, jobs.workflow_id, jobs.stage_id, jobs.status,
              jobs.priority, jobs.attempt, jobs.max_attempts, jobs.worker_id, jobs.locked_at,
              jobs.available_at, jobs.payload, jobs.last_error, jobs.reap_count,
              jobs.created_at, jobs.workflow_version, jobs.limit_key, jobs.limit_max_running,
              jobs.limit_rate_count, jobs.limit_rate_per_us, ordered.n
),
noted AS (
    SELECT set_config('wfk.leased_jobs', coalesce(string_agg(id, ','), ''), true) AS jobs,
           set_config('wfk.leased_runs',
                      coalesce(string_agg(DISTINCT workflow_run_id, ','), ''), true) AS runs
    FROM leased
)
SELECT leased.*, cut.first_limited
FROM cut CROSS JOIN noted LEFT JOIN leased ON true
ORDER BY leased.n NULLS LAST;

-- name: leased_runs
-- After lease_jobs, in the same round trip: the leased jobs' runs, locked as
-- lock_run locks them, in id order (so workers lock runs in one order).
SELECT id, workflow_id, workflow_name, status, input, config, priority, metadata, output,
       error, created_at, started_at, completed_at, duration_ms, total_cost, total_tokens,
       budget, version, workflow_version
FROM runs
WHERE id = ANY (string_to_array(current_setting('wfk.leased_runs', true), ','))
ORDER BY id
FOR NO KEY UPDATE;

-- name: leased_runs_stages
-- After leased_runs (a statement of its own, so that it sees what was
-- committed before the runs' locks were granted): the stage records of the
-- leased jobs' runs, by run id, as leased_stages returns one run's. Where a
-- run's leased jobs are of stages of different execution groups, no stored
-- input comes along (input_group is NULL).
SELECT s.id, s.workflow_run_id, s.stage_id, s.stage_name, s.stage_number, s.execution_group,
       s.status, s.config, s.output_ref, s.suspended_state, s.next_poll_at, s.poll_interval,
       s.max_wait_until, s.metrics, s.error, s.error_traceback, s.attempt, s.created_at,
       s.started_at, s.completed_at, s.duration_ms, s.version,
       (s.status = 'COMPLETED' AND s.execution_group = g.input_group) IS TRUE AS stored_input,
       b.key IS NOT NULL AS stored_found, b.value AS stored_value,
       g.input_group
FROM (
    SELECT leased.workflow_run_id,
           CASE WHEN min(this.execution_group) = max(this.execution_group)
                THEN min(this.execution_group) - 1 END AS input_group
    FROM jobs AS leased
    LEFT JOIN stages AS this
           ON this.workflow_run_id = leased.workflow_run_id AND this.stage_id = leased.stage_id
    WHERE leased.id = ANY (string_to_array(current_setting('wfk.leased_jobs', true), ','))
    GROUP BY leased.workflow_run_id
) AS g
JOIN stages AS s ON s.workflow_run_id = g.workflow_run_id
LEFT JOIN blobs AS b
       ON s.status = 'COMPLETED' AND s.execution_group = g.input_group AND b.key = s.output_ref
ORDER BY s.workflow_run_id, s.stage_number, s.seq;

-- name: lock_jobs_and_runs
-- A finish's check that what its start read is still so (unchanged), for one
-- or several (job, run) pairs, %(rows)s as in the writes above (objects with
-- id and run_id): each job, then its run, locked as lock_job and lock_run
-- lock them and in this order, as a finish reads them, pair after pair in the
-- order given (n; each LATERAL is run for one pair after the other). One row
-- per pair, in order: the job's columns (all NULL: no such job, and its run
-- is not locked) and the run's version (NULL: no such run).
SELECT j.id, j.workflow_run_id, j.workflow_id, j.stage_id, j.status, j.priority, j.attempt,
       j.max_attempts, j.worker_id, j.locked_at, j.available_at, j.payload, j.last_error,
       j.reap_count, j.created_at, j.workflow_version, j.limit_key, j.limit_max_running,
       j.limit_rate_count, j.limit_rate_per_us, r.version AS run__version
FROM (
    SELECT r->>'id' AS id, r->>'run_id' AS run_id, n
    FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS e(r, n)
    LIMIT %(count)s
) AS v
LEFT JOIN LATERAL (
    SELECT id, workflow_run_id, workflow_id, stage_id, status, priority, attempt,
           max_attempts, worker_id, locked_at, available_at, payload, last_error, reap_count,
           created_at, workflow_version, limit_key, limit_max_running, limit_rate_count,
           limit_rate_per_us
    FROM jobs
    WHERE jobs.id = v.id
    FOR NO KEY UPDATE
) AS j ON true
LEFT JOIN LATERAL (
    SELECT version FROM runs WHERE runs.id = v.run_id AND j.id IS NOT NULL FOR NO KEY UPDATE
) AS r ON true
ORDER BY v.n;

-- name: get_runs_stages
-- get_stages of one or several runs (%(run_ids)s, a JSON array of their ids),
-- by run id; a statement of its own after lock_jobs_and_runs, so that it sees
-- what was committed before the runs' locks were granted.
SELECT id, workflow_run_id, stage_id, stage_name, stage_number, execution_group, status,
       config, output_ref, suspended_state, next_poll_at, poll_interval, max_wait_until,
       metrics, error, error_traceback, attempt, created_at, started_at, completed_at,
       duration_ms, version
FROM stages
WHERE workflow_run_id = ANY (ARRAY(SELECT jsonb_array_elements_text(%(run_ids)s::jsonb)))
ORDER BY workflow_run_id, stage_number, seq;

-- name: expect_jobs_and_runs
-- A finish's check sent with its writes, not before them (the finish decided
-- on the records its start read, PostgresTransaction.unchanged_many): the
-- locks of lock_jobs_and_runs, in its order (each job, then its run, pair
-- after pair as given), and expect_ids fails the statement, naming the first
-- job that is not so, unless every job is exactly as given (%(rows)s: a job
-- row's columns, as insert_jobs takes them, read into the jobs row type, and
-- run_version) and its run at run_version.
WITH v AS (
    SELECT job.*, (r->>'run_version')::integer AS run_version, n
    FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS e(r, n),
         jsonb_populate_record(NULL::jobs, r) AS job
    LIMIT %(count)s
),
checked AS (
    SELECT v.id, v.n,
           (j.id IS NOT NULL AND rv.version = v.run_version
            AND (j.workflow_run_id, j.workflow_id, j.stage_id, j.status, j.priority, j.attempt,
                 j.max_attempts, j.worker_id, j.locked_at, j.available_at, j.payload,
                 j.last_error, j.reap_count, j.created_at, j.workflow_version, j.limit_key,
                 j.limit_max_running, j.limit_rate_count, j.limit_rate_per_us)
                IS NOT DISTINCT FROM
                (v.workflow_run_id, v.workflow_id, v.stage_id, v.status, v.priority, v.attempt,
                 v.max_attempts, v.worker_id, v.locked_at, v.available_at, v.payload,
                 v.last_error, v.reap_count, v.created_at, v.workflow_version, v.limit_key,
                 v.limit_max_running, v.limit_rate_count, v.limit_rate_per_us)) AS same
    FROM v
    LEFT JOIN LATERAL (
        SELECT id, workflow_run_id, workflow_id, stage_id, status, priority, attempt,
               max_attempts, worker_id, locked_at, available_at, payload, last_error,
               reap_count, created_at, workflow_version, limit_key, limit_max_running,
               limit_rate_count, limit_rate_per_us
        FROM jobs
        WHERE jobs.id = v.id
        FOR NO KEY UPDATE
    ) AS j ON true
    LEFT JOIN LATERAL (
        SELECT version FROM runs
        WHERE runs.id = v.workflow_run_id AND j.id IS NOT NULL
        FOR NO KEY UPDATE
    ) AS rv ON true
    ORDER BY v.n
)
SELECT expect_ids(array(SELECT id FROM checked ORDER BY n),
                  array(SELECT id FROM checked WHERE same ORDER BY n));

-- name: expect_runs_stages
-- After expect_jobs_and_runs (a statement of its own, so that it sees what was
-- committed before the runs' locks were granted): expect_ids fails the
-- statement, naming the first run that is not so, unless each run's stage
-- records are exactly those given (%(rows)s: objects with run_id and stages,
-- [id, version] pairs in get_runs_stages's order), no more, no fewer.
WITH v AS (
    SELECT r->>'run_id' AS run_id, r->'stages' AS stages, n
    FROM jsonb_array_elements(%(rows)s::jsonb) WITH ORDINALITY AS e(r, n)
    LIMIT %(count)s
),
checked AS (
    SELECT v.run_id, v.n,
           v.stages = coalesce((
               SELECT jsonb_agg(jsonb_build_array(s.id, s.version)
                                ORDER BY s.stage_number, s.seq)
               FROM stages AS s
               WHERE s.workflow_run_id = v.run_id
           ), '[]'::jsonb) AS same
    FROM v
)
SELECT expect_ids(array(SELECT run_id FROM checked ORDER BY n),
                  array(SELECT run_id FROM checked WHERE same ORDER BY n));
