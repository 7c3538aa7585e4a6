"""The named statements of ``queries.sql``, read once at import.

Each ``-- name: xyz`` block becomes the attribute ``QUERIES.xyz``, so a
misspelt name fails mypy and a block missing from (or extra in) the file
fails at import. The text is never formatted: values are bound as named
parameters, and because every call passes the very same string, the
``sqlite3`` connection's statement cache prepares each statement once.
"""

from __future__ import annotations

from attrs import fields, frozen

from adapters.sqlfiles import read_queries


@frozen
class Queries:
    """One attribute per ``-- name:`` block of ``queries.sql``."""

    insert_run: str
    update_run: str
    get_run: str
    get_run_with_stages: str
    get_runs_with_stages: str
    run_versions: str
    run_versions_and_job: str
    versions_of_runs: str
    jobs_as_written: str
    pending_runs: str
    list_runs: str
    list_runs_by_status: str
    list_runs_by_workflow: str
    list_runs_by_status_and_workflow: str
    insert_stage: str
    update_stage: str
    delete_stage: str
    get_stages: str
    due_suspended_stages: str
    insert_job: str
    update_job: str
    get_job: str
    get_jobs: str
    lease_next_job: str
    next_queued_jobs: str
    lease_jobs: str
    record_limit_lease: str
    insert_limit_lease: str
    running_runs: str
    renew_lease: str
    stale_jobs: str
    append_outbox: str
    update_outbox: str
    claim_outbox: str
    dead_letters: str
    get_outbox: str
    get_run_outbox: str
    get_idempotency: str
    acquire_idempotency: str
    complete_idempotency: str
    release_idempotency: str
    get_blob: str
    put_blob: str
    delete_blob: str
    insert_log: str
    get_logs: str
    insert_signal: str
    consume_signal: str
    buffered_signals: str
    get_signals: str
    insert_schedule: str
    update_schedule: str
    delete_schedule: str
    get_schedule: str
    due_schedules: str
    get_schedules: str
    insert_usage: str
    get_usage_call: str
    get_usage: str
    insert_batch_cancel: str
    update_batch_cancel: str
    delete_batch_cancel: str
    pending_batch_cancels: str
    get_batch_cancels: str
    schema_version: str
    check_writable: str


QUERIES = Queries(
    **read_queries("adapters.sqlite", expected=[field.name for field in fields(Queries)])
)
