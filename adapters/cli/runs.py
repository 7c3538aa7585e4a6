"""``wfk runs`` and ``wfk run create|show|cancel|rerun`` (``run signal``: :mod:`.signals`)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from adapters import create_kernel
from adapters.cli import signals
from adapters.cli.apps import App
from adapters.cli.errors import CliError
from adapters.cli.inputs import app_kernel, find_run, parse_config, parse_json, registered
from adapters.cli.live import drive, last_sequence
from adapters.cli.render import (
    dump,
    events_table,
    run_header,
    run_summary,
    runs_table,
    stages_table,
    table,
    when,
)
from adapters.cli.show import (
    kept_signals,
    no_stages,
    signal_waits,
    tracebacks,
    waits_for_signals,
)
from adapters.cli.stores import Stores, create_flag, store_url
from adapters.cli.timeline import latest_progress, run_duration_text
from kernel.commands import RunCancel, RunCreate, RunRerunFrom
from kernel.dispatch import Kernel
from kernel.ports import Store
from kernel.records import WorkflowRun, WorkflowStage
from kernel.status import Status


def _wait(
    args: argparse.Namespace,
    kernel: Kernel,
    store: Store,
    app: App,
    run_id: str,
    after: int = 0,
) -> int:
    """Drive the run here with a live display; print how it ended; 0 only if it COMPLETED.

    The display shows the run's outbox events after sequence ``after``. With
    ``--json`` it goes to stderr and stdout holds one JSON object.
    """
    display = sys.stderr if args.json else sys.stdout
    (view,) = drive(
        kernel,
        store,
        [run_id],
        out=display,
        workflows=app.workflows,
        timeout=args.timeout,
        after={run_id: after},
    )
    return _ended(args, view.run, view.stages, store)


def _ended(
    args: argparse.Namespace, run: WorkflowRun, stages: Sequence[WorkflowStage], store: Store
) -> int:
    """Print how a run ended (its summary, or JSON); 0 only if it COMPLETED.

    A run that waits for signals has not ended: the summary says how to send them.
    """
    if args.json:
        print(dump({"run": run, "stages": stages}))
    else:
        print()
        print(run_summary(run, stages, took=run_duration_text(run, store.get_outbox(run.id))))
        for note in signal_waits(stages).values():
            print(f"  {note}")
        for name in waits_for_signals(run, stages):
            print(
                f"  send it with `wfk run signal {run.id[:8]} {name} --payload JSON`; "
                "a worker runs the rest"
            )
    return 0 if run.status == Status.COMPLETED else 1


def _existing_run(store: Store, key: str | None) -> str | None:
    """The run an idempotency key already made (``run.create`` replays it), if any."""
    if key is None:
        return None
    with store.transaction() as tx:
        record = tx.get_idempotency(key, RunCreate.type)
    if record is None or record.state != "COMPLETED" or not isinstance(record.result, dict):
        return None
    run_id = record.result.get("workflow_run_id")
    return run_id if isinstance(run_id, str) else None


def cmd_run_create(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=args.create, offers_create=True)
    app, kernel = app_kernel(args, store)
    registered(app, args.workflow)
    config = parse_config(args.config)
    run_input = parse_json(args.input, "--input")
    before = _existing_run(store, args.key)
    created = kernel.dispatch(
        RunCreate(
            workflow_id=args.workflow,
            input=run_input,
            config=config,
            priority=args.priority,
            idempotency_key=args.key,
            version=args.workflow_version,
        )
    )
    run_id = created.workflow_run_id
    existing = before == run_id  # the key's replay: the run it made before, as it is now
    current = store.get_run(run_id) if existing else None
    status = current.status if current is not None else created.status
    said = (
        f"run {run_id} already exists ({status})"
        if existing
        else f"created run {run_id} ({status})"
    )
    if not args.wait:
        if args.json:
            print(dump({"workflow_run_id": run_id, "status": status, "created": not existing}))
        else:
            print(said)
        return 0
    if current is not None and current.is_terminal:
        if not args.json:
            print(said)
        return _ended(args, current, store.get_stages(run_id), store)
    if not args.json:
        print(f"{said if existing else f'created run {run_id}'}; running it here until it ends")
    return _wait(args, kernel, store, app, run_id)


def cmd_runs(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=False, reads_only=True)
    runs = store.list_runs(status=args.status, workflow_id=args.workflow, limit=args.limit)
    if args.json:
        print(dump(runs))
    elif not runs:
        print("no runs")
    else:
        print(runs_table(runs))
    return 0


def cmd_run_show(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=False, reads_only=True)
    run = find_run(store, args.run_id)
    stages = store.get_stages(run.id)
    history = store.get_outbox(run.id)
    events = history[-args.events :] if args.events else []
    logs = store.get_logs(run.id) if args.logs else []
    signals_sent = store.get_signals(run.id)
    if args.json:
        shown: dict[str, Any] = {
            "run": run,
            "stages": stages,
            "events": events,
            "signals": signals_sent,
        }
        if args.logs:
            shown["logs"] = logs
        print(dump(shown))
        return 0
    print(run_header(run, took=run_duration_text(run, history)))
    print()
    progress = latest_progress(history)
    notes = signal_waits(stages)
    print(stages_table(stages, progress=progress, notes=notes) if stages else no_stages(run))
    kept = kept_signals(signals_sent)
    if kept:
        print(kept)
    if events:
        print()
        print(f"last {len(events)} event(s)")
        print(events_table(events, indent="  "))
    if args.logs:
        print()
        names = {stage.id: stage.stage_id for stage in stages}
        rows = [
            [
                when(entry.created_at),
                str(entry.level),
                names.get(entry.stage_record_id or "", ""),
                entry.message,
                json.dumps(entry.metadata) if entry.metadata else "",
            ]
            for entry in logs
        ]
        print(table(["AT", "LEVEL", "STAGE", "MESSAGE", "META"], rows) if rows else "no logs")
    if args.traceback:
        print()
        print(tracebacks(run, stages, history))
    return 0


def cmd_run_cancel(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=False)
    run = find_run(store, args.run_id)
    kernel = create_kernel(store=store)
    if not kernel.dispatch(RunCancel(workflow_run_id=run.id, reason=args.reason)).cancelled:
        raise CliError(f"run {run.id} already ended ({run.status}): nothing to cancel")
    print(f"cancelled run {run.id}")
    return 0


def cmd_run_rerun(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=False)
    run = find_run(store, args.run_id)
    app, kernel = app_kernel(args, store)
    after = last_sequence(store, run.id)  # --wait shows the rerun's events only
    deleted = kernel.dispatch(
        RunRerunFrom(workflow_run_id=run.id, from_stage_id=args.from_stage)
    ).deleted_stages
    message = (
        f"run {run.id} runs again from stage {args.from_stage!r} (reset: {', '.join(deleted)})"
    )
    if args.json and not args.wait:
        print(dump({"workflow_run_id": run.id, "deleted_stages": deleted}))
    elif not args.json:
        print(message)
    return _wait(args, kernel, store, app, run.id, after) if args.wait else 0


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """``runs`` and ``run create|show|cancel|rerun|signal``."""
    statuses = [str(status) for status in Status]
    runs = commands.add_parser(
        "runs",
        parents=[common],
        help="list runs, newest first",
        description="List runs, newest first.",
    )
    runs.add_argument("--status", type=str.upper, choices=statuses, help="only runs in this status")
    runs.add_argument("--workflow", metavar="ID", help="only runs of this workflow")
    runs.add_argument("--limit", type=int, default=20, metavar="N", help="at most N runs (20)")
    runs.add_argument("--json", action="store_true", help="print JSON")
    runs.set_defaults(handler=cmd_runs)

    run = commands.add_parser("run", help="create, show, cancel, rerun or signal one run")
    actions = run.add_subparsers(dest="action", metavar="ACTION", required=True)

    create = actions.add_parser(
        "create",
        parents=[common],
        help="create a run (and with --wait, run it here)",
        description="Create a PENDING run; a worker picks it up (or this command, with --wait).",
    )
    create.add_argument("workflow", metavar="WORKFLOW", help="the workflow id")
    create.add_argument("--input", required=True, metavar="JSON", help="the run input (or @file)")
    create.add_argument("--config", metavar="JSON", help="config by stage id (or @file)")
    create.add_argument("--priority", type=int, default=5, help="higher runs first (5)")
    create.add_argument("--key", metavar="KEY", help="idempotency key: a replay creates nothing")
    create.add_argument(
        "--version",
        dest="workflow_version",
        metavar="VERSION",
        help="the workflow version to run (default: the newest the app registers)",
    )
    create_flag(create)
    _wait_flags(create)
    create.set_defaults(handler=cmd_run_create)

    show = actions.add_parser(
        "show",
        parents=[common],
        help="a run's stages, last events and logs",
        description="Show a run: its stages (status, attempt, duration, error) and last events.",
    )
    show.add_argument("run_id", metavar="RUN_ID", help="a run id, or a unique prefix of one")
    show.add_argument("--logs", action="store_true", help="also print the stages' logs")
    show.add_argument("--events", type=int, default=10, metavar="N", help="last N events (10)")
    show.add_argument(
        "--traceback",
        action="store_true",
        help="also print where the last failure happened (the failed stages' tracebacks)",
    )
    show.add_argument("--json", action="store_true", help="print JSON")
    show.set_defaults(handler=cmd_run_show)

    cancel = actions.add_parser(
        "cancel",
        parents=[common],
        help="cancel a run that has not ended",
        description="Cancel a run: its pending stages are cancelled and no more user code runs.",
    )
    cancel.add_argument("run_id", metavar="RUN_ID")
    cancel.add_argument("--reason", help="recorded in the workflow:cancelled event")
    cancel.set_defaults(handler=cmd_run_cancel)

    rerun = actions.add_parser(
        "rerun",
        parents=[common],
        help="run a finished run again from one stage",
        description="Re-run a COMPLETED or FAILED run from a stage's group onwards.",
    )
    rerun.add_argument("run_id", metavar="RUN_ID")
    rerun.add_argument("--from", dest="from_stage", required=True, metavar="STAGE")
    _wait_flags(rerun)
    rerun.set_defaults(handler=cmd_run_rerun)

    signals.add_parser(actions, common)


def _wait_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--app", metavar="MODULE:ATTR", help="the workflows ($WFK_APP)")
    parser.add_argument(
        "--wait",
        action="store_true",
        help="run it in this process with a live display; exit 0 only if it COMPLETED",
    )
    parser.add_argument("--timeout", type=float, metavar="SECONDS", help="give up waiting after")
    parser.add_argument("--json", action="store_true", help="print JSON")
