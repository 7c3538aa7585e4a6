-- The usage ledger, pending provider batch cancels, and exact money (SPEC §11, §12.1).
--
-- Money is exact: runs.total_cost, runs.budget and usage.cost are TEXT holding
-- a Decimal's str ("0.30000000"). Not REAL (a float), and not NUMERIC either:
-- a column of REAL or NUMERIC affinity turns numeric-looking text back into a
-- float when it is written, so only TEXT affinity keeps the digits as given.
--
-- SQLite cannot change a column's type, so runs is rebuilt. Its documented
-- procedure (create the new table, copy, drop the old one, rename the new one)
-- needs foreign keys switched off, and PRAGMA foreign_keys does nothing inside
-- the transaction every migration runs in: with them on, dropping runs counts
-- each reference of stages, jobs, outbox, logs and signals to a run as a
-- (deferred) violation, which a table renamed to "runs" does not settle but
-- rows inserted into a table named "runs" do. So the rows are set aside, runs
-- is dropped and created anew under its own name, and the rows come back,
-- "position" (insertion order) included; then its indexes (versions 1 and 4)
-- are made again.
--
-- total_cost REAL values become text through float_text(), a function the
-- migrator registers: Python's repr of the float (its shortest round-tripping
-- decimal), so 0.1 + 0.2 written as a float reads back as
-- Decimal("0.30000000000000004"). SQLite's own REAL-to-text conversion keeps
-- 15 significant digits and would not round-trip.

CREATE TABLE runs_before_0005 AS SELECT * FROM runs;

DROP TABLE runs;

CREATE TABLE runs (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workflow_id TEXT NOT NULL,
    workflow_name TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    config TEXT NOT NULL,
    priority INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    output TEXT NOT NULL,
    error TEXT,
    created_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    duration_ms INTEGER,
    total_cost TEXT NOT NULL,
    total_tokens INTEGER NOT NULL,
    budget TEXT,
    version INTEGER NOT NULL
);

INSERT INTO runs (
    position, id, workflow_id, workflow_name, status, input, config, priority, metadata,
    output, error, created_at, started_at, completed_at, duration_ms, total_cost,
    total_tokens, budget, version
)
SELECT
    position, id, workflow_id, workflow_name, status, input, config, priority, metadata,
    output, error, created_at, started_at, completed_at, duration_ms, float_text(total_cost),
    total_tokens, NULL, version
FROM runs_before_0005
ORDER BY position;

DROP TABLE runs_before_0005;

-- As in versions 1 and 4 (they explain each).
CREATE INDEX runs_pending ON runs (priority DESC, created_at) WHERE status = 'PENDING';
CREATE INDEX runs_created_at ON runs (created_at);
CREATE INDEX runs_status ON runs (status, created_at);
CREATE INDEX runs_workflow ON runs (workflow_id, created_at);

-- One row per completed provider call (usage.record). "call_id" is the key:
-- recording a call twice is refused here and a no-op for the kernel, which
-- looks it up first. "position" is the record order get_usage returns;
-- a run's rows are read through usage_run in that order.
CREATE TABLE usage (
    position INTEGER PRIMARY KEY,
    call_id TEXT NOT NULL UNIQUE,
    workflow_run_id TEXT NOT NULL REFERENCES runs (id) DEFERRABLE INITIALLY DEFERRED,
    stage_id TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    model TEXT NOT NULL,
    kind TEXT NOT NULL,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    cost TEXT NOT NULL,
    priced INTEGER NOT NULL,
    note TEXT,
    recorded_at TEXT NOT NULL
);

CREATE INDEX usage_run ON usage (workflow_run_id, position);

-- Provider batches to cancel after commit (run.cancel, BATCH_TIMEOUT), until
-- the provider's cancel call succeeds. No foreign key: the batch is the
-- provider's and must be cancelled whatever becomes of the run.
CREATE TABLE batch_cancels (
    batch_id TEXT NOT NULL PRIMARY KEY,
    provider TEXT NOT NULL,
    workflow_run_id TEXT NOT NULL,
    stage_id TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    last_error TEXT
) WITHOUT ROWID;

-- The host's tick: the oldest requests first.
CREATE INDEX batch_cancels_pending ON batch_cancels (requested_at, batch_id);
