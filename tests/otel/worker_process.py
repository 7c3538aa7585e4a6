"""A worker process of its own, for the two-process trace test.

``python -m tests.otel.worker_process DB_PATH`` runs a ``WorkerHost`` with
its own OpenTelemetry SDK on the SQLite file until no run is left pending or
running, then prints each span it recorded as one JSON line: name, trace id,
parent span id (hex) and attributes.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import timedelta

from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters import create_kernel
from adapters.hosts import WorkerHost
from adapters.otel import TICK_COMMANDS, Telemetry
from adapters.sqlite import SqliteStore
from kernel import Status
from tests.otel.apps import ALL

DEADLINE_S = 30.0


def main(path: str) -> int:
    spans = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(spans))
    store = SqliteStore(path, create=False)
    telemetry = Telemetry(tracer_provider=provider, untraced=TICK_COMMANDS)
    kernel = create_kernel(*ALL, store=store, telemetry=telemetry)
    host = WorkerHost(
        kernel, store, worker_id="child", orchestration_interval=timedelta(milliseconds=20)
    )
    host.start()
    give_up = time.monotonic() + DEADLINE_S
    while time.monotonic() < give_up and any(
        store.list_runs(status=status) for status in (Status.PENDING, Status.RUNNING)
    ):
        time.sleep(0.02)
    host.stop()
    store.close()
    for span in spans.get_finished_spans():
        assert span.context is not None
        line = {
            "name": span.name,
            "trace_id": f"{span.context.trace_id:032x}",
            "parent_id": f"{span.parent.span_id:016x}" if span.parent else None,
            "attributes": dict(span.attributes or {}),
        }
        print(json.dumps(line))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
