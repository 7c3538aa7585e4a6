"""Large payloads benchmark: 3-stage runs whose stages each pass a 5 MB output on.

For each store, the same runs twice: ``inline`` (no blob store: every value in
the database, as before blobs existed) and ``blobs`` (a ``FileBlobStore`` in a
temporary directory, default ``inline_limit`` of 256 KiB). A run is
create → claim → three stages → flush; each stage returns a new text of
``--mb`` megabytes of base64 (random, so PostgreSQL's compression cannot hide
the size). Prints time per run, the bytes the database holds per run (the JSON
columns of runs, stored values and outbox, and the whole database on disk) and
the bytes in the blob directory.

    .venv/bin/python bench/blobs.py                       # sqlite and postgres, 3 runs
    .venv/bin/python bench/blobs.py --stores sqlite --runs 5 --mb 5
"""

from __future__ import annotations

import argparse
import base64
import os
import platform
import sqlite3
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import attrs

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from adapters import create_kernel
from adapters.blobs import FileBlobStore
from kernel import (
    OutboxFlush,
    RunClaimPending,
    RunCreate,
    StageContext,
    Status,
    WorkflowBuilder,
    define_stage,
)
from kernel.ports import Store
from testing.sinks import CollectingEventSink

DSN = os.environ.get("WFK_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")


@attrs.frozen
class Size:
    megabytes: float


@attrs.frozen
class Text:
    text: str


@attrs.frozen
class NoConfig:
    pass


def _random_text(megabytes: float) -> str:
    return base64.b64encode(os.urandom(int(megabytes * 1_000_000 * 3 / 4))).decode()


def _first(ctx: StageContext[Size, NoConfig]) -> Text:
    return Text(_random_text(ctx.input.megabytes))


def _next(ctx: StageContext[Text, NoConfig]) -> Text:
    return Text(_random_text(len(ctx.input.text) / 1_000_000))


WORKFLOW = (
    WorkflowBuilder("big", "Big", "three stages passing large texts", input=Size, output=Text)
    .pipe(define_stage(id="a", name="A", input=Size, output=Text, config=NoConfig, execute=_first))
    .pipe(define_stage(id="b", name="B", input=Text, output=Text, config=NoConfig, execute=_next))
    .pipe(define_stage(id="c", name="C", input=Text, output=Text, config=NoConfig, execute=_next))
    .build()
)


def _make_store(kind: str, workdir: Path) -> tuple[Store, Callable[[], dict[str, int]]]:
    """The store, and a function measuring the bytes it holds (call it after the runs)."""
    if kind == "sqlite":
        from adapters.sqlite import SqliteStore

        path = workdir / "bench.db"
        store = SqliteStore(path)

        def sqlite_sizes() -> dict[str, int]:
            store.close()
            with sqlite3.connect(path) as conn:
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                rows = conn.execute(
                    "SELECT (SELECT coalesce(sum(length(input) + coalesce(length(output), 0)), 0)"
                    " FROM runs) + (SELECT coalesce(sum(length(value)), 0) FROM blobs)"
                    " + (SELECT coalesce(sum(length(payload)), 0) FROM outbox)"
                ).fetchone()[0]
            return {"rows": rows, "database": path.stat().st_size}

        return store, sqlite_sizes
    if kind == "postgres":
        from psycopg import connect

        from adapters.postgres import PostgresStore

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        pg = PostgresStore(DSN, schema=schema)

        def postgres_sizes() -> dict[str, int]:
            with connect(DSN, autocommit=True) as conn:
                rows = conn.execute(
                    f"SELECT (SELECT coalesce(sum(pg_column_size(input) "
                    f"+ coalesce(pg_column_size(output), 0)), 0) FROM {schema}.runs)"
                    f" + (SELECT coalesce(sum(pg_column_size(value)), 0) FROM {schema}.blobs)"
                    f" + (SELECT coalesce(sum(pg_column_size(payload)), 0) FROM {schema}.outbox)"
                ).fetchone()
                total = conn.execute(
                    "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                    " JOIN pg_namespace n ON n.oid = c.relnamespace"
                    " WHERE n.nspname = %s AND c.relkind = 'r'",
                    (schema,),
                ).fetchone()
            pg.drop_schema()
            pg.close()
            return {"rows": int(rows[0]) if rows else 0, "database": int(total[0]) if total else 0}

        return pg, postgres_sizes
    raise SystemExit(f"--stores: expected sqlite or postgres, got {kind!r}")


def _bench(kind: str, mode: str, runs: int, megabytes: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="wfk-blobs-") as tmp:
        workdir = Path(tmp)
        store, sizes = _make_store(kind, workdir)
        blobs = FileBlobStore(workdir / "blobs") if mode == "blobs" else None
        kernel = create_kernel(WORKFLOW, store=store, sink=CollectingEventSink(), blobs=blobs)
        start = time.perf_counter()
        for _ in range(runs):
            kernel.dispatch(RunCreate(workflow_id="big", input={"megabytes": megabytes}))
            kernel.dispatch(RunClaimPending(worker_id="w"))
            while kernel.execute_jobs("w", max_jobs=10):
                pass
            kernel.dispatch(OutboxFlush(max_events=100))
        elapsed = time.perf_counter() - start
        completed = len(kernel.store.list_runs(status=Status.COMPLETED, limit=runs + 1))
        assert completed == runs, f"{completed} of {runs} runs completed"
        held = sizes()
        on_disk = sum(p.stat().st_size for p in (workdir / "blobs").rglob("*") if p.is_file())
    return {
        "ms_per_run": elapsed / runs * 1000,
        "rows_mb_per_run": held["rows"] / runs / 1e6,
        "db_mb": held["database"] / 1e6,
        "blob_mb_per_run": on_disk / runs / 1e6 if blobs is not None else 0.0,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mb", type=float, default=5.0, help="megabytes each stage outputs")
    args = parser.parse_args(argv)
    print(f"{platform.platform()}, {platform.python_version()}, {os.cpu_count()} CPUs")
    print(f"{args.runs} runs of 3 stages, each stage output {args.mb:g} MB\n")
    header = f"{'store':<9} {'mode':<7} {'ms/run':>8} {'rows MB/run':>12} {'DB MB':>8}"
    print(header + f" {'blob MB/run':>12}")
    for kind in args.stores.split(","):
        for mode in ("inline", "blobs"):
            r = _bench(kind, mode, args.runs, args.mb)
            print(
                f"{kind:<9} {mode:<7} {r['ms_per_run']:>8.0f} {r['rows_mb_per_run']:>12.3f}"
                f" {r['db_mb']:>8.1f} {r['blob_mb_per_run']:>12.1f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
