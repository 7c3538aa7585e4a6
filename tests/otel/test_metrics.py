"""Metrics: stage counters by workflow and stage, the stage duration histogram, and
the queue depth gauge (docs/observability.md)."""

from __future__ import annotations

from typing import Any

import pytest

from adapters import create_kernel
from adapters.memory import InMemoryStore
from adapters.otel import Telemetry
from kernel import Kernel, RunCreate
from testing import FakeClock
from tests.otel.apps import ALL
from tests.otel.conftest import Otel, drain, make_otel

Key = tuple[object, object, object]


def by_stage(points: list[Any]) -> dict[Key, Any]:
    """Data points by (workflow id, stage id, outcome); the outcome ``None`` if absent."""
    return {
        tuple(
            point.attributes.get(name)
            for name in ("wfk.workflow_id", "wfk.stage_id", "wfk.outcome")
        ): point
        for point in points
    }


def start(kernel: Kernel, workflow_id: str, times: int = 1) -> None:
    for _ in range(times):
        kernel.dispatch(RunCreate(workflow_id=workflow_id, input={"text": "some text"}))


def test_completed_and_failed_stages_are_counted_by_workflow_and_stage(
    kernel: Kernel, otel: Otel, clock: FakeClock
) -> None:
    start(kernel, "summary", times=2)
    start(kernel, "flaky")
    start(kernel, "broken")
    drain(kernel, clock)

    completed = by_stage(otel.points("wfk.stages.completed"))
    assert {key: point.value for key, point in completed.items()} == {
        ("summary", "upper", None): 2,
        ("summary", "summarise", None): 2,
        ("flaky", "flaky", None): 1,
    }
    failed = by_stage(otel.points("wfk.stages.failed"))
    assert {key: point.value for key, point in failed.items()} == {
        ("flaky", "flaky", "retry"): 1,
        ("broken", "broken", "failed"): 1,
    }


def test_every_attempt_records_its_duration_in_seconds_with_its_outcome(
    kernel: Kernel, otel: Otel, clock: FakeClock
) -> None:
    start(kernel, "summary", times=3)
    start(kernel, "flaky")
    drain(kernel, clock)

    durations = by_stage(otel.points("wfk.stage.duration"))
    assert {key: point.count for key, point in durations.items()} == {
        ("summary", "upper", "completed"): 3,
        ("summary", "summarise", "completed"): 3,
        ("flaky", "flaky", "retry"): 1,
        ("flaky", "flaky", "completed"): 1,
    }
    # No-op stages: well under a second each (measured around the stage's code only).
    assert all(0 <= point.sum < 1 for point in durations.values())


def test_the_queue_depth_gauge_counts_runs_waiting_to_be_claimed(
    kernel: Kernel, otel: Otel
) -> None:
    start(kernel, "summary", times=3)
    [waiting] = otel.points("wfk.queue.depth")
    assert (waiting.value, dict(waiting.attributes)) == (3, {"wfk.queue": "pending_runs"})

    drain(kernel)
    [drained] = otel.points("wfk.queue.depth")
    assert drained.value == 0


def test_the_queue_depth_counts_at_most_the_limit_and_each_store_once(
    store: InMemoryStore,
) -> None:
    otel = make_otel(queue_depth_limit=2)
    kernel = create_kernel(*ALL, store=store, telemetry=otel.telemetry)
    create_kernel(*ALL, store=store, telemetry=otel.telemetry)  # same store: counted once
    start(kernel, "summary", times=3)

    [waiting] = otel.points("wfk.queue.depth")
    assert waiting.value == 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"untraced": ["run.craete"]}, "untraced: unknown command type 'run.craete' (known: "),
        ({"untraced": "run.create"}, "untraced: expected a collection of command types"),
        ({"queue_depth_limit": 0}, "queue_depth_limit: expected an int >= 1, got 0"),
        ({"queue_depth_limit": True}, "queue_depth_limit: expected an int >= 1, got True"),
    ],
)
def test_bad_settings_are_refused_naming_the_setting_and_value(
    settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError) as refused:
        Telemetry(**settings)
    assert str(refused.value).startswith(message)
