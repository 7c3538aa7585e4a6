"""``wfk run signal``: send a signal to a run (SPEC §13).

The signal stage of the run waiting for it completes with the payload (and
the run goes on with any worker); with none waiting yet, the run keeps the
signal for the first one that will. The payload is checked against the
signal stage's output type, so the command needs the app (``--app`` or
``$WFK_APP``).
"""

from __future__ import annotations

import argparse
from typing import Any

from adapters.cli.inputs import app_kernel, find_run, parse_json, registered
from adapters.cli.render import dump
from adapters.cli.stores import Stores, store_url
from kernel.commands import RunSignal


def cmd_run_signal(args: argparse.Namespace, stores: Stores) -> int:
    payload = parse_json(args.payload, "--payload", quote=True)
    store = stores.open(store_url(args.store), create=False)
    run = find_run(store, args.run_id)
    app, kernel = app_kernel(args, store)
    registered(app, run.workflow_id, what=f"run {run.id}")
    result = kernel.dispatch(RunSignal(run.id, args.name, payload, idempotency_key=args.key))
    if args.json:
        print(
            dump(
                {
                    "workflow_run_id": run.id,
                    "signal": args.name,
                    "delivered": result.delivered,
                    "buffered": result.buffered,
                }
            )
        )
    elif result.delivered:
        print(f"signal {args.name!r} delivered to run {run.id}")
    else:
        print(f"signal {args.name!r} buffered on run {run.id} (no stage waits for it yet)")
    return 0


def add_parser(actions: Any, common: argparse.ArgumentParser) -> None:
    """``run signal`` (``actions``: the ``run`` command's subparsers)."""
    signal = actions.add_parser(
        "signal",
        parents=[common],
        help="send a signal to a run's signal stage",
        description="Send the signal NAME to a run: the signal stage waiting for it completes "
        "with the payload; with none waiting yet, the run keeps the signal for the first that "
        "will.",
    )
    signal.add_argument("run_id", metavar="RUN_ID", help="a run id, or a unique prefix of one")
    signal.add_argument("name", metavar="NAME", help="the signal's name")
    signal.add_argument(
        "--payload",
        required=True,
        metavar="JSON",
        help="the signal's payload (or @file), checked against the signal stage's output type",
    )
    signal.add_argument("--key", metavar="KEY", help="idempotency key: a replay sends nothing")
    signal.add_argument("--app", metavar="MODULE:ATTR", help="the workflows ($WFK_APP)")
    signal.add_argument("--json", action="store_true", help="print JSON")
    signal.set_defaults(handler=cmd_run_signal)
