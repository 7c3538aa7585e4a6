"""The ``wfk`` command line (grows with the hosts issue)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

import attrs


def _demo(store_url: str) -> int:
    from adapters import create_kernel
    from adapters.demo import SAMPLE_DOCUMENTS, document_pipeline
    from adapters.memory import InMemoryStore
    from kernel import OutboxFlush, RunClaimPending, RunCreate

    del store_url  # the SQLite store arrives with the persistence issue
    store = InMemoryStore()
    kernel = create_kernel(document_pipeline, store=store)
    ids = [
        kernel.dispatch(RunCreate(workflow_id=document_pipeline.id, input=attrs.asdict(doc)))
        for doc in SAMPLE_DOCUMENTS
    ]
    kernel.dispatch(RunClaimPending(worker_id="demo"))
    while kernel.execute_next_job("demo") is not None:
        pass
    kernel.dispatch(OutboxFlush())
    for created in ids:
        run = store.get_run(created.workflow_run_id)
        assert run is not None
        print(f"{run.id}  {run.status}  {run.duration_ms} ms")
        for stage in store.get_stages(run.id):
            print(
                f"    {stage.stage_number}. {stage.stage_id:<10} {stage.status:<10} {stage.duration_ms} ms"
            )
        print(f"    output: {run.output}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="wfk", description="workflow-kernel command line")
    commands = parser.add_subparsers(dest="command")
    demo = commands.add_parser("demo", help="run the document pipeline demo end to end")
    demo.add_argument("--store", default="sqlite:///.demo/demo.db")
    args = parser.parse_args(argv)
    if args.command == "demo":
        return _demo(args.store)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
