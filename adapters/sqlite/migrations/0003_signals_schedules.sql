-- Signals sent to runs (run.signal, SPEC §13) and schedules (SPEC §14, §16.1).
--
-- A signal is found by its "id" (ConsumeSignal) and by its run, in arrival
-- order ("position"); consumed signals stay as the record of what a stage
-- received, so the run's index serves both get_signals and buffered_signals
-- (a run has few signals: the consumed ones are filtered on the scan).
CREATE TABLE signals (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workflow_run_id TEXT NOT NULL REFERENCES runs (id) DEFERRABLE INITIALLY DEFERRED,
    name TEXT NOT NULL,
    payload TEXT NOT NULL,
    created_at TEXT NOT NULL,
    consumed_at TEXT,
    stage_id TEXT
);

CREATE INDEX signals_run ON signals (workflow_run_id, position);

-- "every" is INTEGER microseconds like stages.poll_interval; "config" is
-- JSON text ('null' when the schedule has none); "enabled" is 0 or 1.
CREATE TABLE schedules (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workflow_id TEXT NOT NULL,
    cron TEXT,
    every INTEGER,
    input TEXT NOT NULL,
    config TEXT NOT NULL,
    timezone TEXT NOT NULL,
    overlap TEXT NOT NULL,
    catchup TEXT NOT NULL,
    enabled INTEGER NOT NULL,
    next_fire_at TEXT,
    last_fire_at TEXT,
    last_run_id TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL
);

-- schedule.tick: enabled schedules whose fire time has come, earliest first.
CREATE INDEX schedules_due ON schedules (next_fire_at, id) WHERE enabled = 1;
