-- Retention (runs.purge, SPEC §16): the runs that may go, and the statements that
-- delete one run with everything it owns. Read by adapters/sqlite/purge.py.
--
-- A purge runs inside BEGIN IMMEDIATE like every write, so no worker writes
-- between the read of the candidates and their deletion.

-- name: purgeable_runs
-- Terminal runs (:statuses, a JSON array) finished before :finished_before
-- whose outbox holds no unpublished event (pending or dead-lettered: both have
-- published_at NULL), oldest finish first. INDEXED BY: runs_finished (version
-- 7) is walked in this order and the walk stops at the cutoff; without
-- statistics SQLite would rather read every terminal run through runs_status
-- and sort them. The NOT EXISTS probe uses the outbox's (run, sequence) key.
SELECT * FROM runs INDEXED BY runs_finished
WHERE status IN (SELECT value FROM json_each(:statuses))
  AND completed_at IS NOT NULL
  AND completed_at < :finished_before
  AND NOT EXISTS (
      SELECT 1 FROM outbox
      WHERE outbox.workflow_run_id = runs.id AND outbox.published_at IS NULL
  )
ORDER BY completed_at, id
LIMIT :limit;

-- name: purge_run
-- The row count says whether the run was still there at the version read.
DELETE FROM runs WHERE id = :id AND version = :expected_version;

-- name: purge_stages
DELETE FROM stages WHERE workflow_run_id = :id;

-- name: purge_jobs
DELETE FROM jobs WHERE workflow_run_id = :id;

-- name: purge_outbox
DELETE FROM outbox WHERE workflow_run_id = :id;

-- name: purge_logs
DELETE FROM logs WHERE workflow_run_id = :id;

-- name: purge_usage
DELETE FROM usage WHERE workflow_run_id = :id;

-- name: purge_signals
DELETE FROM signals WHERE workflow_run_id = :id;

-- name: purge_blobs
-- Keys from 'runs/<id>/' up to, not including, 'runs/<id>0' ('0' follows '/'):
-- exactly the keys that start with 'runs/<id>/', as a range of the primary key.
DELETE FROM blobs WHERE key >= :low AND key < :high;
