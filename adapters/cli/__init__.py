"""The ``wfk`` command line (SPEC §8): workers, runs, outbox and dead letters, schema, demo.

Every command takes ``--store URL`` (``sqlite:///path`` or ``postgresql://...``;
default ``$WFK_STORE``, else ``sqlite:///wfk.db``) and ``--debug``, before or
after the command name. Commands that need workflows take ``--app
MODULE:ATTR``. A problem the user can fix prints one line on stderr and exits
non-zero; ``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from adapters.cli import ops, runs
from adapters.cli.errors import CliError
from adapters.cli.stores import Stores
from adapters.runner import describe
from kernel.errors import KernelError

__all__ = ["main"]

EPILOG = """\
examples:
  wfk demo
  wfk worker --app myproject.workflows:registry --store sqlite:///app.db
  wfk run create document-pipeline --app adapters.demo:document_pipeline \\
      --input '{"title": "Hi", "text": "hello world"}' --wait
  wfk runs --status FAILED
  wfk run show 3f2a9c1e --logs
"""


def build_parser() -> argparse.ArgumentParser:
    """The ``wfk`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="wfk",
        description="workflow-kernel: run workers and inspect, create, cancel and re-run runs.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--store",
        metavar="URL",
        help="sqlite:///PATH or postgresql://... ($WFK_STORE, else sqlite:///wfk.db)",
    )
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``wfk`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    handler: Callable[[argparse.Namespace, Stores], int] = args.handler
    if not args.debug:
        # An unreachable PostgreSQL server makes the pool log every retry; the
        # command reports the failure itself, in one line.
        logging.getLogger("psycopg.pool").setLevel(logging.CRITICAL)
    stores = Stores()
    try:
        return handler(args, stores)
    except KeyboardInterrupt:
        print("wfk: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        if args.debug:
            raise
        print(f"wfk: {_message(exc)}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, CliError) else 1
    finally:
        stores.close_all()


def _message(exc: Exception) -> str:
    if isinstance(exc, CliError | KernelError | ValueError):
        return " ".join(str(exc).split())  # one line, whatever the message held
    if isinstance(exc, OSError):
        return describe(exc)
    return f"unexpected error: {describe(exc)} (run with --debug for the traceback)"
