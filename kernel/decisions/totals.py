"""Spend: a run's running totals and a stage's accumulated metrics (SPEC §11, §12.1).

Totals are the ledger's. ``run.total_cost`` (a ``Decimal``) and
``run.total_tokens`` are running counters, never recomputed: ``usage.record``
adds each provider call as it is paid for, and a stage that completes adds
the figures its own ``StageResult(metrics=...)`` (or ``CompletionCheck``)
reported. Completing the run adds nothing. So calls paid for by an attempt
that later failed, or by a stage a ``run.rerunFrom`` replaced, stay counted.

A stage record's metrics accumulate the same way: ``total_cost`` (kept as a
decimal string, exact in JSON), ``total_tokens`` and ``calls`` are added up
across ``usage.record`` and every completion; other keys are the last
writer's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from kernel.decisions.changes import bump_run
from kernel.effects import UpdateRun
from kernel.llm_batch_state import intents_of
from kernel.records import Json, WorkflowRun, WorkflowStage


def as_cost(value: Any) -> Decimal | None:
    """A cost from metrics: a ``Decimal``, an int, a finite float (by its shortest
    repr, so ``0.1`` is ``Decimal('0.1')``) or a decimal string, at least 0; else
    ``None``.

    >>> as_cost("0.00045000"), as_cost(0.1), as_cost(2)
    (Decimal('0.00045000'), Decimal('0.1'), Decimal('2'))
    >>> as_cost("lots"), as_cost(-1), as_cost(True), as_cost(float("nan"))
    (None, None, None, None)
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        value = repr(value)
    if isinstance(value, int | str):
        try:
            value = Decimal(value)
        except InvalidOperation:
            return None
    if not isinstance(value, Decimal) or not value.is_finite() or value < 0:
        return None
    return value


def as_count(value: Any) -> int | None:
    """A token or call count from metrics: an int at least 0 (not a bool); else ``None``.

    >>> as_count(3), as_count(1.5), as_count(-1), as_count(False)
    (3, None, None, None)
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return None
    return value


METRIC_EXPECTATIONS = {
    "total_cost": (as_cost, "a number or a decimal string >= 0"),
    "total_tokens": (as_count, "an int >= 0"),
    "calls": (as_count, "an int >= 0"),
}
"""What each added metric must be, for the message that refuses it."""


def metric_problems(metrics: Mapping[str, Json]) -> list[str]:
    """``metrics[name]: expected ..., got ...`` for each added metric a stage reported
    that cannot be added up.

    >>> metric_problems({"total_cost": "lots", "total_tokens": 3, "other": "x"})
    ["metrics['total_cost']: expected a number or a decimal string >= 0, got 'lots'"]
    """
    problems: list[str] = []
    for name, (read, expected) in METRIC_EXPECTATIONS.items():
        value = metrics.get(name)
        if value is not None and read(value) is None:
            problems.append(f"metrics[{name!r}]: expected {expected}, got {value!r}")
    return problems


def reported_spend(metrics: Mapping[str, Json]) -> tuple[Decimal, int]:
    """The cost and tokens a stage reported in its metrics (0 for what it left out)."""
    return as_cost(metrics.get("total_cost")) or Decimal(0), as_count(
        metrics.get("total_tokens")
    ) or 0


def merge_metrics(existing: Mapping[str, Json], reported: Mapping[str, Json]) -> dict[str, Json]:
    """``reported`` over ``existing``, with ``total_cost``, ``total_tokens`` and
    ``calls`` added up instead of overwritten (a value that cannot be read counts
    as 0).

    >>> merge_metrics({"total_cost": "0.5", "calls": 2, "model": "a"},
    ...               {"total_cost": 0.25, "model": "b"})
    {'total_cost': '0.75', 'calls': 2, 'model': 'b'}
    """
    merged: dict[str, Json] = {**existing, **reported}
    if "total_cost" in merged:
        costs = (as_cost(m.get("total_cost")) or Decimal(0) for m in (existing, reported))
        merged["total_cost"] = str(sum(costs, Decimal(0)))
    for name in ("total_tokens", "calls"):
        if name in merged:
            merged[name] = sum(as_count(m.get(name)) or 0 for m in (existing, reported))
    return merged


def charge_run(run: WorkflowRun, cost: Decimal, tokens: int) -> tuple[WorkflowRun, UpdateRun]:
    """The run with ``cost`` and ``tokens`` added to its totals, and the effect."""
    return bump_run(run, total_cost=run.total_cost + cost, total_tokens=run.total_tokens + tokens)


def budget_left(run: WorkflowRun) -> Decimal | None:
    """The run's budget minus its spend (negative once over); ``None`` without one."""
    return None if run.budget is None else run.budget - run.total_cost


def calls_of(record: WorkflowStage) -> int:
    """How many calls the stage record's metrics count."""
    return as_count(record.metrics.get("calls")) or 0


def same_attempt(loaded: WorkflowStage, seen: WorkflowStage) -> bool:
    """Whether ``loaded`` is still the stage record as ``seen`` (at an attempt's start,
    or a poll's claim), apart from calls ``usage.record`` added meanwhile.

    Every write of a stage record bumps its version. ``usage.record`` is the one
    writer that may run while an attempt or a check is under way without ending
    it, and each of its writes counts exactly one call in ``metrics["calls"]``: so
    version minus calls moves on with every other write (a cancel, a reap, a
    release and restart, another poller's claim), and only with those. The same
    holds for ``batch.intent``, each of whose writes records the next generation
    of an LLM batch stage's batch.
    """
    return (
        loaded.id == seen.id
        and loaded.status == seen.status
        and loaded.attempt == seen.attempt
        and loaded.version - _writes_under_way(loaded) == seen.version - _writes_under_way(seen)
    )


def _writes_under_way(record: WorkflowStage) -> int:
    """The writes commands make to a record while its attempt or check goes on: one
    per call recorded, one per ``batch.intent`` (an LLM batch stage's generation)."""
    return calls_of(record) + intents_of(record.suspended_state)
