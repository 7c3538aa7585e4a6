-- Workflow versions (SPEC §16): a run records the version of its workflow,
-- and so does each job, so a worker leases only jobs of the (workflow id,
-- version) pairs it holds. Runs and jobs written before this migration ran
-- version "1", the default. A constant default makes each ADD COLUMN a
-- catalog change: no table rewrite.
--
-- The job's copy keeps the lease query as it was: one walk of jobs_queued_idx
-- in lease order, the pair filter checked on each row it visits (no join to
-- runs on the hot path).

ALTER TABLE runs ADD COLUMN workflow_version text NOT NULL DEFAULT '1';

ALTER TABLE jobs ADD COLUMN workflow_version text NOT NULL DEFAULT '1';
