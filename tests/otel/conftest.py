"""An OpenTelemetry SDK per test: spans to memory, metrics read on demand, and
the kernels of ``tests/otel/apps.py`` reporting to it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import attrs
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters import create_kernel
from adapters.memory import InMemoryStore
from adapters.otel import Telemetry
from kernel import Kernel, RunClaimPending
from kernel.ports import Store
from testing import CollectingEventSink, FakeClock
from tests.harness import T0
from tests.otel.apps import ALL, AppTracing


@attrs.define
class Otel:
    """An SDK tracer and meter provider; ``telemetry`` reports to them."""

    tracer_provider: TracerProvider
    meter_provider: MeterProvider
    spans: InMemorySpanExporter
    reader: InMemoryMetricReader
    telemetry: Telemetry

    def finished(self, name: str | None = None) -> list[ReadableSpan]:
        """Finished spans in the order they ended, optionally only those named ``name``."""
        return [s for s in self.spans.get_finished_spans() if name is None or s.name == name]

    def points(self, metric: str) -> list[Any]:
        """The data points of ``metric`` in one collection (empty if never recorded)."""
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [
            point
            for resource in data.resource_metrics
            for scope in resource.scope_metrics
            for found in scope.metrics
            if found.name == metric
            for point in found.data.data_points
        ]


def make_otel(**settings: Any) -> Otel:
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    reader = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[reader])
    telemetry = Telemetry(
        tracer_provider=tracer_provider, meter_provider=meter_provider, **settings
    )
    return Otel(tracer_provider, meter_provider, spans, reader, telemetry)


@pytest.fixture
def otel() -> Iterator[Otel]:
    made = make_otel()
    AppTracing.provider = made.tracer_provider
    yield made
    AppTracing.provider = None
    made.tracer_provider.shutdown()
    made.meter_provider.shutdown()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def kernel(otel: Otel, store: Store, clock: FakeClock) -> Kernel:
    return create_kernel(
        *ALL, store=store, clock=clock, sink=CollectingEventSink(), telemetry=otel.telemetry
    )


def drain(kernel: Kernel, clock: FakeClock | None = None) -> None:
    """Claim pending runs and execute jobs until none is left, waiting out backoffs."""
    for _ in range(10):
        kernel.dispatch(RunClaimPending(worker_id="w1"))
        while kernel.execute_next_job("w1"):
            pass
        if clock is None:
            return
        clock.advance(timedelta(seconds=30))
