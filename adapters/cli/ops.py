"""``wfk worker``, ``wfk outbox``, ``wfk dlq replay``, ``wfk migrate`` and ``wfk demo``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import timedelta
from decimal import Decimal
from typing import Any

import attrs

from adapters import create_kernel
from adapters.cli.apps import app_spec, load_app
from adapters.cli.errors import CliError
from adapters.cli.live import default_worker_id, drive
from adapters.cli.render import dump, events_table, run_summary
from adapters.cli.stores import Stores, create_flag, redact, store_url, verify
from adapters.hosts import WorkerHost
from adapters.hosts.logs import CONTEXT_FIELDS
from adapters.hosts.worker import MAX_CHAIN, MAX_GROUP
from kernel.ai.ledger import UsageEntry
from kernel.commands import PluginReplayDLQ, RunCreate
from kernel.ports import AIProvider
from kernel.status import Status

DEMO_STORE = "sqlite:///.demo/demo.db"
DEMO_BUDGET = Decimal("0.05")
"""The most one demo run may spend on model calls, in US dollars."""


class ContextFormatter(logging.Formatter):
    """``time level logger: message [worker=... run=... stage=...]`` for any record."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = [
            f"{name.removesuffix('_id').removeprefix('workflow_')}={value}"
            for name in CONTEXT_FIELDS
            if (value := getattr(record, name, None)) is not None
        ]
        return f"{text} [{' '.join(context)}]" if context else text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, with the host's context fields."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "at": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                entry[name] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def configure_logging(level: str, as_json: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter()
        if as_json
        else ContextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    logging.basicConfig(level=level, handlers=[handler], force=True)


def seconds(value: str) -> timedelta:
    """An argparse type: positive seconds as a timedelta."""
    parsed = _seconds(value)
    if parsed <= timedelta(0):
        raise argparse.ArgumentTypeError(f"expected seconds > 0, got {value!r}")
    return parsed


def seconds_or_zero(value: str) -> timedelta:
    """An argparse type: seconds >= 0 as a timedelta."""
    parsed = _seconds(value)
    if parsed < timedelta(0):
        raise argparse.ArgumentTypeError(f"expected seconds >= 0, got {value!r}")
    return parsed


def positive_int(value: str) -> int:
    """An argparse type: an int >= 1."""
    try:
        parsed = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {value!r}") from None
    if parsed < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, got {value!r}")
    return parsed


def _seconds(value: str) -> timedelta:
    try:
        return timedelta(seconds=float(value))
    except (ValueError, OverflowError):
        raise argparse.ArgumentTypeError(f"expected seconds, got {value!r}") from None


def cmd_worker(args: argparse.Namespace, stores: Stores) -> int:
    app = load_app(app_spec(args.app))
    url = store_url(args.store)
    store = stores.open(url, create=args.create, offers_create=True, pool_size=args.concurrency + 2)
    verify(store)  # an unusable database fails here, before the worker says it started
    configure_logging("DEBUG" if args.debug else args.log_level, args.log_json)
    kernel = create_kernel(
        *app.workflows,
        store=store,
        plugins=app.plugins,
        ai=app.ai,
        batch_providers=app.batch_providers,
        blobs=app.blobs,
    )
    host = WorkerHost(
        kernel,
        kernel.store,  # with a blob store, the store that loads values
        worker_id=args.worker_id or default_worker_id(),
        concurrency=args.concurrency,
        orchestration_interval=args.tick,
        job_poll_interval=args.poll,
        stale_lease_threshold=args.stale_lease,
        lease_renew_interval=args.lease_renew,
        drain_timeout=args.drain,
        max_chain=args.chain,
        max_group=args.group,
    )
    print(
        f"wfk worker {host.worker_id} on {redact(url)}: {app.served()}; SIGTERM or Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    stats = host.run_forever()
    print(
        f"wfk worker {host.worker_id} stopped: {stats.jobs_processed} job(s), "
        f"{stats.ticks} tick(s), up {stats.uptime}",
        file=sys.stderr,
    )
    return 0


def cmd_outbox(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=False, reads_only=True)
    events = store.get_outbox()
    dead = [event for event in events if event.dlq_at is not None]
    published = sum(1 for event in events if event.published_at is not None)
    counts = {
        "pending": len(events) - published - len(dead),
        "published": published,
        "dead_lettered": len(dead),
    }
    if args.json:
        print(dump({**counts, "dead_letters": dead}))
        return 0
    for name, count in counts.items():
        print(f"{name.replace('_', '-'):<14}{count}")
    if dead:
        print()
        print("dead-lettered (replay them with `wfk dlq replay`):")
        print(events_table(dead, indent="  "))
    return 0


def cmd_dlq_replay(args: argparse.Namespace, stores: Stores) -> int:
    store = stores.open(store_url(args.store), create=False)
    replayed = create_kernel(store=store).dispatch(PluginReplayDLQ(max_events=args.max)).replayed
    print(
        f"replayed {replayed} dead-lettered event(s): a worker's next outbox flush publishes them"
    )
    return 0


def cmd_migrate(args: argparse.Namespace, stores: Stores) -> int:
    url = store_url(args.store)
    store = stores.open(url, create=True)
    migrate = getattr(store, "migrate", None)
    if callable(migrate):
        version = int(migrate())
    else:  # SqliteStore migrates when it opens
        from adapters.sqlite.schema import LATEST_VERSION

        version = LATEST_VERSION
    print(f"{redact(url)}: schema at version {version}")
    return 0


DEMO_KEYS = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
"""The environment variable each real provider of ``wfk demo --provider`` needs."""


def demo_provider(name: str) -> AIProvider:
    """The provider ``wfk demo --provider NAME`` calls; real ones are imported only here.

    Raises:
        CliError: a real provider without its API key in the environment.
    """
    from adapters.demo import OfflineModel

    if name == "offline":
        return OfflineModel()
    key = DEMO_KEYS[name]
    if not os.environ.get(key):
        raise CliError(
            f"--provider {name} calls the real {name} API: set {key} first "
            "(or leave --provider out to run the offline model)",
            exit_code=2,
        )
    if name == "openai":
        from adapters.ai.openai import OpenAIProvider

        return OpenAIProvider()
    from adapters.ai.anthropic import AnthropicProvider

    return AnthropicProvider()


def ai_line(entries: Sequence[UsageEntry]) -> str:
    """What a run's model calls used and cost, from its ledger rows."""
    tokens = sum(entry.usage.total_tokens for entry in entries)
    cost = sum((entry.cost for entry in entries), Decimal(0))
    calls = f"{len(entries)} call{'' if len(entries) == 1 else 's'}"
    return f"  ai: {calls}, {tokens} tokens, ${cost.normalize():f}"


def cmd_demo(args: argparse.Namespace, stores: Stores) -> int:
    from adapters.demo import (
        DEMO_MODELS,
        SAMPLE_DOCUMENTS,
        demo_ai,
        demo_run_config,
        document_pipeline,
    )

    url = args.store or DEMO_STORE
    if not url.startswith("sqlite:"):
        raise CliError(
            f"the demo runs on SQLite: expected --store sqlite:///PATH, got {redact(url)}"
        )
    provider = demo_provider(args.provider)
    store = stores.open(url, create=True)
    kernel = create_kernel(document_pipeline, store=store, ai=demo_ai(provider))
    print(f"document pipeline demo on {url}: {len(SAMPLE_DOCUMENTS)} documents")
    print(f"extract → (classify ∥ summarize) → merge, asking {DEMO_MODELS[args.provider]}")
    print()
    run_ids = [
        kernel.dispatch(
            RunCreate(
                workflow_id=document_pipeline.id,
                input=attrs.asdict(document),
                config=demo_run_config(args.provider),
                budget=DEMO_BUDGET,
            )
        ).workflow_run_id
        for document in SAMPLE_DOCUMENTS
    ]
    views = drive(kernel, store, run_ids, out=sys.stdout, workflows=[document_pipeline])
    print()
    for view in views:
        print(run_summary(view.run, view.stages))
        print(ai_line(store.get_usage(view.run.id)))
    completed = sum(1 for view in views if view.run.status == Status.COMPLETED)
    print()
    print(
        f"{completed} of {len(views)} runs completed; inspect one with `wfk run show RUN_ID "
        f"--store {url}`"
    )
    return 0 if completed == len(views) else 1


def add_parsers(commands: Any, common: argparse.ArgumentParser) -> None:
    """``worker``, ``outbox``, ``dlq replay``, ``migrate`` and ``demo``."""
    worker = commands.add_parser(
        "worker",
        parents=[common],
        help="run a worker until SIGTERM or Ctrl-C",
        description="Run orchestration ticks and job slots for an app's workflows until "
        "SIGTERM or Ctrl-C; then drain running jobs and exit 0.",
    )
    worker.add_argument("--app", metavar="MODULE:ATTR", help="the workflows ($WFK_APP)")
    worker.add_argument("--worker-id", metavar="ID", help="default: wfk-HOST-PID")
    worker.add_argument("--concurrency", type=int, default=4, metavar="N", help="job slots (4)")
    worker.add_argument(
        "--poll",
        type=seconds,
        default=timedelta(milliseconds=200),
        metavar="SECONDS",
        help="idle slots look for jobs this often (0.2)",
    )
    worker.add_argument(
        "--tick",
        type=seconds,
        default=timedelta(seconds=1),
        metavar="SECONDS",
        help="orchestration tick interval (1)",
    )
    worker.add_argument(
        "--stale-lease",
        type=seconds,
        default=timedelta(seconds=60),
        metavar="SECONDS",
        help="reap leases not renewed for this long (60)",
    )
    worker.add_argument(
        "--lease-renew",
        type=seconds,
        default=timedelta(seconds=15),
        metavar="SECONDS",
        help="renew running jobs' leases this often (15)",
    )
    worker.add_argument(
        "--drain",
        type=seconds_or_zero,
        default=timedelta(seconds=30),
        metavar="SECONDS",
        help="on stop, wait this long for running jobs (30)",
    )
    worker.add_argument(
        "--chain",
        type=positive_int,
        default=MAX_CHAIN,
        metavar="N",
        help=f"jobs a slot runs back to back, each leased by the last one's finish ({MAX_CHAIN})",
    )
    worker.add_argument(
        "--group",
        type=positive_int,
        default=MAX_GROUP,
        metavar="N",
        help=f"jobs a slot leases and commits per transaction while stages are quick ({MAX_GROUP})",
    )
    worker.add_argument(
        "--log-level", type=str.upper, default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"]
    )
    worker.add_argument("--log-json", action="store_true", help="log one JSON object per line")
    create_flag(worker)
    worker.set_defaults(handler=cmd_worker)

    outbox = commands.add_parser(
        "outbox",
        parents=[common],
        help="pending, published and dead-lettered event counts",
        description="Count outbox events by delivery state and list the dead-lettered ones.",
    )
    outbox.add_argument("--json", action="store_true", help="print JSON")
    outbox.set_defaults(handler=cmd_outbox)

    dlq = commands.add_parser("dlq", help="the dead-letter queue")
    dlq_actions = dlq.add_subparsers(dest="action", metavar="ACTION", required=True)
    replay = dlq_actions.add_parser(
        "replay",
        parents=[common],
        help="give dead-lettered events another chance",
        description="Reset dead-lettered events so the next outbox flush retries them.",
    )
    replay.add_argument("--max", type=int, default=100, metavar="N", help="at most N events (100)")
    replay.set_defaults(handler=cmd_dlq_replay)

    migrate = commands.add_parser(
        "migrate",
        parents=[common],
        help="create or upgrade the store's schema",
        description="Create the store's tables, or upgrade them to this version's schema.",
    )
    migrate.set_defaults(handler=cmd_migrate)

    demo = commands.add_parser(
        "demo",
        parents=[common],
        help="run the document pipeline demo on SQLite",
        description="Run the document pipeline on three sample documents with a live display "
        f"(store: {DEMO_STORE} unless --store is given).",
    )
    demo.add_argument(
        "--provider",
        choices=["offline", *DEMO_KEYS],
        default="offline",
        help="the model classify and summarize ask: an offline stand-in (default), or a real "
        "one (needs OPENAI_API_KEY or ANTHROPIC_API_KEY; costs a fraction of a cent)",
    )
    demo.set_defaults(handler=cmd_demo)
