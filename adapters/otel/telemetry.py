"""``Telemetry``: where a kernel's spans and metrics go, and which commands get spans.

One ``Telemetry`` may serve several kernels (a web process that creates runs,
a worker that runs them); its instruments are created once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection, Iterable
from typing import Any, cast

from opentelemetry import metrics, trace
from opentelemetry.metrics import CallbackOptions, MeterProvider, Observation
from opentelemetry.trace import TracerProvider

from kernel.commands import Command
from kernel.ports import Store
from kernel.shell.table import TABLE
from kernel.status import Status

log = logging.getLogger("workflow_kernel.otel")

SCOPE = "workflow_kernel"
"""The instrumentation scope name of every span and instrument."""

COMMAND_TYPES = frozenset(cast("type[Command[Any]]", entry.command).type for entry in TABLE)
"""Every command type a kernel dispatches (``"run.create"``, ``"job.execute"``, ...)."""

TICK_COMMANDS = frozenset(
    {"schedule.tick", "run.claimPending", "stage.pollSuspended", "lease.reapStale", "outbox.flush"}
)
"""The commands a host dispatches on every orchestration tick: pass them as
``untraced`` to keep idle ticks out of your traces (stage spans of suspended
stages that a poll checks are kept)."""

QUEUE_DEPTH_LIMIT = 1000
"""The most pending runs one ``wfk.queue.depth`` observation counts (one bounded
read per metrics collection, not a full count)."""


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("workflow-kernel")
    except PackageNotFoundError:  # pragma: no cover - a checkout that is not installed
        return "unknown"


class Telemetry:
    """The tracer, the meter and the instruments a kernel reports through.

    Args:
        tracer_provider: where spans go; the global provider when ``None``.
        meter_provider: where metrics go; the global provider when ``None``.
        untraced: command types dispatched without a span of their own
            (e.g. :data:`TICK_COMMANDS`); stage spans are always kept.
        queue_depth_limit: the most pending runs a queue depth observation counts.

    Raises:
        ValueError: an unknown command type in ``untraced``, or a bad limit.
    """

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
        untraced: Collection[str] = (),
        queue_depth_limit: int = QUEUE_DEPTH_LIMIT,
    ) -> None:
        if isinstance(untraced, str):
            raise ValueError(f"untraced: expected a collection of command types, got {untraced!r}")
        unknown = sorted(set(untraced) - COMMAND_TYPES)
        if unknown:
            raise ValueError(
                f"untraced: unknown command type {unknown[0]!r} "
                f"(known: {', '.join(sorted(COMMAND_TYPES))})"
            )
        if (
            isinstance(queue_depth_limit, bool)
            or not isinstance(queue_depth_limit, int)
            or queue_depth_limit < 1
        ):
            raise ValueError(f"queue_depth_limit: expected an int >= 1, got {queue_depth_limit!r}")
        self.untraced = frozenset(untraced)
        self.queue_depth_limit = queue_depth_limit
        self.tracer = trace.get_tracer(SCOPE, _version(), tracer_provider=tracer_provider)
        meter = metrics.get_meter(SCOPE, _version(), meter_provider=meter_provider)
        self.stages_completed = meter.create_counter(
            "wfk.stages.completed",
            unit="{stage}",
            description="Stage attempts that completed, by workflow and stage",
        )
        self.stages_failed = meter.create_counter(
            "wfk.stages.failed",
            unit="{stage}",
            description="Stage attempts that failed (wfk.outcome: retry or failed)",
        )
        self.stage_duration = meter.create_histogram(
            "wfk.stage.duration",
            unit="s",
            description="How long a stage's code ran, per attempt",
        )
        self._stores: list[Store] = []
        self._lock = threading.Lock()
        meter.create_observable_gauge(
            "wfk.queue.depth",
            callbacks=[self._observe_queue],
            unit="{run}",
            description="Runs waiting to be claimed (wfk.queue: pending_runs)",
        )

    def traces(self, command_type: str) -> bool:
        """Whether a dispatch of ``command_type`` gets a span."""
        return command_type not in self.untraced

    def observe_queue(self, store: Store) -> None:
        """Report ``store``'s pending runs in ``wfk.queue.depth`` (once per store)."""
        with self._lock:
            if not any(known is store for known in self._stores):
                self._stores.append(store)

    def _observe_queue(self, _: CallbackOptions) -> Iterable[Observation]:
        with self._lock:
            stores = list(self._stores)
        if not stores:
            return []
        pending = 0
        for store in stores:
            try:
                runs = store.list_runs(status=Status.PENDING, limit=self.queue_depth_limit)
            except Exception:  # a failing read loses one observation, not the exporter
                log.exception("wfk.queue.depth: reading pending runs failed")
                return []
            pending += len(runs)
        return [Observation(pending, {"wfk.queue": "pending_runs"})]
