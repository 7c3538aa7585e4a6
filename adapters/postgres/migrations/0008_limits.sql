-- Concurrency and rate limits (SPEC §15): a job carries its stage's limit,
-- its key resolved when it was enqueued; jobs without a limit keep NULLs
-- (nullable columns without a default: each ADD COLUMN is a catalog change,
-- no table rewrite).
--
-- lease_next_job counts, for a limited candidate only, the LEASED jobs of its
-- key (jobs_limit_leased_idx: a partial index holding LEASED limited jobs, so
-- the count reads at most max_running entries) and the key's leases in the
-- rate window (limit_leases, one row per lease of a rate-limited job, by key
-- and time in microseconds since the epoch; pruned as leases are recorded).
-- The count is taken again under an advisory lock on the key before the lease
-- commits, so two workers never fill one slot. Unlimited jobs pass the filter
-- on their NULL key: the walk of jobs_queued_idx is what it was.

ALTER TABLE jobs ADD COLUMN limit_key text;

ALTER TABLE jobs ADD COLUMN limit_max_running integer;

ALTER TABLE jobs ADD COLUMN limit_rate_count integer;

ALTER TABLE jobs ADD COLUMN limit_rate_per_us bigint;

CREATE INDEX jobs_limit_leased_idx ON jobs (limit_key)
    WHERE status = 'LEASED' AND limit_key IS NOT NULL;

CREATE TABLE limit_leases (
    limit_key text NOT NULL,
    leased_us bigint NOT NULL
);

CREATE INDEX limit_leases_key_idx ON limit_leases (limit_key, leased_us);
