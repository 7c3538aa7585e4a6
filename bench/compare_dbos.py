"""The same measurement with DBOS, for comparison (not a project dependency).

N workflows of three no-op steps on a SQLite system database in one process:
steps/s, either called directly one after another, or (``--queued``) enqueued
on a DBOS queue and executed by its workers, which is what workflow-kernel's
claim/lease cycle does. Run it in a separate virtualenv:

    python3 -m venv /tmp/dbosenv && /tmp/dbosenv/bin/pip install dbos
    /tmp/dbosenv/bin/python bench/compare_dbos.py --runs 500
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from typing import Any


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=500)
    parser.add_argument(
        "--queued", action="store_true", help="enqueue the workflows on a DBOS queue"
    )
    args = parser.parse_args(argv)
    from dbos import DBOS  # type: ignore[import-not-found, unused-ignore]

    with tempfile.TemporaryDirectory() as tmp:
        config: Any = {
            "name": "bench",
            "system_database_url": f"sqlite:///{tmp}/dbos.sqlite",
        }
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
            for i in range(args.runs):
                three_steps(i)
        elapsed = time.perf_counter() - start
        DBOS.destroy()
    mode = "queued" if args.queued else "direct"
    print(f"dbos {mode} runs={args.runs} steps/run=3")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores, {platform.platform()}")
    print(f"workflows/s: {args.runs / elapsed:10.0f}")
    print(f"steps/s:     {args.runs * 3 / elapsed:10.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
