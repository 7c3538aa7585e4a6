-- workflow-kernel PostgreSQL schema, version 1.
--
-- Runs inside the configured schema (search_path is set by the migrator), in
-- one transaction, under an advisory lock. Every table has an insertion-order
-- column ``seq`` that breaks ties the way the in-memory store does (insertion
-- order) and, for the outbox, orders events globally.

CREATE TABLE runs (
    seq           bigserial NOT NULL,
    id            text PRIMARY KEY,
    workflow_id   text NOT NULL,
    workflow_name text NOT NULL,
    status        text NOT NULL,
    input         jsonb,
    config        jsonb NOT NULL,
    priority      integer NOT NULL,
    metadata      jsonb NOT NULL,
    output        jsonb,
    error         text,
    created_at    timestamptz NOT NULL,
    started_at    timestamptz,
    completed_at  timestamptz,
    duration_ms   bigint,
    total_cost    double precision NOT NULL,
    total_tokens  bigint NOT NULL,
    version       integer NOT NULL
);
-- run.claimPending: highest priority, then oldest, over PENDING runs only.
CREATE INDEX runs_pending_idx ON runs (priority DESC, created_at, seq) WHERE status = 'PENDING';
CREATE INDEX runs_created_idx ON runs (created_at DESC, seq DESC);

CREATE TABLE stages (
    seq             bigserial NOT NULL,
    id              text PRIMARY KEY,
    workflow_run_id text NOT NULL,
    stage_id        text NOT NULL,
    stage_name      text NOT NULL,
    stage_number    integer NOT NULL,
    execution_group integer NOT NULL,
    status          text NOT NULL,
    config          jsonb NOT NULL,
    output_ref      text,
    suspended_state jsonb,
    next_poll_at    timestamptz,
    poll_interval   interval,
    max_wait_until  timestamptz,
    metrics         jsonb NOT NULL,
    error           text,
    attempt         integer NOT NULL,
    created_at      timestamptz NOT NULL,
    started_at      timestamptz,
    completed_at    timestamptz,
    duration_ms     bigint,
    version         integer NOT NULL,
    CONSTRAINT stages_run_stage_key UNIQUE (workflow_run_id, stage_id)
);
CREATE INDEX stages_run_idx ON stages (workflow_run_id, stage_number, seq);
-- stage.pollSuspended: due suspended stages, earliest first.
CREATE INDEX stages_suspended_idx ON stages (next_poll_at, created_at, seq)
    WHERE status = 'SUSPENDED';

CREATE TABLE jobs (
    seq             bigserial NOT NULL,
    id              text PRIMARY KEY,
    workflow_run_id text NOT NULL,
    workflow_id     text NOT NULL,
    stage_id        text NOT NULL,
    status          text NOT NULL,
    priority        integer NOT NULL,
    attempt         integer NOT NULL,
    max_attempts    integer NOT NULL,
    worker_id       text,
    locked_at       timestamptz,
    available_at    timestamptz NOT NULL,
    payload         jsonb NOT NULL,
    last_error      text,
    reap_count      integer NOT NULL,
    created_at      timestamptz NOT NULL
);
-- Dequeue: highest priority, then oldest, over QUEUED jobs only.
CREATE INDEX jobs_queued_idx ON jobs (priority DESC, created_at, seq) WHERE status = 'QUEUED';
-- lease.reapStale: leased jobs only.
CREATE INDEX jobs_leased_idx ON jobs (seq) WHERE status = 'LEASED';
CREATE INDEX jobs_run_idx ON jobs (workflow_run_id, seq);

-- One counter row per run: appending an outbox event locks it, so sequences
-- are gap-free and follow commit order (see queries.sql, append_outbox).
CREATE TABLE outbox_sequences (
    workflow_run_id text PRIMARY KEY,
    last_sequence   integer NOT NULL
);

CREATE TABLE outbox (
    seq             bigserial NOT NULL,
    id              text PRIMARY KEY,
    workflow_run_id text NOT NULL,
    sequence        integer NOT NULL,
    event_type      text NOT NULL,
    payload         jsonb NOT NULL,
    causation_id    text NOT NULL,
    occurred_at     timestamptz NOT NULL,
    published_at    timestamptz,
    retry_count     integer NOT NULL DEFAULT 0,
    dlq_at          timestamptz,
    -- A flush's claim: the event is its own until this time.
    claimed_until   timestamptz,
    CONSTRAINT outbox_run_sequence_key UNIQUE (workflow_run_id, sequence)
);
-- outbox.flush: unpublished, live events in insertion order.
CREATE INDEX outbox_unpublished_idx ON outbox (seq)
    WHERE published_at IS NULL AND dlq_at IS NULL;
-- outbox.flush: events under a claim (live or expired, until settled).
CREATE INDEX outbox_claimed_idx ON outbox (workflow_run_id, seq)
    WHERE claimed_until IS NOT NULL AND published_at IS NULL AND dlq_at IS NULL;
CREATE INDEX outbox_dead_idx ON outbox (seq) WHERE dlq_at IS NOT NULL;
CREATE INDEX outbox_global_idx ON outbox (seq);

CREATE TABLE idempotency_keys (
    key          text NOT NULL,
    command_type text NOT NULL,
    state        text NOT NULL,
    fingerprint  text NOT NULL,
    result       jsonb,
    created_at   timestamptz NOT NULL,
    CONSTRAINT idempotency_keys_pkey PRIMARY KEY (key, command_type)
);

CREATE TABLE logs (
    seq              bigserial PRIMARY KEY,
    id               text NOT NULL,
    workflow_run_id  text NOT NULL,
    stage_record_id  text,
    level            text NOT NULL,
    message          text NOT NULL,
    metadata         jsonb NOT NULL,
    created_at       timestamptz NOT NULL
);
CREATE INDEX logs_run_idx ON logs (workflow_run_id, seq);

CREATE TABLE blobs (
    key   text PRIMARY KEY,
    value jsonb
);
