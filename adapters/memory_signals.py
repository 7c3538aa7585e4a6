"""Signals and schedules of ``InMemoryStore``: its transaction's loads and effects
for them, and the store's queries, as mixins of the classes in :mod:`adapters.memory`.

Signals are kept in a dict in arrival order; schedules by id. Writes go
through the transaction's undo log (``_set``/``_pop``), so a rollback undoes
them with everything else.
"""

from __future__ import annotations

import threading
from collections.abc import Collection
from datetime import datetime
from typing import Any, Protocol, assert_never

from attrs import evolve

from kernel.effects import (
    ConsumeSignal,
    DeleteSchedule,
    InsertSchedule,
    InsertSignal,
    UpdateSchedule,
)
from kernel.errors import StaleVersionError, StoreError
from kernel.records import SignalRecord
from kernel.schedules import ScheduleRecord

SignalScheduleEffect = (
    InsertSignal | ConsumeSignal | InsertSchedule | UpdateSchedule | DeleteSchedule
)
"""The effects :meth:`SignalScheduleLoads.apply_signal_schedule` applies."""


class SignalScheduleTables(Protocol):
    """The tables these mixins use (``adapters.memory._Tables`` has them)."""

    # signal id -> record, in arrival order
    signals: dict[str, SignalRecord]
    schedules: dict[str, ScheduleRecord]


class SignalScheduleLoads:
    """The signal and schedule part of ``MemoryTransaction``."""

    t: SignalScheduleTables

    def _set(self, table: dict[Any, Any], key: Any, value: Any) -> None:
        raise NotImplementedError  # MemoryTransaction's, which remembers the undo

    def _pop(self, table: dict[Any, Any], key: Any) -> None:
        raise NotImplementedError

    def buffered_signals(self, run_id: str) -> list[SignalRecord]:
        return [
            signal
            for signal in self.t.signals.values()
            if signal.workflow_run_id == run_id and signal.consumed_at is None
        ]

    def get_schedule(self, schedule_id: str) -> ScheduleRecord | None:
        return self.t.schedules.get(schedule_id)

    def due_schedules(
        self, now: datetime, limit: int, workflow_ids: Collection[str] | None = None
    ) -> list[ScheduleRecord]:
        due = [
            schedule
            for schedule in self.t.schedules.values()
            if schedule.enabled
            and schedule.next_fire_at is not None
            and schedule.next_fire_at <= now
            and (workflow_ids is None or schedule.workflow_id in workflow_ids)
        ]
        due.sort(key=lambda schedule: (schedule.next_fire_at, schedule.id))
        return due[: max(limit, 0)]

    def apply_signal_schedule(self, effect: SignalScheduleEffect) -> None:
        """Apply one signal or schedule effect through the undo log."""
        t = self.t
        match effect:
            case InsertSignal(signal):
                if signal.id in t.signals:
                    raise StoreError(f"signal {signal.id!r} already exists")
                self._set(t.signals, signal.id, signal)
            case ConsumeSignal(signal):
                current = t.signals.get(signal.id)
                if current is None or current.consumed_at is not None:
                    # Signals have no version: 1 stands for "still buffered" (all stores).
                    raise StaleVersionError("signal", signal.id, 1)
                consumed = evolve(current, consumed_at=signal.consumed_at, stage_id=signal.stage_id)
                self._set(t.signals, signal.id, consumed)
            case InsertSchedule(schedule):
                if schedule.id in t.schedules:
                    raise StoreError(f"schedule {schedule.id!r} already exists")
                self._set(t.schedules, schedule.id, schedule)
            case UpdateSchedule(schedule, expected):
                existing = t.schedules.get(schedule.id)
                if existing is None or existing.version != expected:
                    raise StaleVersionError("schedule", schedule.id, expected)
                self._set(t.schedules, schedule.id, schedule)
            case DeleteSchedule(schedule_id):
                self._pop(t.schedules, schedule_id)
            case _:
                assert_never(effect)


class SignalScheduleQueries:
    """The signal and schedule queries of ``InMemoryStore`` (each its own read)."""

    _lock: threading.RLock
    _tables: SignalScheduleTables

    def get_signals(self, run_id: str) -> list[SignalRecord]:
        with self._lock:
            signals = list(self._tables.signals.values())
        return [signal for signal in signals if signal.workflow_run_id == run_id]

    def get_schedules(self) -> list[ScheduleRecord]:
        with self._lock:
            schedules = list(self._tables.schedules.values())
        return sorted(schedules, key=lambda schedule: schedule.id)
