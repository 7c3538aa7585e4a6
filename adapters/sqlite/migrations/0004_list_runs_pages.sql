-- list_runs, filtered and paged (SPEC §7): newest first, by status or by
-- workflow, from a run id onwards ("before", a keyset on created_at, position).
--
-- Every index carries the rowid "position" after its columns, so each of these
-- is ordered exactly as list_runs orders (created_at DESC, position DESC):
-- a page is a range scan, walked backwards, that stops after LIMIT rows.
-- runs_created_at (version 1) serves the unfiltered list; with both filters
-- the planner walks one of these two and checks the other column.
--
-- What the indexes cost: the workflow never changes after the insert, so
-- update_run leaves it out of its SET and runs_workflow is written once per
-- run. The status changes at every transition: runs_status is rewritten
-- (one entry deleted, one inserted) at every run update. pending_runs names
-- runs_pending (INDEXED BY) so that runs_status does not replace it.
CREATE INDEX runs_status ON runs (status, created_at);
CREATE INDEX runs_workflow ON runs (workflow_id, created_at);
