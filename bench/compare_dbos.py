"""The same measurement with DBOS, for comparison (not a project dependency).

N workflows of three no-op steps: steps/s. By default on a SQLite system
database in one process, the workflows called directly one after another,
or (``--queued``) enqueued on a DBOS queue and executed by its workers, which
is what workflow-kernel's claim/lease cycle does. With ``--postgres DSN`` the
system database is a database of its own on that server (``wfk_dbos_bench``,
created by DBOS, dropped afterwards) and ``--threads`` threads (default 4)
call the workflows directly, side by side.

Run it in a separate virtualenv (``make bench`` makes ``.bench-dbos/``):

    python3 -m venv .bench-dbos && .bench-dbos/bin/pip install dbos==3.4.0
    .bench-dbos/bin/python bench/compare_dbos.py --runs 500
    .bench-dbos/bin/python bench/compare_dbos.py --runs 1000 \\
        --postgres postgresql://postgres@127.0.0.1:5432/test
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

DATABASE = "wfk_dbos_bench"
"""The database DBOS keeps its system tables in, with ``--postgres``."""


def _drop_database(dsn: str) -> None:
    import psycopg  # a dependency of DBOS

    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")


@contextmanager
def _system_database(postgres: str | None) -> Iterator[str]:
    """The URL of DBOS's system database: a SQLite file, or a fresh PostgreSQL database."""
    if postgres is None:
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{tmp}/dbos.sqlite"
        return
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(postgres)
    user = info.get("user", "postgres")
    password = f":{info['password']}" if info.get("password") else ""
    host, port = info.get("host", "127.0.0.1"), info.get("port", 5432)
    _drop_database(make_conninfo(postgres))
    try:
        yield f"postgresql://{user}{password}@{host}:{port}/{DATABASE}"
    finally:
        _drop_database(make_conninfo(postgres))


def _call_directly(workflow: Callable[[int], int], runs: int, threads: int) -> None:
    if threads == 1:
        for i in range(runs):
            workflow(i)
        return

    def share(first: int) -> None:
        for i in range(first, runs, threads):
            workflow(i)

    with ThreadPoolExecutor(threads) as pool:
        for done in [pool.submit(share, first) for first in range(threads)]:
            done.result()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument(
        "--queued", action="store_true", help="enqueue the workflows on a DBOS queue"
    )
    parser.add_argument(
        "--postgres", metavar="DSN", help="system database on this PostgreSQL server"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="threads calling workflows directly (default: 4 with --postgres, else 1)",
    )
    args = parser.parse_args(argv)
    threads = args.threads or (4 if args.postgres else 1)
    from dbos import DBOS  # type: ignore[import-not-found, unused-ignore]

    with _system_database(args.postgres) as url:
        config: Any = {"name": "bench", "system_database_url": url}
        DBOS(config=config)

        @DBOS.step()  # type: ignore[untyped-decorator, unused-ignore]
        def step(value: int) -> int:
            return value

        @DBOS.workflow()  # type: ignore[untyped-decorator, unused-ignore]
        def three_steps(value: int) -> int:
            return int(step(step(step(value))))

        DBOS.launch()
        queue = DBOS.register_queue("bench", worker_concurrency=4) if args.queued else None
        start = time.perf_counter()
        if queue is not None:
            handles = [queue.enqueue(three_steps, i) for i in range(args.runs)]
            for handle in handles:
                handle.get_result()
        else:
            _call_directly(three_steps, args.runs, threads)
        elapsed = time.perf_counter() - start
        DBOS.destroy()
    mode = "queued" if args.queued else f"direct, {threads} thread(s)"
    where = "postgres" if args.postgres else "sqlite"
    print(f"dbos {mode} system database={where} runs={args.runs} steps/run=3")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"workflows/s: {args.runs / elapsed:10.0f}")
    print(f"steps/s:     {args.runs * 3 / elapsed:10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
