"""The pages: the runs list (filters, search, pages), a run, the outbox, the schedules."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from urllib.parse import urlencode

from attrs import frozen
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from adapters.ui import viewmodel as vm
from adapters.ui.app import STATUSES, UiState, path_for, render, ui_state
from adapters.ui.schedule_rows import ScheduleRow, schedule_row
from kernel.commands import RunCreate
from kernel.ports import Store
from kernel.records import OutboxEvent, WorkflowRun
from kernel.status import Status

PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
EVENTS_SHOWN = 200
"""A run's page lists its last this many outbox events (the live stream adds newer ones)."""
DEAD_LETTERS_SHOWN = 100

DONE_NOTICES = {
    "cancel": "cancelled the run",
    "rerun": "the run runs again from the stage you chose",
    "signal-delivered": "signal delivered: the waiting stage completed with its payload",
    "signal-buffered": "signal kept: no stage waits for it yet, the first one that does takes it",
}
"""What a run's page says after an action (``?done=``): a fixed text, never the query's."""


class BadQuery(ValueError):
    """A query parameter the runs list cannot use; the message names it and its value."""


def find_run_by_key(store: Store, key: str) -> str | None:
    """The run an idempotency key of ``run.create`` made, if any.

    ``run.create`` remembers its result under (key, ``"run.create"``); the
    record is read in a short transaction of its own (the port's only way to
    read idempotency records).
    """
    with store.transaction() as tx:
        record = tx.get_idempotency(key, RunCreate.type)
    if record is None or record.state != "COMPLETED" or not isinstance(record.result, dict):
        return None
    run_id = record.result.get("workflow_run_id")
    return run_id if isinstance(run_id, str) else None


def search(store: Store, text: str) -> str | None:
    """The run whose id, or whose ``run.create`` idempotency key, is ``text``."""
    if store.get_run(text) is not None:
        return text
    return find_run_by_key(store, text)


@frozen
class RunFilters:
    status: Status | None
    workflow_id: str | None
    before: str | None
    limit: int

    @classmethod
    def read(cls, request: Request) -> RunFilters:
        params = request.query_params
        status_text = params.get("status") or None
        if status_text is not None and status_text.upper() not in STATUSES:
            raise BadQuery(f"status: expected one of {', '.join(STATUSES)}, got {status_text!r}")
        limit_text = params.get("limit") or str(PAGE_SIZE)
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_PAGE_SIZE:
            raise BadQuery(
                f"limit: expected a number from 1 to {MAX_PAGE_SIZE}, got {limit_text!r}"
            )
        return cls(
            status=None if status_text is None else Status(status_text.upper()),
            workflow_id=(params.get("workflow") or "").strip() or None,
            before=params.get("before") or None,
            limit=int(limit_text),
        )

    def query(self, **changes: str | None) -> str:
        """This page's query string with ``changes`` (``None`` drops a parameter)."""
        values: dict[str, str | None] = {
            "status": None if self.status is None else str(self.status),
            "workflow": self.workflow_id,
            "limit": None if self.limit == PAGE_SIZE else str(self.limit),
            "before": self.before,
        }
        values.update(changes)
        return urlencode({key: value for key, value in values.items() if value})


def list_page(store: Store, filters: RunFilters) -> list[WorkflowRun]:
    """One page of runs, plus the first of the next page (to know there is one).

    ``before`` is keyset pagination: the store starts after that run, so a
    page costs the same at run 100,000 as at run 1.
    """
    if filters.before is None:  # stores without `before` still serve the first page
        return store.list_runs(filters.status, filters.workflow_id, filters.limit + 1)
    return store.list_runs(
        filters.status, filters.workflow_id, filters.limit + 1, before=filters.before
    )


async def runs_page(request: Request) -> Response:
    ui = ui_state(request)
    text = (request.query_params.get("q") or "").strip()
    if text:
        found = await run_in_threadpool(search, ui.store, text)
        if found is not None:
            return RedirectResponse(path_for(request, "run", run_id=found), status_code=303)
    try:
        filters = RunFilters.read(request)
    except BadQuery as bad:
        return render(request, "runs.html", _runs_context(ui, None, [], str(bad), text), 400)
    runs = await run_in_threadpool(list_page, ui.store, filters)
    problem = f"no run has the id or idempotency key {text!r}" if text else None
    return render(
        request,
        "runs.html",
        _runs_context(ui, filters, runs, problem, text),
        status_code=404 if text else 200,
    )


def _runs_context(
    ui: UiState,
    filters: RunFilters | None,
    runs: Sequence[WorkflowRun],
    problem: str | None,
    search_text: str,
) -> dict[str, object]:
    shown = list(runs[: filters.limit]) if filters else []
    older = (
        filters.query(before=shown[-1].id)
        if filters is not None and len(runs) > filters.limit
        else None
    )
    newest = filters.query(before=None) if filters is not None and filters.before else None
    known = sorted({*ui.workflow_ids(), *(run.workflow_id for run in shown)})
    return {
        "runs": [vm.run_row(run) for run in shown],
        "filters": filters,
        "problem": problem,
        "search_text": search_text,
        "older_query": older,
        "newest_query": newest,
        "workflow_ids": known,
    }


@frozen
class RunSnapshot:
    """Everything a run's page shows, read from the store in one go."""

    run: WorkflowRun
    stages: list[vm.StageRow]
    last_error: vm.LastError | None
    events: list[OutboxEvent]
    jobs: list[vm.JobRow]
    logs: list[vm.LogRow]
    signals: list[vm.SignalRow]
    stage_ids: list[str]


def read_run(store: Store, run_id: str, now: datetime) -> RunSnapshot | None:
    run = store.get_run(run_id)
    if run is None:
        return None
    stages = store.get_stages(run_id)
    events = store.get_outbox(run_id)
    return RunSnapshot(
        run=run,
        stages=vm.stage_rows(stages, events, now),
        last_error=vm.last_error(run, stages, events),
        events=events,
        jobs=[vm.job_row(job) for job in store.get_jobs(run_id)],
        logs=vm.log_rows(store.get_logs(run_id), stages),
        signals=vm.signal_rows(store.get_signals(run_id)),
        stage_ids=[stage.stage_id for stage in stages],
    )


async def run_page(request: Request) -> Response:
    return await show_run(request, request.path_params["run_id"])


async def show_run(
    request: Request, run_id: str, problem: str | None = None, status_code: int = 200
) -> Response:
    """A run's page; ``problem``: why an action was refused, shown above the run."""
    ui = ui_state(request)
    snapshot = await run_in_threadpool(read_run, ui.store, run_id, datetime.now(UTC))
    if snapshot is None:
        raise HTTPException(404, f"workflow run {run_id!r} does not exist")
    run = snapshot.run
    events = snapshot.events[-EVENTS_SHOWN:]
    last_sequence = snapshot.events[-1].sequence if snapshot.events else 0
    done = DONE_NOTICES.get(request.query_params.get("done") or "")
    waiting = [row for row in snapshot.stages if row.waiting]
    return render(
        request,
        "run.html",
        {
            "run": vm.run_row(run, snapshot.events),
            "record": run,
            "input_json": vm.pretty_json(run.input),
            "output_json": None if run.output is None else vm.pretty_json(run.output),
            "stages": snapshot.stages,
            "timeline": vm.timeline(snapshot.stages),
            "last_error": snapshot.last_error,
            "events": [vm.event_row(event) for event in events],
            "events_total": len(snapshot.events),
            "jobs": snapshot.jobs,
            "logs": snapshot.logs,
            "signals": snapshot.signals,
            "stage_ids": snapshot.stage_ids,
            "waiting_signals": [row for row in waiting if row.status == Status.SUSPENDED],
            "live_url": None
            if run.is_terminal
            else f"{path_for(request, 'live', run_id=run.id)}?after={last_sequence}",
            "can_cancel": not run.is_terminal,
            "can_rerun": run.status in (Status.COMPLETED, Status.FAILED)
            and bool(snapshot.stage_ids),
            "notice": done,
            "problem": problem,
        },
        status_code=status_code,
    )


def read_outbox(store: Store) -> tuple[vm.OutboxCounts, list[vm.DeadLetterRow]]:
    """The counts by delivery state and the latest dead letters.

    The ``Store`` port has one way to read the outbox across runs,
    ``get_outbox()``: every event. It is fine for a store of thousands of
    runs; far bigger stores are better watched through the event sink.
    """
    events = store.get_outbox()
    dead = [event for event in events if event.dlq_at is not None]
    dead.sort(key=lambda event: event.dlq_at or event.occurred_at, reverse=True)
    return vm.outbox_counts(events), [vm.dead_letter_row(e) for e in dead[:DEAD_LETTERS_SHOWN]]


async def outbox_page(request: Request) -> Response:
    counts, dead = await run_in_threadpool(read_outbox, ui_state(request).store)
    return render(
        request,
        "outbox.html",
        {"counts": counts, "dead_letters": dead, "dead_shown": DEAD_LETTERS_SHOWN},
    )


def read_schedules(store: Store) -> list[ScheduleRow]:
    rows = []
    for record in store.get_schedules():
        last = store.get_run(record.last_run_id) if record.last_run_id else None
        rows.append(schedule_row(record, last))
    return rows


async def schedules_page(request: Request) -> Response:
    rows = await run_in_threadpool(read_schedules, ui_state(request).store)
    return render(request, "schedules.html", {"schedules": rows})


async def not_found(request: Request, exc: Exception) -> Response:
    detail = exc.detail if isinstance(exc, HTTPException) else "not found"
    if request.url.path.startswith("/static/"):
        return Response(detail, status_code=404, media_type="text/plain")
    return render(request, "error.html", {"title": "Not found", "message": detail}, 404)
