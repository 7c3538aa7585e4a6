"""One trace for a request, its run and every stage attempt; stage metrics beside it.

Spans and metrics go to memory here, so the example can show what they hold.
"""

import attrs
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    HistogramDataPoint,
    InMemoryMetricReader,
    NumberDataPoint,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from adapters import create_kernel
from adapters.memory import InMemoryStore
from adapters.otel import TRACEPARENT_KEY, Telemetry
from kernel import (
    RunClaimPending,
    RunCreate,
    StageContext,
    StageResult,
    WorkflowBuilder,
    define_stage,
)


@attrs.frozen
class Article:
    text: str


@attrs.frozen
class NoConfig:
    pass


def clean(ctx: StageContext[Article, NoConfig]) -> Article:
    return Article(" ".join(ctx.input.text.split()))


def summarise(ctx: StageContext[Article, NoConfig]) -> StageResult[Article]:
    summary = Article(ctx.input.text[:20])
    return StageResult(summary, metrics={"total_tokens": 812, "total_cost": 0.0031})


clean_stage = define_stage(
    id="clean", name="Clean", input=Article, output=Article, config=NoConfig, execute=clean
)
summarise_stage = define_stage(
    id="summarise",
    name="Summarise",
    input=Article,
    output=Article,
    config=NoConfig,
    execute=summarise,
)
summarise_article = (
    WorkflowBuilder("summarise-article", "Summarise an article", input=Article, output=Article)
    .pipe(clean_stage)
    .pipe(summarise_stage)
    .build()
)


# --8<-- [start:observed]
def observed(reader: InMemoryMetricReader) -> dict[tuple[str, object], float]:
    """Each metric's value (a histogram's count) by (metric name, stage id)."""
    data = reader.get_metrics_data()
    seen: dict[tuple[str, object], float] = {}
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = (metric.name, (point.attributes or {}).get("wfk.stage_id"))
                    if isinstance(point, NumberDataPoint):
                        seen[key] = point.value
                    elif isinstance(point, HistogramDataPoint):
                        seen[key] = point.count
    return seen


# --8<-- [end:observed]


def main() -> None:
    # --8<-- [start:wiring]
    spans = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(spans))
    metrics = InMemoryMetricReader()
    meter_provider = MeterProvider(metric_readers=[metrics])

    store = InMemoryStore()
    telemetry = Telemetry(tracer_provider=tracer_provider, meter_provider=meter_provider)
    kernel = create_kernel(summarise_article, store=store, telemetry=telemetry)
    # --8<-- [end:wiring]

    # --8<-- [start:request]
    tracer = tracer_provider.get_tracer("my-web-app")
    with tracer.start_as_current_span("POST /articles") as request:
        created = kernel.dispatch(
            RunCreate(workflow_id="summarise-article", input={"text": "A  long   article"})
        )
    run = store.get_run(created.workflow_run_id)
    assert run is not None and run.metadata[TRACEPARENT_KEY].startswith(
        f"00-{request.get_span_context().trace_id:032x}-"
    )
    # --8<-- [end:request]

    # A worker (here the same process; usually another) runs the stages.
    kernel.dispatch(RunClaimPending(worker_id="worker-1"))
    while kernel.execute_next_job("worker-1"):
        pass

    # --8<-- [start:spans]
    finished = {span.name: span for span in spans.get_finished_spans()}
    assert sorted(finished) == [
        "POST /articles",
        "wfk run.claimPending",
        "wfk run.create",
        "wfk stage clean",
        "wfk stage summarise",
    ]
    stage, create = finished["wfk stage summarise"], finished["wfk run.create"]
    assert stage.context is not None and stage.parent is not None and create.context is not None
    assert stage.context.trace_id == request.get_span_context().trace_id
    assert stage.parent.span_id == create.context.span_id  # a child of the run's create
    assert stage.attributes is not None
    assert dict(stage.attributes) == {
        "wfk.run_id": created.workflow_run_id,
        "wfk.workflow_id": "summarise-article",
        "wfk.stage_id": "summarise",
        "wfk.attempt": 1,
        "wfk.call": "execute",
        "wfk.job_id": stage.attributes["wfk.job_id"],
        "wfk.outcome": "completed",
        "wfk.tokens": 812,
        "wfk.cost": 0.0031,
    }
    # --8<-- [end:spans]

    # --8<-- [start:metrics]
    seen = observed(metrics)
    assert seen["wfk.stages.completed", "summarise"] == 1
    assert seen["wfk.stage.duration", "clean"] == 1  # one attempt (a histogram, in seconds)
    assert seen["wfk.queue.depth", None] == 0  # no run waits to be claimed
    # --8<-- [end:metrics]
