-- list_runs, filtered and paged (SPEC §7): newest first, by status or by
-- workflow, from a run id onwards ("before", a keyset on created_at, seq).
--
-- Each index is in list_runs' order (created_at DESC, seq DESC) after the
-- filtered column, so a page is an index scan that starts at the keyset and
-- stops after LIMIT rows. runs_created_idx (version 1) serves the unfiltered
-- list; with both filters, or a filter that most runs match, the planner
-- walks one of the three and checks the rest on the way.
--
-- What they cost: an update that changes an indexed column (the status, at
-- every transition; runs_pending_idx's predicate already made those
-- non-HOT) writes a new entry in every index of the table, these two included.
CREATE INDEX runs_status_idx ON runs (status, created_at DESC, seq DESC);
CREATE INDEX runs_workflow_idx ON runs (workflow_id, created_at DESC, seq DESC);
