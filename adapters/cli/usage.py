"""``wfk usage RUN_ID``: a run's usage ledger, one row per paid provider call (SPEC §11)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from adapters.cli.inputs import find_run
from adapters.cli.render import cost, dump, run_usage, table, when
from adapters.cli.stores import Stores, store_url
from kernel.ai.ledger import UsageEntry
from kernel.records import WorkflowRun

HEADERS = [
    "AT",
    "STAGE",
    "ATTEMPT",
    "MODEL",
    "KIND",
    "IN",
    "CACHED",
    "OUT",
    "REASONING",
    "COST",
    "NOTE",
]


def totals(entries: Sequence[UsageEntry]) -> dict[str, Any]:
    """The ledger's sums: calls, each kind of token, cost (a ``Decimal``)."""
    return {
        "calls": len(entries),
        "input_tokens": sum(entry.usage.input_tokens for entry in entries),
        "cached_input_tokens": sum(entry.usage.cached_input_tokens for entry in entries),
        "output_tokens": sum(entry.usage.output_tokens for entry in entries),
        "reasoning_tokens": sum(entry.usage.reasoning_tokens for entry in entries),
        "cost": sum((entry.cost for entry in entries), Decimal(0)),
    }


def note(entry: UsageEntry) -> str:
    """``unpriced`` for a call to a model missing from the price table, then the entry's note."""
    words = [] if entry.priced else ["unpriced"]
    if entry.note:
        words.append(entry.note)
    return "; ".join(words)


def ledger_table(entries: Sequence[UsageEntry]) -> str:
    """One row per call, in record order, and a ``total`` row."""
    rows = [
        [
            when(entry.recorded_at),
            entry.stage_id,
            str(entry.attempt),
            entry.model,
            entry.kind,
            str(entry.usage.input_tokens),
            str(entry.usage.cached_input_tokens),
            str(entry.usage.output_tokens),
            str(entry.usage.reasoning_tokens),
            cost(entry.cost),
            note(entry),
        ]
        for entry in entries
    ]
    sums = totals(entries)
    calls = f"{sums['calls']} call" + ("" if sums["calls"] == 1 else "s")
    rows.append(
        [
            "total",
            calls,
            "",
            "",
            "",
            str(sums["input_tokens"]),
            str(sums["cached_input_tokens"]),
            str(sums["output_tokens"]),
            str(sums["reasoning_tokens"]),
            cost(sums["cost"]),
            "",
        ]
    )
    return table(HEADERS, rows)


def _shown(run: WorkflowRun, entries: Sequence[UsageEntry]) -> dict[str, Any]:
    """``--json``: the entries, their totals, the run's spend and budget (money as strings)."""
    return {
        "workflow_run_id": run.id,
        "usage": list(entries),
        "total": totals(entries),
        "run_total_cost": run.total_cost,
        "budget": run.budget,
    }


def cmd_usage(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=False, reads_only=True)
    run = find_run(store, args.run_id)
    entries = store.get_usage(run.id)
    if args.json:
        print(dump(_shown(run, entries)))
        return 0
    if not entries:
        print(f"no AI calls recorded for run {run.id}")
    else:
        print(ledger_table(entries))
    spent = run_usage(run)
    if spent is not None:
        # The run's own figures: the ledger plus what its stages reported themselves.
        print(f"run {run.id}: {spent}")
    return 0


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """``usage RUN_ID``."""
    usage = commands.add_parser(
        "usage",
        parents=[common],
        help="a run's AI calls: tokens and cost of each, and the total",
        description="List the usage ledger of a run: every paid provider call in the order "
        "it was recorded (time, stage, attempt, model, kind, tokens in/cached/out/reasoning, "
        "cost, unpriced or noted calls), then the totals and the run's cost and budget.",
    )
    usage.add_argument("run_id", metavar="RUN_ID", help="a run id, or a unique prefix of one")
    usage.add_argument("--json", action="store_true", help="print JSON (money as strings)")
    usage.set_defaults(handler=cmd_usage)
