"""``wfk purge --older-than 30d``: delete finished runs past their time (SPEC §16 "Retention").

Runs whose status is one of ``--status`` (default: every terminal one) and
that finished more than ``--older-than`` ago go with everything they own, in
transactions of ``--batch`` runs, until none is left; each batch prints a
line. A run whose outbox still holds an unpublished event stays. ``--dry-run``
deletes nothing and lists the runs the first batch would delete.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from adapters import create_kernel
from adapters.blobs import FileBlobStore
from adapters.cli.errors import CliError
from adapters.cli.inputs import shown
from adapters.cli.render import dump, table, when
from adapters.cli.stores import Stores, store_url
from kernel.commands import PURGEABLE, RunsPurge, RunsPurgeResult
from kernel.ports import Store
from kernel.status import Status

AGE = re.compile(r"(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?")

BATCH = 1000
"""Runs deleted per transaction unless ``--batch`` says otherwise."""


def parse_age(text: str) -> timedelta:
    """``--older-than``: ``30d``, ``12h``, ``90m``, ``45s``, ``1d12h`` (units in that order).

    >>> parse_age("30d"), parse_age("1d12h")
    (datetime.timedelta(days=30), datetime.timedelta(days=1, seconds=43200))

    Raises:
        CliError: anything else, or a duration of 0.
    """
    found = AGE.fullmatch(text.strip().lower())
    if text.strip() and found is not None:
        days, hours, minutes, seconds = (int(part or 0) for part in found.groups())
        age = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
        if age > timedelta(0):
            return age
    raise CliError(
        f"--older-than {shown(text)}: expected a duration > 0 such as 30d, 12h, 90m or 1d12h"
    )


def parse_statuses(given: Sequence[str] | None) -> tuple[Status, ...]:
    """``--status`` values as statuses (any case); none given: every terminal status.

    A status that is not terminal passes here: ``runs.purge`` refuses it, naming it.

    Raises:
        CliError: a word that is no status at all.
    """
    if not given:
        return PURGEABLE
    names = [status.value for status in Status]
    statuses: list[Status] = []
    for word in given:
        if word.upper() not in names:
            raise CliError(f"--status {shown(word)}: expected one of {', '.join(PURGEABLE)}")
        statuses.append(Status(word.upper()))
    return tuple(dict.fromkeys(statuses))


def _would_go(store: Store, result: RunsPurgeResult) -> str:
    """The runs a dry run found, one row each."""
    rows = []
    for run_id in result.run_ids:
        run = store.get_run(run_id)
        if run is not None:
            rows.append([run.id, run.workflow_id, run.status.value, when(run.completed_at)])
    return table(["ID", "WORKFLOW", "STATUS", "FINISHED"], rows)


def _dry_run(args: argparse.Namespace, store: Store, cmd: RunsPurge) -> int:
    result = create_kernel(store=store).dispatch(cmd)
    more = len(result.run_ids) >= cmd.limit
    if args.json:
        print(dump({**_shown(result, dry_run=True), "more": more}))
        return 0
    cutoff = when(result.finished_before)
    if not result.run_ids:
        print(f"dry run: no run to purge (none finished before {cutoff} UTC)")
        return 0
    count = f"{'at least ' if more else ''}{len(result.run_ids)}"
    print(f"dry run: {count} run(s) finished before {cutoff} UTC would be purged:")
    print(_would_go(store, result))
    if more:
        print(f"(the first {cmd.limit} are listed; --batch sets how many)")
    return 0


def _shown(result: RunsPurgeResult, *, dry_run: bool) -> dict[str, Any]:
    return {
        "dry_run": dry_run,
        "purged": result.purged,
        "run_ids": list(result.run_ids),
        "finished_before": result.finished_before,
    }


def cmd_purge(args: argparse.Namespace, stores: Stores) -> int:
    cmd = RunsPurge(
        older_than=parse_age(args.older_than),
        statuses=parse_statuses(args.status),
        limit=args.batch,
        dry_run=args.dry_run,
    )
    store = stores.open(store_url(args.store), create=False)
    if cmd.dry_run:
        return _dry_run(args, store, cmd)
    if args.blobs is not None and not Path(args.blobs).is_dir():
        raise CliError(f"--blobs {args.blobs!r}: no such directory", exit_code=2)
    # With --blobs, the purged runs' blobs go too (after each batch commits).
    blobs = FileBlobStore(args.blobs) if args.blobs is not None else None
    kernel = create_kernel(store=store, blobs=blobs)
    purged: list[str] = []
    while True:
        result = kernel.dispatch(cmd)
        purged.extend(result.run_ids)
        if result.purged and not args.json:
            print(f"purged {result.purged} run(s) ({len(purged)} so far)", flush=True)
        if result.purged < cmd.limit:
            break
    if args.json:
        total = RunsPurgeResult(
            purged=len(purged), run_ids=tuple(purged), finished_before=result.finished_before
        )
        print(dump(_shown(total, dry_run=False)))
        return 0
    cutoff = when(result.finished_before)
    if purged:
        print(f"done: {len(purged)} run(s) that finished before {cutoff} UTC purged")
    else:
        print(f"no run to purge (none finished before {cutoff} UTC)")
    return 0


def _batch(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {text!r}")
    return value


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """``purge --older-than AGE [--status S ...] [--batch N] [--dry-run] [--json]``."""
    purge = commands.add_parser(
        "purge",
        parents=[common],
        help="delete finished runs older than a given age, with everything they own",
        description="Delete runs that finished (COMPLETED, CANCELLED or FAILED) more than "
        "--older-than ago, with their stages, jobs, logs, events, usage rows, signals and "
        "stored values, in batches until none is left. A run never finishes while it is "
        "pending, running or waiting, so those are never touched; a run whose outbox still "
        "holds an unpublished (or dead-lettered) event stays until the event is published.",
    )
    purge.add_argument(
        "--older-than",
        metavar="AGE",
        required=True,
        help="finished longer ago than this: 30d, 12h, 90m, 45s, 1d12h",
    )
    purge.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help="only runs that ended so (repeat for several; default: all three)",
    )
    purge.add_argument(
        "--batch",
        type=_batch,
        default=BATCH,
        metavar="N",
        help=f"runs deleted per transaction (default {BATCH})",
    )
    purge.add_argument(
        "--dry-run", action="store_true", help="delete nothing: list the runs that would go"
    )
    purge.add_argument(
        "--blobs",
        metavar="DIR",
        help="the FileBlobStore directory the workers write large values to: the purged "
        "runs' blobs are deleted too (without it they stay for adapters.blobs.sweep)",
    )
    purge.add_argument("--json", action="store_true", help="print one JSON object at the end")
    purge.set_defaults(handler=cmd_purge)
