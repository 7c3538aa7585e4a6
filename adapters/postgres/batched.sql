-- Multi-row forms of the checked writes of queries.sql (update_run,
-- update_stage, update_job, insert_stage, insert_job): the effects of one
-- kind in a transaction, on distinct rows, as one statement. Each column
-- comes as an array (one element per row, in the effects' order) and has the
-- single-row statement's meaning; expect_ids (migration 0010) fails the
-- statement unless every row was changed, naming the first that was not.

-- name: update_runs
WITH v AS (
    SELECT *
    FROM unnest(%(id)s::text[], %(workflow_id)s::text[], %(workflow_name)s::text[],
                %(status)s::text[], %(input)s::jsonb[], %(config)s::jsonb[],
                %(priority)s::integer[], %(metadata)s::jsonb[], %(output)s::jsonb[],
                %(error)s::text[], %(created_at)s::timestamptz[],
                %(started_at)s::timestamptz[], %(completed_at)s::timestamptz[],
                %(duration_ms)s::bigint[], %(total_cost)s::numeric[],
                %(total_tokens)s::bigint[], %(budget)s::numeric[], %(version)s::integer[],
                %(workflow_version)s::text[], %(expected_version)s::integer[])
         AS v(id, workflow_id, workflow_name, status, input, config, priority, metadata,
              output, error, created_at, started_at, completed_at, duration_ms, total_cost,
              total_tokens, budget, version, workflow_version, expected_version)
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
SELECT expect_ids(%(id)s::text[], array(SELECT id FROM changed));

-- name: update_stages
WITH v AS (
    SELECT *
    FROM unnest(%(id)s::text[], %(workflow_run_id)s::text[], %(stage_id)s::text[],
                %(stage_name)s::text[], %(stage_number)s::integer[],
                %(execution_group)s::integer[], %(status)s::text[], %(config)s::jsonb[],
                %(output_ref)s::text[], %(suspended_state)s::jsonb[],
                %(next_poll_at)s::timestamptz[], %(poll_interval)s::interval[],
                %(max_wait_until)s::timestamptz[], %(metrics)s::jsonb[], %(error)s::text[],
                %(error_traceback)s::text[], %(attempt)s::integer[],
                %(created_at)s::timestamptz[], %(started_at)s::timestamptz[],
                %(completed_at)s::timestamptz[], %(duration_ms)s::bigint[],
                %(version)s::integer[], %(expected_version)s::integer[])
         AS v(id, workflow_run_id, stage_id, stage_name, stage_number, execution_group, status,
              config, output_ref, suspended_state, next_poll_at, poll_interval,
              max_wait_until, metrics, error, error_traceback, attempt, created_at,
              started_at, completed_at, duration_ms, version, expected_version)
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
SELECT expect_ids(%(id)s::text[], array(SELECT id FROM changed));

-- name: update_jobs
WITH v AS (
    SELECT *
    FROM unnest(%(id)s::text[], %(workflow_run_id)s::text[], %(workflow_id)s::text[],
                %(stage_id)s::text[], %(status)s::text[], %(priority)s::integer[],
                %(attempt)s::integer[], %(max_attempts)s::integer[], %(worker_id)s::text[],
                %(locked_at)s::timestamptz[], %(available_at)s::timestamptz[],
                %(payload)s::jsonb[], %(last_error)s::text[], %(reap_count)s::integer[],
                %(created_at)s::timestamptz[])
         AS v(id, workflow_run_id, workflow_id, stage_id, status, priority, attempt,
              max_attempts, worker_id, locked_at, available_at, payload, last_error,
              reap_count, created_at)
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
SELECT expect_ids(%(id)s::text[], array(SELECT id FROM changed));

-- name: insert_stages
-- Inserted in the given order (n), so the rows' seq follows it as one
-- insert_stage after another would.
WITH inserted AS (
    INSERT INTO stages (id, workflow_run_id, stage_id, stage_name, stage_number, execution_group,
                        status, config, output_ref, suspended_state, next_poll_at, poll_interval,
                        max_wait_until, metrics, error, error_traceback, attempt, created_at,
                        started_at, completed_at, duration_ms, version)
    SELECT id, workflow_run_id, stage_id, stage_name, stage_number, execution_group, status,
           config, output_ref, suspended_state, next_poll_at, poll_interval, max_wait_until,
           metrics, error, error_traceback, attempt, created_at, started_at, completed_at,
           duration_ms, version
    FROM unnest(%(id)s::text[], %(workflow_run_id)s::text[], %(stage_id)s::text[],
                %(stage_name)s::text[], %(stage_number)s::integer[],
                %(execution_group)s::integer[], %(status)s::text[], %(config)s::jsonb[],
                %(output_ref)s::text[], %(suspended_state)s::jsonb[],
                %(next_poll_at)s::timestamptz[], %(poll_interval)s::interval[],
                %(max_wait_until)s::timestamptz[], %(metrics)s::jsonb[], %(error)s::text[],
                %(error_traceback)s::text[], %(attempt)s::integer[],
                %(created_at)s::timestamptz[], %(started_at)s::timestamptz[],
                %(completed_at)s::timestamptz[], %(duration_ms)s::bigint[],
                %(version)s::integer[])
         WITH ORDINALITY
         AS v(id, workflow_run_id, stage_id, stage_name, stage_number, execution_group, status,
              config, output_ref, suspended_state, next_poll_at, poll_interval,
              max_wait_until, metrics, error, error_traceback, attempt, created_at,
              started_at, completed_at, duration_ms, version, n)
    ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT expect_ids(%(id)s::text[], array(SELECT id FROM inserted));

-- name: insert_jobs
-- In the given order (n), as insert_stages.
WITH inserted AS (
    INSERT INTO jobs (id, workflow_run_id, workflow_id, stage_id, status, priority, attempt,
                      max_attempts, worker_id, locked_at, available_at, payload, last_error,
                      reap_count, created_at, workflow_version, limit_key, limit_max_running,
                      limit_rate_count, limit_rate_per_us)
    SELECT id, workflow_run_id, workflow_id, stage_id, status, priority, attempt, max_attempts,
           worker_id, locked_at, available_at, payload, last_error, reap_count, created_at,
           workflow_version, limit_key, limit_max_running, limit_rate_count, limit_rate_per_us
    FROM unnest(%(id)s::text[], %(workflow_run_id)s::text[], %(workflow_id)s::text[],
                %(stage_id)s::text[], %(status)s::text[], %(priority)s::integer[],
                %(attempt)s::integer[], %(max_attempts)s::integer[], %(worker_id)s::text[],
                %(locked_at)s::timestamptz[], %(available_at)s::timestamptz[],
                %(payload)s::jsonb[], %(last_error)s::text[], %(reap_count)s::integer[],
                %(created_at)s::timestamptz[], %(workflow_version)s::text[],
                %(limit_key)s::text[], %(limit_max_running)s::integer[],
                %(limit_rate_count)s::integer[], %(limit_rate_per_us)s::bigint[])
         WITH ORDINALITY
         AS v(id, workflow_run_id, workflow_id, stage_id, status, priority, attempt,
              max_attempts, worker_id, locked_at, available_at, payload, last_error,
              reap_count, created_at, workflow_version, limit_key, limit_max_running,
              limit_rate_count, limit_rate_per_us, n)
    ORDER BY n
    ON CONFLICT DO NOTHING
    RETURNING id
)
SELECT expect_ids(%(id)s::text[], array(SELECT id FROM inserted));
