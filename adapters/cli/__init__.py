"""The ``wfk`` command line (SPEC §8): workers, runs, signals, schedules, usage, outbox and
letters, schema, demo.

Every command takes ``--store URL`` (``sqlite:///path`` or ``postgresql://...``;
default ``$WFK_STORE``, else ``sqlite:///wfk.db``) and ``--debug``, before or
after the command name. Commands that need workflows take ``--app
MODULE:ATTR``. A problem the user can fix prints one line on stderr and exits
non-zero; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from importlib import metadata

from adapters.cli import ops, purge, runs, schedules, ui, usage
from adapters.cli.errors import CliError
from adapters.cli.stores import Stores, command_name, hide_password, store_url
from adapters.runner import describe
from kernel.errors import KernelError, StoreError

__all__ = ["main"]

CLOSED_PIPE = 141
"""The exit code when stdout's reader went away: 128 + SIGPIPE, as for other Unix tools."""

EPILOG = """\
examples:
  wfk demo
  wfk worker --app myproject.workflows:registry --store sqlite:///app.db
  wfk run create document-pipeline --app adapters.demo:document_pipeline \\
      --input '{"title": "Hi", "text": "hello world"}' --wait
  wfk runs --status FAILED
  wfk run show 3f2a9c1e --logs
  wfk usage 3f2a9c1e
  wfk run signal 3f2a9c1e approval --app myproject.workflows:registry \\
      --payload '{"approved": true, "by": "ann"}'
  wfk schedule add nightly --workflow report --cron '0 3 * * *' --tz Europe/Riga \\
      --app myproject.workflows:registry
  wfk purge --older-than 30d --dry-run
"""


COMMANDS = "wfk.commands"
"""The entry point group of commands other packages add to ``wfk``: each names a
function ``add_parser(commands, common)`` (``testing.simulate.cli:add_parser``)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``wfk`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="wfk",
        description="workflow-kernel: run workers; inspect, create, cancel, re-run and signal "
        "runs; start workflows on schedules.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="sqlite:///PATH or postgresql://... ($WFK_STORE, else sqlite:///wfk.db)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("--version", action="version", version=f"wfk {version()}")
    # The same options after the command name; SUPPRESS keeps a value given
    # before the command from being reset by the subparser's default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", metavar="URL", default=argparse.SUPPRESS, help="the store URL")
    common.add_argument(
        "--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    ops.add_parsers(commands, common)
    runs.add_parsers(commands, common)
    schedules.add_parsers(commands, common)
    usage.add_parser(commands, common)
    purge.add_parser(commands, common)
    ui.add_parser(commands, common)
    for found in metadata.entry_points(group=COMMANDS):
        # Commands other packages add: the testing kit's `wfk sim` (SPEC §17).
        found.load()(commands, common)
    return parser


def version() -> str:
    """The installed ``workflow-kernel`` version (``unknown`` when it is not installed)."""
    try:
        return metadata.version("workflow-kernel")
    except metadata.PackageNotFoundError:
        return "unknown (workflow-kernel is not installed; running from a source tree)"


def _closed_stdout() -> int:
    """The reader of stdout went away (``| head``): stop quietly, as ``cat`` would.

    What is still buffered goes to ``/dev/null``, so flushing at exit raises
    nothing either. Returns 141 (128 + SIGPIPE), the status a shell shows
    for a pipe's writer whose reader quit.
    """
    with suppress(OSError, ValueError):  # no file descriptor behind stdout (a test's capture)
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return CLOSED_PIPE


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``wfk`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        try:
            args = parser.parse_args(argv)
        except SystemExit as exit_:  # --help, or a usage error argparse already printed
            sys.stdout.flush()
            return exit_.code if isinstance(exit_.code, int) else 2
    except BrokenPipeError:  # wfk --help | head -1
        return _closed_stdout()
    handler: Callable[[argparse.Namespace, Stores], int] = args.handler
    if not args.debug:
        # An unreachable PostgreSQL server makes the pool log every retry; the
        # command reports the failure itself, in one line.
        logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
        logging.getLogger("psycopg").setLevel(logging.ERROR)
    stores = Stores()
    try:
        code = handler(args, stores)
        sys.stdout.flush()  # a reader that went away shows here, not at exit
        return code
    except BrokenPipeError:  # wfk run show RUN | head -1
        return _closed_stdout()
    except KeyboardInterrupt:
        print("wfk: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"wfk: {_message(exc, args)}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, CliError) else 1
    finally:
        stores.close_all()


def _message(exc: Exception, args: argparse.Namespace) -> str:
    if isinstance(exc, StoreError):
        # The database failed while the command worked: say which command.
        text = " ".join(str(exc).split())
        return hide_password(f"{command_name(args)}: {text}", store_url(args.store))
    if isinstance(exc, CliError | KernelError | ValueError):
        return " ".join(str(exc).split())  # one line, whatever the message held
    if isinstance(exc, OSError):
        return describe(exc)
    return f"unexpected error: {describe(exc)} (run with --debug for the traceback)"
