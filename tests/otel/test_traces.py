"""Spans: one per command dispatch, one per stage attempt, all in the trace of the
code that created the run (docs/observability.md)."""

from __future__ import annotations

from datetime import timedelta

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from adapters import create_kernel
from adapters.memory import InMemoryStore
from adapters.otel import TICK_COMMANDS, TRACEPARENT_KEY
from kernel import (
    IdempotencyConflictError,
    JobExecute,
    Kernel,
    RunClaimPending,
    RunCreate,
    StagePollSuspended,
    Status,
)
from testing import CollectingEventSink, FakeClock
from tests.otel.apps import ALL
from tests.otel.conftest import Otel, drain, make_otel


def trace_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.trace_id)


def span_id(span: ReadableSpan) -> int:
    assert span.context is not None
    return int(span.context.span_id)


def create(kernel: Kernel, otel: Otel, workflow_id: str, text: str = "hello world") -> str:
    """Create a run inside a ``request`` span, as a web handler would."""
    with otel.telemetry.tracer.start_as_current_span("request"):
        return kernel.dispatch(
            RunCreate(workflow_id=workflow_id, input={"text": text})
        ).workflow_run_id


def test_the_create_span_and_every_stage_span_share_the_requests_trace(
    kernel: Kernel, otel: Otel, store: InMemoryStore
) -> None:
    run_id = create(kernel, otel, "summary")
    drain(kernel)

    [request] = otel.finished("request")
    [created] = otel.finished("wfk run.create")
    stages = otel.finished("wfk stage upper") + otel.finished("wfk stage summarise")
    assert {trace_id(span) for span in (request, created, *stages)} == {trace_id(request)}
    assert created.parent is not None and created.parent.span_id == span_id(request)
    # The stages continue the run's create span, stored on the run.
    assert [s.parent.span_id for s in stages if s.parent] == [span_id(created)] * 2
    run = store.get_run(run_id)
    assert run is not None and run.status == Status.COMPLETED
    assert run.metadata[TRACEPARENT_KEY].startswith(
        f"00-{trace_id(created):032x}-{span_id(created):016x}-"
    )
    assert created.kind == SpanKind.PRODUCER
    assert {s.kind for s in stages} == {SpanKind.CONSUMER}
    assert created.attributes is not None and created.attributes["wfk.run_id"] == run_id


def test_a_stage_span_names_the_run_workflow_stage_attempt_outcome_tokens_and_cost(
    kernel: Kernel, otel: Otel
) -> None:
    run_id = create(kernel, otel, "summary")
    drain(kernel)

    [span] = otel.finished("wfk stage summarise")
    assert span.attributes is not None
    assert {key: span.attributes[key] for key in span.attributes if key != "wfk.job_id"} == {
        "wfk.run_id": run_id,
        "wfk.workflow_id": "summary",
        "wfk.stage_id": "summarise",
        "wfk.attempt": 1,
        "wfk.call": "execute",
        "wfk.outcome": "completed",
        "wfk.tokens": 42,
        "wfk.cost": 0.25,
    }
    [upper] = otel.finished("wfk stage upper")
    assert upper.attributes is not None and "wfk.tokens" not in upper.attributes
    assert span.status.status_code == StatusCode.UNSET


def test_a_failing_stage_span_has_error_status_the_outcome_and_the_exception(
    kernel: Kernel, otel: Otel
) -> None:
    create(kernel, otel, "broken", "x")
    drain(kernel)

    [span] = otel.finished("wfk stage broken")
    assert span.status.status_code == StatusCode.ERROR
    assert span.status.description == "ValueError: cannot parse 'x'"
    assert span.attributes is not None and span.attributes["wfk.outcome"] == "failed"
    [event] = span.events
    assert event.name == "exception"
    assert event.attributes is not None
    assert event.attributes["exception.type"] == "ValueError"
    assert event.attributes["exception.message"] == "cannot parse 'x'"
    # The user's part of the traceback, not the runner's frames.
    stack = str(event.attributes["exception.stacktrace"])
    assert "in _broken" in stack and "adapters/runner.py" not in stack


def test_a_retried_stage_has_one_span_per_attempt_in_the_same_trace(
    kernel: Kernel, otel: Otel, clock: FakeClock
) -> None:
    create(kernel, otel, "flaky")
    drain(kernel, clock)

    spans = otel.finished("wfk stage flaky")
    assert [
        (s.attributes["wfk.attempt"], s.attributes["wfk.outcome"], s.status.status_code)
        for s in spans
        if s.attributes is not None
    ] == [(1, "retry", StatusCode.ERROR), (2, "completed", StatusCode.UNSET)]
    [created] = otel.finished("wfk run.create")
    assert {trace_id(s) for s in spans} == {trace_id(created)}


def test_every_dispatched_command_gets_a_span_and_a_failed_one_records_its_error(
    kernel: Kernel, otel: Otel
) -> None:
    create(kernel, otel, "summary")
    drain(kernel)
    try:
        kernel.dispatch(RunCreate(workflow_id="nope", input={}))
    except Exception as exc:
        refused = exc
    else:
        raise AssertionError("an unknown workflow was accepted")

    assert [s.name for s in otel.finished() if s.name.startswith("wfk run.")] == [
        "wfk run.create",
        "wfk run.claimPending",
        "wfk run.create",
    ]
    failed = otel.finished("wfk run.create")[-1]
    assert failed.status.status_code == StatusCode.ERROR
    assert [e.attributes["exception.type"] for e in failed.events if e.attributes] == [
        f"{type(refused).__module__}.{type(refused).__qualname__}"
    ]
    assert failed.attributes is not None and failed.attributes["wfk.workflow_id"] == "nope"


def test_untraced_commands_get_no_span_but_their_stages_keep_theirs(
    store: InMemoryStore, clock: FakeClock
) -> None:
    otel = make_otel(untraced=TICK_COMMANDS)
    kernel = create_kernel(
        *ALL, store=store, clock=clock, sink=CollectingEventSink(), telemetry=otel.telemetry
    )
    create(kernel, otel, "summary")
    drain(kernel)

    assert [s.name for s in otel.finished()] == [
        "wfk run.create",
        "request",
        "wfk stage upper",
        "wfk stage summarise",
    ]


def test_stage_code_spans_nest_under_the_stage_span_in_async_and_timed_stages(
    kernel: Kernel, otel: Otel
) -> None:
    create(kernel, otel, "nested")
    drain(kernel)

    [fetch] = otel.finished("wfk stage fetch")
    [fetched] = otel.finished("fetch page")
    [timed] = otel.finished("wfk stage timed")
    [called] = otel.finished("call model")
    assert fetched.parent is not None and fetched.parent.span_id == span_id(fetch)
    assert called.parent is not None and called.parent.span_id == span_id(timed)


def test_a_replayed_idempotent_create_from_another_trace_returns_the_first_run(
    kernel: Kernel, otel: Otel
) -> None:
    """The trace context is part of the stored payload; a retry of the request, in a
    trace of its own, still replays the first create instead of conflicting."""

    def request() -> str:
        with otel.telemetry.tracer.start_as_current_span("request"):
            cmd = RunCreate(workflow_id="summary", input={"text": "a"}, idempotency_key="k-1")
            return kernel.dispatch(cmd).workflow_run_id

    first, again = request(), request()

    assert again == first
    requests = otel.finished("request")
    assert trace_id(requests[0]) != trace_id(requests[1])
    try:
        kernel.dispatch(
            RunCreate(workflow_id="summary", input={"text": "b"}, idempotency_key="k-1")
        )
    except IdempotencyConflictError:
        pass
    else:
        raise AssertionError("a different payload under the same key was accepted")


def test_a_traceparent_the_caller_put_in_the_metadata_is_kept(
    kernel: Kernel, otel: Otel, store: InMemoryStore
) -> None:
    incoming = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    created = kernel.dispatch(
        RunCreate(workflow_id="summary", input={"text": "a"}, metadata={TRACEPARENT_KEY: incoming})
    )
    drain(kernel)

    run = store.get_run(created.workflow_run_id)
    assert run is not None and run.metadata == {TRACEPARENT_KEY: incoming}
    [upper] = otel.finished("wfk stage upper")
    assert trace_id(upper) == 0x0AF7651916CD43DD8448EB211C80319C
    assert upper.parent is not None and upper.parent.span_id == 0xB7AD6B7169203331


def test_a_run_created_outside_any_span_stores_no_trace_and_its_stages_start_traces(
    kernel: Kernel, otel: Otel, store: InMemoryStore
) -> None:
    otel_untraced = make_otel(untraced=["run.create"])
    quiet = create_kernel(*ALL, store=store, telemetry=otel_untraced.telemetry)
    created = quiet.dispatch(RunCreate(workflow_id="summary", input={"text": "a"}))
    drain(kernel)

    run = store.get_run(created.workflow_run_id)
    assert run is not None and run.metadata == {}
    [upper] = otel.finished("wfk stage upper")
    [claim] = otel.finished("wfk run.claimPending")
    assert upper.parent is None and trace_id(upper) != trace_id(claim)


def test_a_directly_dispatched_job_execute_links_its_span_from_the_stage_span(
    kernel: Kernel, otel: Otel
) -> None:
    """As ``ServerlessHost`` runs a job: the stage span stays in the run's trace and
    links to the ``wfk job.execute`` span that ran it."""
    run_id = create(kernel, otel, "summary")
    [claimed] = kernel.dispatch(RunClaimPending(worker_id="w1")).claimed
    kernel.dispatch(
        JobExecute(
            workflow_run_id=run_id,
            workflow_id="summary",
            stage_id="upper",
            job_id=claimed.job_ids[0],
        )
    )

    [execute] = otel.finished("wfk job.execute")
    [stage] = otel.finished("wfk stage upper")
    [created] = otel.finished("wfk run.create")
    assert stage.parent is not None and stage.parent.span_id == span_id(created)
    assert [link.context.span_id for link in stage.links] == [span_id(execute)]
    assert execute.attributes is not None
    assert (execute.attributes["wfk.run_id"], execute.attributes["wfk.stage_id"]) == (
        run_id,
        "upper",
    )


def test_an_async_batch_stage_has_a_span_for_its_execute_and_for_each_poll(
    kernel: Kernel, otel: Otel, clock: FakeClock
) -> None:
    create(kernel, otel, "batch")
    drain(kernel)
    clock.advance(timedelta(seconds=10))
    kernel.dispatch(StagePollSuspended())

    spans = otel.finished("wfk stage batch")
    assert [
        (s.attributes["wfk.call"], s.attributes["wfk.outcome"], s.attributes.get("wfk.tokens"))
        for s in spans
        if s.attributes is not None
    ] == [("execute", "suspended", None), ("check_completion", "completed", 7)]
    [created] = otel.finished("wfk run.create")
    [poll] = otel.finished("wfk stage.pollSuspended")
    assert {trace_id(s) for s in spans} == {trace_id(created)}
    assert [link.context.span_id for link in spans[1].links] == [span_id(poll)]
