"""Across processes: a worker in another process continues the trace of the code
that created the run; and without ``telemetry`` nothing of OpenTelemetry is loaded."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from adapters import create_kernel
from adapters.sqlite import SqliteStore
from kernel import RunCreate, Status
from tests.otel.apps import ALL
from tests.otel.conftest import Otel

ROOT = Path(__file__).resolve().parents[2]


def python(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=90, check=False
    )


def test_a_worker_process_continues_the_trace_of_the_process_that_created_the_run(
    tmp_path: Path, otel: Otel
) -> None:
    path = tmp_path / "wf.db"
    store = SqliteStore(path)
    kernel = create_kernel(*ALL, store=store, telemetry=otel.telemetry)
    traces: dict[str, str] = {}
    for text in ("first request", "second request"):
        with otel.telemetry.tracer.start_as_current_span("request") as request:
            run_id = kernel.dispatch(
                RunCreate(workflow_id="summary", input={"text": text})
            ).workflow_run_id
            traces[run_id] = f"{request.get_span_context().trace_id:032x}"
    store.close()

    child = python("-m", "tests.otel.worker_process", str(path))

    assert child.returncode == 0, child.stderr
    spans = [json.loads(line) for line in child.stdout.splitlines()]
    stages = [span for span in spans if span["name"].startswith("wfk stage ")]
    assert sorted((s["attributes"]["wfk.run_id"], s["name"]) for s in stages) == sorted(
        (run_id, f"wfk stage {stage}") for run_id in traces for stage in ("upper", "summarise")
    )
    for span in stages:
        assert span["trace_id"] == traces[span["attributes"]["wfk.run_id"]]
    creates = {f"{s.context.span_id:016x}" for s in otel.finished("wfk run.create") if s.context}
    assert {span["parent_id"] for span in stages} == creates
    reopened = SqliteStore(path)
    assert {run.status for run in reopened.list_runs()} == {Status.COMPLETED}
    reopened.close()


def test_without_telemetry_no_opentelemetry_module_is_imported() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        from adapters import create_kernel
        from adapters.memory import InMemoryStore
        from kernel import RunClaimPending, RunCreate, Status
        from tests.workflows import Calls, echo, pipeline
        store = InMemoryStore()
        kernel = create_kernel(pipeline("p", echo(Calls())), store=store)
        run_id = kernel.dispatch(RunCreate(workflow_id="p", input={"value": 1})).workflow_run_id
        kernel.dispatch(RunClaimPending(worker_id="w"))
        while kernel.execute_next_job("w"):
            pass
        assert store.get_run(run_id).status == Status.COMPLETED
        loaded = [m for m, module in sys.modules.items() if module is not None]
        print(sorted(m for m in loaded if m.startswith(("opentelemetry", "adapters.otel"))))
        """
    )
    ran = python("-c", script)
    assert (ran.returncode, ran.stdout.strip()) == (0, "[]"), ran.stderr


def test_without_the_otel_extra_importing_the_integration_says_what_to_install() -> None:
    script = textwrap.dedent(
        """
        import sys
        sys.modules["opentelemetry"] = None  # as if it were not installed
        try:
            from adapters.otel import Telemetry
        except ImportError as exc:
            print(exc)
        """
    )
    ran = python("-c", script)
    assert ran.stdout.strip() == (
        "adapters.otel needs the OpenTelemetry API, which is not installed: "
        "pip install 'workflow-kernel[otel]'"
    ), ran.stderr
