"""``wfk sim --app MODULE:ATTR --seeds 0..999``: simulate an app's workflows on many
seeds (SPEC §17), with a progress bar on a terminal.

The command belongs to the testing kit, a layer above ``adapters``: ``wfk`` finds
it through the ``wfk.commands`` entry point group (``pyproject.toml``), so the
command line itself never imports the testing layer.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from adapters.cli.apps import app_spec, load_app
from adapters.cli.errors import CliError
from adapters.cli.stores import Stores
from testing.simulate.seeds import load_inputs, parse_seeds, run_seeds


def cmd_sim(args: argparse.Namespace, stores: Stores) -> int:
    app = load_app(app_spec(args.app))
    try:
        seeds = parse_seeds(args.seeds)
        options: dict[str, Any] = {"runs": args.runs, "workers": args.workers, "steps": args.steps}
        if args.inputs is not None:
            options["inputs"] = load_inputs(args.inputs)
    except ValueError as exc:
        raise CliError(str(exc), exit_code=2) from exc
    with _progress(len(seeds), args.quiet) as advance:
        try:
            done = run_seeds(app.workflows, seeds, progress=advance, **options)
        except TypeError as exc:  # simulate: a workflow needs inputs
            raise CliError(f"{exc} (wfk sim: pass --inputs MODULE:ATTR)", exit_code=2) from exc
    if done.failure is not None:
        print(str(done.failure), file=sys.stderr)
        if args.save is not None:
            done.failure.save(args.save)
            print(f"saved the shrunk schedule to {args.save}", file=sys.stderr)
    print(done.summary(args.runs, args.workers))
    return 1 if done.failure is not None else 0


@contextmanager
def _progress(total: int, quiet: bool) -> Iterator[Callable[[int], None]]:
    """A rich progress bar on a terminal (when rich is installed); else silence."""
    if quiet or not sys.stdout.isatty():
        yield lambda seed: None
        return
    try:
        from rich.progress import Progress
    except ImportError:  # the cli extra is not installed
        yield lambda seed: None
        return
    with Progress(transient=True) as bar:
        task = bar.add_task("simulating", total=total)
        yield lambda seed: bar.update(task, advance=1, description=f"seed {seed}")


def add_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    """``sim --app MODULE:ATTR --seeds 0..999``."""
    sim = commands.add_parser(
        "sim",
        parents=[common],
        help="simulate an app's workflows on many seeds, with crashes and other faults",
        description="Run the deterministic simulation (testing.simulate) of the app's "
        "workflows on each seed: virtual workers, injected faults, invariants checked after "
        "every step. Stops at the first failing seed, prints its shrunk schedule and exits 1. "
        "Uses no store.",
    )
    sim.add_argument("--app", metavar="MODULE:ATTR", help="the workflows ($WFK_APP)")
    sim.add_argument(
        "--seeds", default="0..99", metavar="FIRST..LAST", help="the seeds (default 0..99)"
    )
    sim.add_argument(
        "--inputs",
        metavar="MODULE:ATTR",
        help="a callable (rng, workflow) -> input, needed when an input has required fields",
    )
    sim.add_argument("--runs", type=_positive, default=20, help="runs per seed (20)")
    sim.add_argument("--workers", type=_positive, default=3, help="virtual workers (3)")
    sim.add_argument("--steps", type=_positive, default=2000, help="steps with faults (2000)")
    sim.add_argument(
        "--save", type=Path, metavar="PATH", help="write a failure's shrunk schedule here"
    )
    sim.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(handler=cmd_sim)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}")
    return int(text)
