-- Retention (runs.purge, SPEC §16): finished runs in the order a purge takes them.
--
-- purgeable_runs (purge.sql) walks this index from the oldest completed_at
-- and stops at the cutoff, instead of reading every terminal run through
-- runs_status and sorting them. Only finished runs have a completed_at (and
-- a run re-run from a stage keeps its old one while it runs again, which the
-- status filter then skips), so the index holds the finished runs only.
CREATE INDEX runs_finished ON runs (completed_at, id) WHERE completed_at IS NOT NULL;
