"""Conformance cases: signals sent to runs and stored schedules (SPEC §13, §14, §16.1)."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from typing import Any

import pytest
from attrs import evolve

from kernel.effects import (
    ConsumeSignal,
    DeleteSchedule,
    InsertRun,
    InsertSchedule,
    InsertSignal,
    UpdateRun,
    UpdateSchedule,
)
from kernel.errors import StaleVersionError, StoreError
from kernel.records import SignalRecord
from kernel.schedules import ScheduleRecord
from testing.store_cases.base import T0, StoreCase, at, bump, make_run

PAYLOAD = {"approved": True, "by": "Zoë", "notes": ["a", 1, 2.5, None], "nested": {"k": {}}}


def make_signal(signal_id: str, run_id: str = "run-1", **changes: Any) -> SignalRecord:
    """A buffered ``approval`` signal of ``run_id`` with a JSON payload."""
    signal = SignalRecord(
        id=signal_id,
        workflow_run_id=run_id,
        name="approval",
        payload=PAYLOAD,
        created_at=T0,
    )
    return evolve(signal, **changes)


def consumed(signal: SignalRecord, stage_id: str = "wait", seconds: float = 9) -> SignalRecord:
    """``signal`` as consumed by ``stage_id`` at ``at(seconds)``."""
    return evolve(signal, consumed_at=at(seconds), stage_id=stage_id)


def make_schedule(schedule_id: str, fire: float | None = 0, **changes: Any) -> ScheduleRecord:
    """An enabled ``every`` schedule of workflow ``wf``, next firing at ``at(fire)``."""
    schedule = ScheduleRecord(
        id=schedule_id,
        workflow_id="wf",
        every=timedelta(minutes=15),
        input={"pages": 3},
        config={"extract": {"model": "small"}},
        timezone="Europe/Riga",
        next_fire_at=None if fire is None else at(fire),
        created_at=T0,
        updated_at=T0,
    )
    return evolve(schedule, **changes)


class SignalScheduleCases(StoreCase):
    """Signals are buffered and consumed once; schedules are versioned and claimed once."""

    # -- signals -------------------------------------------------------------

    def test_signals_are_buffered_in_arrival_order(self) -> None:
        """Unconsumed signals come back as inserted (not by id or time), payload intact."""
        self.add_runs("run-1")
        late, early = make_signal("sig-b", created_at=at(5)), make_signal("sig-a")
        self.apply(InsertSignal(late), InsertSignal(early))
        self.apply(InsertSignal(make_signal("sig-0", name="other", payload=None)))
        with self.store.transaction() as tx:
            buffered = tx.buffered_signals("run-1")
        assert [s.id for s in buffered] == ["sig-b", "sig-a", "sig-0"]
        assert buffered[:2] == [late, early]
        assert buffered[2].payload is None
        assert all(s.is_buffered for s in buffered)

    def test_buffered_signals_are_the_runs_unconsumed_ones(self) -> None:
        """Signals of other runs and signals inserted already consumed are not buffered."""
        self.add_runs("run-1", "run-2")
        self.apply(
            InsertSignal(make_signal("sig-1")),
            InsertSignal(make_signal("sig-2", run_id="run-2")),
            InsertSignal(consumed(make_signal("sig-3"))),
        )
        with self.store.transaction() as tx:
            assert [s.id for s in tx.buffered_signals("run-1")] == ["sig-1"]
            assert [s.id for s in tx.buffered_signals("run-2")] == ["sig-2"]
            assert tx.buffered_signals("run-3") == []

    def test_consume_signal_marks_it_consumed_once(self) -> None:
        """``ConsumeSignal`` sets when and by which stage; a second one is stale."""
        self.add_runs("run-1")
        signal = make_signal("sig-1")
        self.apply(InsertSignal(signal), InsertSignal(make_signal("sig-2")))
        self.apply(ConsumeSignal(consumed(signal, "first", 7)))
        with self.store.transaction() as tx:
            assert [s.id for s in tx.buffered_signals("run-1")] == ["sig-2"]
        with pytest.raises(StaleVersionError), self.store.transaction() as tx:
            tx.apply([ConsumeSignal(consumed(signal, "second", 8))])
        assert self.store.get_signals("run-1") == [
            consumed(signal, "first", 7),
            make_signal("sig-2"),
        ]

    def test_consuming_a_missing_or_already_consumed_signal_is_stale(self) -> None:
        """No buffered signal with that id (none at all, or inserted consumed): stale."""
        self.add_runs("run-1")
        done = consumed(make_signal("sig-done"))
        self.apply(InsertSignal(done))
        for signal in (make_signal("sig-missing"), done):
            with pytest.raises(StaleVersionError), self.store.transaction() as tx:
                tx.apply([ConsumeSignal(consumed(signal, "late", 20))])
        assert self.store.get_signals("run-1") == [done]

    def test_get_signals_returns_buffered_and_consumed_in_arrival_order(self) -> None:
        """``get_signals`` lists every signal of the run, consumed ones in place."""
        self.add_runs("run-1", "run-2")
        first, second, third = (make_signal(f"sig-{n}") for n in (3, 1, 2))
        self.apply(InsertSignal(first), InsertSignal(make_signal("other", run_id="run-2")))
        self.apply(InsertSignal(second), InsertSignal(third), ConsumeSignal(consumed(second)))
        assert self.store.get_signals("run-1") == [first, consumed(second), third]
        assert [s.id for s in self.store.get_signals("run-2")] == ["other"]
        assert self.store.get_signals("run-3") == []

    def test_inserting_an_existing_signal_is_refused(self) -> None:
        """Signal ids are unique."""
        self.add_runs("run-1")
        self.apply(InsertSignal(make_signal("sig-1")))
        with pytest.raises(StoreError), self.store.transaction() as tx:
            tx.apply([InsertSignal(make_signal("sig-1", name="again"))])
        assert self.store.get_signals("run-1") == [make_signal("sig-1")]

    def test_concurrent_consumers_consume_a_signal_once(self) -> None:
        """Threads consuming the run's first buffered signal: exactly one succeeds."""
        self.add_runs("run-1")
        self.apply(InsertSignal(make_signal("sig-1")))

        def consume(index: int) -> bool:
            try:
                with self.store.transaction() as tx:
                    buffered = tx.buffered_signals("run-1")
                    if not buffered:
                        return False
                    tx.apply([ConsumeSignal(consumed(buffered[0], f"stage-{index}"))])
                    return True
            except StaleVersionError:
                return False

        assert sum(self.race(consume)) == 1
        (signal,) = self.store.get_signals("run-1")
        assert signal.consumed_at == at(9) and signal.stage_id is not None

    # -- schedules -----------------------------------------------------------

    def test_inserted_schedule_round_trips(self) -> None:
        """A schedule reads back equal: durations exact, JSON intact, times UTC."""
        every = make_schedule("every", every=timedelta(days=1, seconds=5, microseconds=7))
        cron = make_schedule(
            "cron",
            fire=None,
            cron="30 2 * * *",
            every=None,
            input=None,
            config=None,
            overlap="allow",
            catchup="all",
            enabled=False,
            last_fire_at=at(-60),
            last_run_id="run-9",
            version=4,
        )
        self.apply(InsertSchedule(every), InsertSchedule(cron))
        with self.store.transaction() as tx:
            assert tx.get_schedule("every") == every
            assert tx.get_schedule("cron") == cron
            assert tx.get_schedule("unknown") is None
        assert self.store.get_schedules() == [cron, every]
        stored = self.store.get_schedules()[0]
        assert stored.enabled is False and stored.every is None and stored.config is None

    def test_get_schedules_orders_by_id(self) -> None:
        """Every schedule, by id (byte order), whatever the insertion order."""
        ids = ["s-b", "S-z", "s-a", "s_1", "s-10", "s-2"]
        self.apply(*(InsertSchedule(make_schedule(sid)) for sid in ids))
        assert [s.id for s in self.store.get_schedules()] == sorted(ids)

    def test_update_schedule_stores_the_new_record_and_version(self) -> None:
        """``UpdateSchedule`` with the current version replaces the record."""
        schedule = make_schedule("s-1")
        self.apply(InsertSchedule(schedule))
        fired = bump(schedule, next_fire_at=at(900), last_fire_at=at(0), last_run_id="run-1")
        self.apply(UpdateSchedule(fired, expected_version=1))
        paused = bump(fired, enabled=False, next_fire_at=None, every=None, cron="0 3 * * *")
        self.apply(UpdateSchedule(paused, expected_version=2))
        assert self.store.get_schedules() == [paused]

    def test_update_schedule_with_stale_version_raises(self) -> None:
        """A version that is not current raises ``StaleVersionError`` and changes nothing."""
        schedule = make_schedule("s-1")
        self.apply(InsertSchedule(schedule), UpdateSchedule(bump(schedule), expected_version=1))
        with pytest.raises(StaleVersionError), self.store.transaction() as tx:
            tx.apply([UpdateSchedule(bump(schedule, timezone="UTC"), expected_version=1)])
        assert self.store.get_schedules() == [bump(schedule)]

    def test_update_of_missing_schedule_raises_stale_version(self) -> None:
        """Updating a schedule that does not exist is a version mismatch."""
        with pytest.raises(StaleVersionError), self.store.transaction() as tx:
            tx.apply([UpdateSchedule(bump(make_schedule("s-1")), expected_version=1)])
        assert self.store.get_schedules() == []

    def test_delete_schedule_removes_it_and_ignores_a_missing_one(self) -> None:
        """``DeleteSchedule`` removes one schedule; its id can be used again."""
        self.apply(InsertSchedule(make_schedule("s-1")), InsertSchedule(make_schedule("s-2")))
        self.apply(DeleteSchedule("s-1"), DeleteSchedule("never-was"))
        assert [s.id for s in self.store.get_schedules()] == ["s-2"]
        with self.store.transaction() as tx:
            assert tx.get_schedule("s-1") is None
        self.apply(InsertSchedule(make_schedule("s-1", cron="* * * * *", every=None)))
        assert [s.cron for s in self.store.get_schedules()] == ["* * * * *", None]

    def test_inserting_an_existing_schedule_is_refused(self) -> None:
        """Schedule ids are unique."""
        self.apply(InsertSchedule(make_schedule("s-1")))
        with pytest.raises(StoreError), self.store.transaction() as tx:
            tx.apply([InsertSchedule(make_schedule("s-1", workflow_id="other"))])
        assert self.store.get_schedules() == [make_schedule("s-1")]

    def test_due_schedules_come_earliest_first_then_by_id(self) -> None:
        """Enabled schedules firing at or before now, earliest first, ties by id."""
        fires = {"c": 10, "a": 20, "b": 10, "d": 20, "late": 21, "early": -5}
        self.apply(*(InsertSchedule(make_schedule(sid, fire)) for sid, fire in fires.items()))
        with self.store.transaction() as tx:
            due = tx.due_schedules(at(20), limit=10)
        assert [s.id for s in due] == ["early", "b", "c", "a", "d"]
        assert due[0] == make_schedule("early", -5)

    def test_due_schedules_skip_disabled_and_paused_ones_and_respect_limit(self) -> None:
        """Disabled schedules and those without a fire time are never due; at most ``limit``."""
        self.apply(
            InsertSchedule(make_schedule("disabled", 1, enabled=False)),
            InsertSchedule(make_schedule("paused", None)),
            InsertSchedule(make_schedule("s-2", 2)),
            InsertSchedule(make_schedule("s-3", 3)),
        )
        with self.store.transaction() as tx:
            assert [s.id for s in tx.due_schedules(at(9), limit=1)] == ["s-2"]
            assert [s.id for s in tx.due_schedules(at(9), limit=5)] == ["s-2", "s-3"]
            assert tx.due_schedules(at(9), limit=0) == []
            assert tx.due_schedules(at(1), limit=5) == []

    def test_due_schedules_of_other_workflows_are_left_alone(self) -> None:
        """With ``workflow_ids``, only schedules of those workflows come, in the usual order;
        ``None`` is every workflow and an empty collection none."""
        self.apply(
            InsertSchedule(make_schedule("a-1", 1, workflow_id="a")),
            InsertSchedule(make_schedule("b-0", 0, workflow_id="b")),
            InsertSchedule(make_schedule("c-2", 2, workflow_id="c")),
            InsertSchedule(make_schedule("a-3", 3, workflow_id="a")),
        )
        with self.store.transaction() as tx:
            assert [s.id for s in tx.due_schedules(at(9), 10, ["a", "c"])] == ["a-1", "c-2", "a-3"]
            assert [s.id for s in tx.due_schedules(at(9), 1, frozenset({"a", "c"}))] == ["a-1"]
            assert [s.id for s in tx.due_schedules(at(9), 10, {"b", "unknown"})] == ["b-0"]
            assert tx.due_schedules(at(9), 10, ()) == []
            every = [s.id for s in tx.due_schedules(at(9), 10, None)]
        assert every == ["b-0", "a-1", "c-2", "a-3"]

    def test_due_schedules_are_claimed_once_across_threads(self) -> None:
        """Ticks racing to fire due schedules (moving their next fire time) fire each once."""
        ids = [f"s-{i:02}" for i in range(24)]
        self.apply(*(InsertSchedule(make_schedule(sid, i % 3)) for i, sid in enumerate(ids)))

        def tick(_: int) -> list[str]:
            fired: list[str] = []
            while True:
                with self.store.transaction() as tx:
                    due = tx.due_schedules(at(10), limit=2)
                    tx.apply(
                        [UpdateSchedule(bump(s, next_fire_at=at(900)), s.version) for s in due]
                    )
                if not due:
                    return fired
                fired += [s.id for s in due]

        fired = [sid for ids_fired in self.race(tick) for sid in ids_fired]
        assert sorted(fired) == ids

    def test_a_tick_holding_due_schedules_keeps_them_from_another(self) -> None:
        """While one transaction holds the schedules it claimed, a concurrent one gets others
        (or waits for it and then finds them no longer due)."""
        self.apply(InsertSchedule(make_schedule("s-1", 1)), InsertSchedule(make_schedule("s-2", 2)))
        claimed = threading.Event()
        got: dict[str, list[str]] = {}

        def first() -> None:
            with self.store.transaction() as tx:
                due = tx.due_schedules(at(10), limit=1)
                tx.apply([UpdateSchedule(bump(s, next_fire_at=at(900)), s.version) for s in due])
                got["first"] = [s.id for s in due]
                claimed.set()
                time.sleep(0.2)  # still holding them while the second tick looks

        def second() -> None:
            assert claimed.wait(30)
            with self.store.transaction() as tx:
                due = tx.due_schedules(at(10), limit=1)
                tx.apply([UpdateSchedule(bump(s, next_fire_at=at(900)), s.version) for s in due])
                got["second"] = [s.id for s in due]

        self.race(lambda i: (first, second)[i](), threads=2)
        assert got == {"first": ["s-1"], "second": ["s-2"]}

    def test_get_schedule_waits_for_a_tick_holding_it(self) -> None:
        """A transaction reading a schedule another one holds sees what that one commits."""
        schedule = make_schedule("s-1", 1)
        self.apply(InsertSchedule(schedule))
        claimed = threading.Event()

        def tick() -> None:
            with self.store.transaction() as tx:
                (due,) = tx.due_schedules(at(10), limit=5)
                claimed.set()
                time.sleep(0.2)
                tx.apply([UpdateSchedule(bump(due, next_fire_at=at(900)), due.version)])

        def read() -> ScheduleRecord | None:
            assert claimed.wait(30)
            with self.store.transaction() as tx:
                return tx.get_schedule("s-1")

        results = self.race(lambda i: tick() if i == 0 else read(), threads=2)
        assert results[1] == bump(schedule, next_fire_at=at(900))

    # -- rollback ------------------------------------------------------------

    def test_exception_rolls_back_signal_and_schedule_effects(self) -> None:
        """An exception undoes inserts, consumption, updates and deletes of both."""
        self.add_runs("run-1")
        signal, kept, gone = make_signal("sig-1"), make_schedule("kept"), make_schedule("gone")
        self.apply(InsertSignal(signal), InsertSchedule(kept), InsertSchedule(gone))
        with pytest.raises(RuntimeError, match="boom"), self.store.transaction() as tx:
            tx.apply(
                [
                    InsertSignal(make_signal("sig-2")),
                    ConsumeSignal(consumed(signal)),
                    InsertSchedule(make_schedule("new")),
                    UpdateSchedule(bump(kept, enabled=False), expected_version=1),
                    DeleteSchedule("gone"),
                ]
            )
            assert tx.buffered_signals("run-1") == [make_signal("sig-2")]
            assert tx.get_schedule("gone") is None
            raise RuntimeError("boom")
        assert self.store.get_signals("run-1") == [signal]
        assert self.store.get_schedules() == [gone, kept]
        with self.store.transaction() as tx:
            assert tx.buffered_signals("run-1") == [signal]

    def test_failed_effect_rolls_back_earlier_signal_and_schedule_effects(self) -> None:
        """A stale ``ConsumeSignal`` or ``UpdateSchedule`` undoes the effects before it."""
        self.add_runs("run-1")
        self.apply(InsertSchedule(make_schedule("s-1")))
        stale_consume = ConsumeSignal(consumed(make_signal("missing")))
        stale_update = UpdateSchedule(bump(make_schedule("s-1", version=3)), expected_version=3)
        for stale in (stale_consume, stale_update):
            with pytest.raises(StaleVersionError), self.store.transaction() as tx:
                tx.apply(
                    [
                        InsertSignal(make_signal("sig-1")),
                        InsertSchedule(make_schedule("s-2")),
                        UpdateRun(bump(make_run(), total_tokens=5), expected_version=1),
                        stale,
                    ]
                )
        assert self.store.get_signals("run-1") == []
        assert self.store.get_schedules() == [make_schedule("s-1")]
        assert self.store.get_run("run-1") == make_run()
        self.apply(InsertRun(make_run("run-2")), InsertSignal(make_signal("sig-1", "run-2")))
        assert [s.id for s in self.store.get_signals("run-2")] == ["sig-1"]
