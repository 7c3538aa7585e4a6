-- Concurrency and rate limits (SPEC §15): a job carries its stage's limit,
-- its key resolved when it was enqueued; jobs without a limit keep NULLs.
--
-- lease_next_job counts, for a limited candidate only, the LEASED jobs of its
-- key (jobs_limit_leased: a partial index holding LEASED limited jobs, so the
-- count reads at most max_running entries) and the key's leases in the rate
-- window (limit_leases, one row per lease of a rate-limited job, by key and
-- time in microseconds since the epoch; pruned as leases are recorded).
-- Unlimited jobs pass the limit filter on their NULL key: the scan of
-- jobs_queued in lease order is what it was.

ALTER TABLE jobs ADD COLUMN limit_key TEXT;

ALTER TABLE jobs ADD COLUMN limit_max_running INTEGER;

ALTER TABLE jobs ADD COLUMN limit_rate_count INTEGER;

ALTER TABLE jobs ADD COLUMN limit_rate_per_us INTEGER;

CREATE INDEX jobs_limit_leased ON jobs (limit_key)
    WHERE status = 'LEASED' AND limit_key IS NOT NULL;

CREATE TABLE limit_leases (
    limit_key TEXT NOT NULL,
    leased_us INTEGER NOT NULL
);

CREATE INDEX limit_leases_key ON limit_leases (limit_key, leased_us);
