-- Signals sent to runs (run.signal, SPEC §13) and schedules (SPEC §14, §16.1).
--
-- A run's signals come in arrival order ("seq"); consumed ones stay as the
-- record of what a stage received, so one index on (run, seq) serves both
-- get_signals and buffered_signals. Schedules are found by id; a tick reads
-- the enabled ones whose fire time has come, earliest first, through
-- schedules_due_idx (ties by id in byte order, as every store sorts them).

CREATE TABLE signals (
    seq             bigserial NOT NULL,
    id              text PRIMARY KEY,
    workflow_run_id text NOT NULL,
    name            text NOT NULL,
    payload         jsonb,
    created_at      timestamptz NOT NULL,
    consumed_at     timestamptz,
    stage_id        text
);
CREATE INDEX signals_run_idx ON signals (workflow_run_id, seq);

CREATE TABLE schedules (
    seq          bigserial NOT NULL,
    id           text PRIMARY KEY,
    workflow_id  text NOT NULL,
    cron         text,
    every        interval,
    input        jsonb,
    config       jsonb,
    timezone     text NOT NULL,
    overlap      text NOT NULL,
    catchup      text NOT NULL,
    enabled      boolean NOT NULL,
    next_fire_at timestamptz,
    last_fire_at timestamptz,
    last_run_id  text,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL,
    version      integer NOT NULL
);
-- schedule.tick: enabled schedules whose fire time has come, earliest first.
CREATE INDEX schedules_due_idx ON schedules (next_fire_at, id COLLATE "C") WHERE enabled;
