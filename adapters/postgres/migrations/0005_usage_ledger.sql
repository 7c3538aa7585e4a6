-- The usage ledger, pending provider batch cancels, and exact money (SPEC §11, §12.1).
--
-- Money is numeric, exact: runs.total_cost (until now double precision),
-- runs.budget and usage.cost. numeric keeps the scale it is given, so
-- Decimal("0.30000000") reads back as Decimal("0.30000000").
--
-- Existing total_cost floats become their shortest decimal repr (what Python's
-- repr gives): 0.1 + 0.2 written as a float becomes 0.30000000000000004. They
-- go through text because a direct float8-to-numeric cast keeps 15
-- significant digits (0.3), and float8's text output is the shortest
-- round-tripping form only while extra_float_digits > 0, hence the setting.
SET LOCAL extra_float_digits = 1;

ALTER TABLE runs
    ALTER COLUMN total_cost TYPE numeric USING total_cost::text::numeric,
    ADD COLUMN budget numeric;

-- One row per completed provider call (usage.record); "call_id" is the key, so
-- a call is recorded once. "seq" is the record order get_usage returns; a
-- run's rows are read through usage_run_idx in that order.
CREATE TABLE usage (
    seq                 bigserial NOT NULL,
    call_id             text PRIMARY KEY,
    workflow_run_id     text NOT NULL,
    stage_id            text NOT NULL,
    attempt             integer NOT NULL,
    model               text NOT NULL,
    kind                text NOT NULL,
    input_tokens        bigint NOT NULL,
    output_tokens       bigint NOT NULL,
    cached_input_tokens bigint NOT NULL,
    reasoning_tokens    bigint NOT NULL,
    cost                numeric NOT NULL,
    priced              boolean NOT NULL,
    note                text,
    recorded_at         timestamptz NOT NULL
);
CREATE INDEX usage_run_idx ON usage (workflow_run_id, seq);

-- Provider batches to cancel after commit (run.cancel, BATCH_TIMEOUT), kept
-- until the provider's cancel call succeeds; the host's tick takes the oldest
-- requests first (batch_cancels_pending_idx; ties by id in byte order).
CREATE TABLE batch_cancels (
    batch_id        text PRIMARY KEY,
    provider        text NOT NULL,
    workflow_run_id text NOT NULL,
    stage_id        text NOT NULL,
    requested_at    timestamptz NOT NULL,
    attempts        integer NOT NULL,
    last_error      text
);
CREATE INDEX batch_cancels_pending_idx ON batch_cancels (requested_at, batch_id COLLATE "C");
