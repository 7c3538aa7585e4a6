"""Wiring exporters: batched spans and periodic metrics, as a service would send them.

The console exporters write to a buffer here; in production pass the OTLP
exporters of ``opentelemetry-exporter-otlp`` (same constructors, an endpoint
instead of ``out``).
"""

import io

import attrs
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import ConsoleMetricExporter, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

from adapters import create_kernel
from adapters.memory import InMemoryStore
from adapters.otel import TICK_COMMANDS, Telemetry
from kernel import RunClaimPending, RunCreate, StageContext, WorkflowBuilder, define_stage


@attrs.frozen
class Order:
    number: str


@attrs.frozen
class NoConfig:
    pass


def book(ctx: StageContext[Order, NoConfig]) -> Order:
    return ctx.input


book_stage = define_stage(
    id="book", name="Book", input=Order, output=Order, config=NoConfig, execute=book
)
orders = WorkflowBuilder("orders", "Orders", input=Order, output=Order).pipe(book_stage).build()


# --8<-- [start:wiring]
def telemetry_for(
    service: str, out: io.StringIO
) -> tuple[Telemetry, TracerProvider, MeterProvider]:
    """Spans exported in batches, metrics every 30 s, both tagged with the service."""
    resource = Resource.create({"service.name": service})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter(out=out)))
    reader = PeriodicExportingMetricReader(
        ConsoleMetricExporter(out=out), export_interval_millis=30_000
    )
    meter_provider = MeterProvider(resource=resource, metric_readers=[reader])
    telemetry = Telemetry(
        tracer_provider=tracer_provider,
        meter_provider=meter_provider,
        untraced=TICK_COMMANDS,  # no span for each idle orchestration tick
    )
    return telemetry, tracer_provider, meter_provider


# --8<-- [end:wiring]


def main() -> None:
    out = io.StringIO()
    telemetry, tracer_provider, meter_provider = telemetry_for("order-worker", out)
    kernel = create_kernel(orders, store=InMemoryStore(), telemetry=telemetry)
    kernel.dispatch(RunCreate(workflow_id="orders", input={"number": "A-1"}))
    kernel.dispatch(RunClaimPending(worker_id="worker-1"))
    while kernel.execute_next_job("worker-1"):
        pass

    # --8<-- [start:shutdown]
    tracer_provider.shutdown()  # on exit: export what the batch still holds
    meter_provider.shutdown()
    # --8<-- [end:shutdown]
    exported = out.getvalue()
    assert '"service.name": "order-worker"' in exported
    assert '"name": "wfk run.create"' in exported
    assert '"name": "wfk stage book"' in exported
    assert '"name": "wfk run.claimPending"' not in exported  # a tick command: untraced
    assert '"name": "wfk.stages.completed"' in exported
    assert '"name": "wfk.stage.duration"' in exported
