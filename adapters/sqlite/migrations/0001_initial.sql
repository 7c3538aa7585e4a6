-- workflow-kernel SQLite schema, version 1.
--
-- Tables of records have an explicit INTEGER PRIMARY KEY "position": it is
-- the insertion order (outbox, logs, ties between equal timestamps) and,
-- unlike an implicit rowid, VACUUM never renumbers it. Runs and jobs are found
-- by their text "id" (UNIQUE); stages by (run, stage_id), outbox events by
-- (run, sequence). Every index costs a page write per change, so there is
-- none that no query needs.
--
-- Datetimes are TEXT in one canonical form, UTC with microseconds
-- ("2024-01-01T00:00:00.000000+00:00"), so text order is time order and the
-- indexes below can serve range scans. JSON columns hold json.dumps text.
-- Durations are INTEGER microseconds (exact). Statuses are the enum values.
--
-- Foreign keys to runs are checked at COMMIT (DEFERRABLE INITIALLY DEFERRED),
-- so the order of effects inside one decision does not matter.

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
    total_cost REAL NOT NULL,
    total_tokens INTEGER NOT NULL,
    version INTEGER NOT NULL
);

-- run.claimPending: highest priority, then oldest, among PENDING runs only.
CREATE INDEX runs_pending ON runs (priority DESC, created_at) WHERE status = 'PENDING';
-- list_runs: newest first.
CREATE INDEX runs_created_at ON runs (created_at);

-- A stage record is found by (run, stage_id), the unique key the kernel
-- relies on; its "id" is checked on update but needs no index of its own.
CREATE TABLE stages (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    workflow_run_id TEXT NOT NULL REFERENCES runs (id) DEFERRABLE INITIALLY DEFERRED,
    stage_id TEXT NOT NULL,
    stage_name TEXT NOT NULL,
    stage_number INTEGER NOT NULL,
    execution_group INTEGER NOT NULL,
    status TEXT NOT NULL,
    config TEXT NOT NULL,
    output_ref TEXT,
    suspended_state TEXT NOT NULL,
    next_poll_at TEXT,
    poll_interval INTEGER,
    max_wait_until TEXT,
    metrics TEXT NOT NULL,
    error TEXT,
    attempt INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    started_at TEXT,
    completed_at TEXT,
    duration_ms INTEGER,
    version INTEGER NOT NULL,
    CONSTRAINT stages_run_stage_unique UNIQUE (workflow_run_id, stage_id)
);

-- stage.pollSuspended: SUSPENDED stages whose poll time has come, earliest first.
CREATE INDEX stages_due ON stages (next_poll_at, created_at) WHERE status = 'SUSPENDED';

CREATE TABLE jobs (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    workflow_run_id TEXT NOT NULL REFERENCES runs (id) DEFERRABLE INITIALLY DEFERRED,
    workflow_id TEXT NOT NULL,
    stage_id TEXT NOT NULL,
    status TEXT NOT NULL,
    priority INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    worker_id TEXT,
    locked_at TEXT,
    available_at TEXT NOT NULL,
    payload TEXT NOT NULL,
    last_error TEXT,
    reap_count INTEGER NOT NULL,
    created_at TEXT NOT NULL
);

-- Dequeue: highest priority, then oldest, among QUEUED jobs only.
CREATE INDEX jobs_queued ON jobs (priority DESC, created_at) WHERE status = 'QUEUED';
-- lease.reapStale: LEASED jobs by lease time.
CREATE INDEX jobs_leased ON jobs (locked_at) WHERE status = 'LEASED';
CREATE INDEX jobs_run ON jobs (workflow_run_id, created_at);

-- An event is found by (run, sequence); its "id" is checked on update but
-- needs no index of its own (one index fewer to write per appended event).
CREATE TABLE outbox (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    workflow_run_id TEXT NOT NULL REFERENCES runs (id) DEFERRABLE INITIALLY DEFERRED,
    sequence INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    payload TEXT NOT NULL,
    causation_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    published_at TEXT,
    retry_count INTEGER NOT NULL DEFAULT 0,
    dlq_at TEXT,
    -- Internal, not on the record: a flush's claim on the event lasts until then.
    claimed_until TEXT,
    CONSTRAINT outbox_run_sequence_unique UNIQUE (workflow_run_id, sequence)
);

-- outbox.flush: unpublished, live events in insertion order.
CREATE INDEX outbox_unpublished ON outbox (position)
    WHERE published_at IS NULL AND dlq_at IS NULL;
-- plugin.replayDLQ: dead-lettered events (normally none, so the index stays tiny).
CREATE INDEX outbox_dead ON outbox (position) WHERE dlq_at IS NOT NULL;

CREATE TABLE idempotency_keys (
    key TEXT NOT NULL,
    command_type TEXT NOT NULL,
    state TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    result TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (key, command_type)
) WITHOUT ROWID;

CREATE TABLE blobs (
    key TEXT NOT NULL PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE logs (
    position INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    workflow_run_id TEXT NOT NULL REFERENCES runs (id) DEFERRABLE INITIALLY DEFERRED,
    stage_record_id TEXT,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    metadata TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE INDEX logs_run ON logs (workflow_run_id, position);
