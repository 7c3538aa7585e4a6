-- Retention (runs.purge, SPEC §16).
--
-- runs_finished_idx: purgeable_runs (purge.sql) walks it from the oldest
-- completed_at and stops at the cutoff; only finished runs have a
-- completed_at, so it holds those only. Its id is ordered byte-wise like the
-- query's ORDER BY.
CREATE INDEX runs_finished_idx ON runs (completed_at, id COLLATE "C")
    WHERE completed_at IS NOT NULL;

-- blobs_key_c_idx: purge_run deletes a run's stored values by the byte-wise
-- key range 'runs/<id>/' to 'runs/<id>0' (COLLATE "C", so the database's
-- collation cannot change which keys fall inside); the primary key, in the
-- database's collation, cannot serve that range.
CREATE INDEX blobs_key_c_idx ON blobs (key COLLATE "C");
