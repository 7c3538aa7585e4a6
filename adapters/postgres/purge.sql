-- Retention (runs.purge, SPEC §16): the runs that may go, and the statement that
-- deletes one run with everything it owns. adapters/postgres/queries.py adds
-- these blocks to QUERIES.

-- name: purgeable_runs
-- Terminal runs (%(statuses)s, a text[]) finished before %(finished_before)s
-- whose outbox holds no unpublished event (pending or dead-lettered: both have
-- published_at NULL), oldest finish first. FOR UPDATE SKIP LOCKED: a run a
-- worker is changing right now (rerun, signal, usage) is left for the next
-- purge, and a writer that comes later waits for this purge and then finds the
-- run gone; two purges delete different runs. Served by runs_finished_idx
-- (version 7) in this order; the NOT EXISTS probe uses outbox_run_sequence_key.
SELECT id
FROM runs
WHERE status = ANY(%(statuses)s)
  AND completed_at IS NOT NULL
  AND completed_at < %(finished_before)s
  AND NOT EXISTS (
      SELECT 1 FROM outbox
      WHERE outbox.workflow_run_id = runs.id AND outbox.published_at IS NULL
  )
ORDER BY completed_at, id COLLATE "C"
LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: purge_run
-- One statement: the run goes if it is still at the version its decision read
-- (expect_rows fails the statement otherwise), and every row it owns goes with it. Blob keys
-- of the run are the ones starting with 'runs/<id>/': the range up to
-- 'runs/<id>0' ('0' follows '/'), compared byte-wise (COLLATE "C") so that the
-- database's collation cannot widen or narrow it.
WITH run AS (
    DELETE FROM runs WHERE id = %(id)s AND version = %(expected_version)s RETURNING id
), stages AS (
    DELETE FROM stages WHERE workflow_run_id = %(id)s AND EXISTS (SELECT 1 FROM run)
), jobs AS (
    DELETE FROM jobs WHERE workflow_run_id = %(id)s AND EXISTS (SELECT 1 FROM run)
), outbox AS (
    DELETE FROM outbox WHERE workflow_run_id = %(id)s AND EXISTS (SELECT 1 FROM run)
), sequences AS (
    DELETE FROM outbox_sequences
    WHERE workflow_run_id = %(id)s AND EXISTS (SELECT 1 FROM run)
), logs AS (
    DELETE FROM logs WHERE workflow_run_id = %(id)s AND EXISTS (SELECT 1 FROM run)
), usage_rows AS (
    DELETE FROM usage WHERE workflow_run_id = %(id)s AND EXISTS (SELECT 1 FROM run)
), signals AS (
    DELETE FROM signals WHERE workflow_run_id = %(id)s AND EXISTS (SELECT 1 FROM run)
), blobs AS (
    DELETE FROM blobs
    WHERE key COLLATE "C" >= %(low)s AND key COLLATE "C" < %(high)s
      AND EXISTS (SELECT 1 FROM run)
)
SELECT expect_rows(count(*)) FROM run;
