"""Conformance cases: the transactional outbox and idempotency keys."""

from __future__ import annotations

from typing import Any

import pytest
from attrs import evolve

from kernel.convert import to_json
from kernel.effects import (
    AppendOutbox,
    CompleteIdempotency,
    ReleaseIdempotency,
    UpdateOutbox,
)
from kernel.events import StageProgress
from kernel.records import OutboxEvent
from testing.store_cases.base import LEASE, THREADS, StoreCase, append, at, key


class OutboxCases(StoreCase):
    """Outbox numbering, claims and dead letters; idempotency keys (SPEC §5.9, §6.2, §6.3)."""

    def event(self, event_id: str) -> OutboxEvent:
        """The stored outbox event ``event_id``."""
        return next(event for event in self.store.get_outbox() if event.id == event_id)

    # -- appending ---------------------------------------------------------

    def test_append_outbox_numbers_each_run_from_one(self) -> None:
        """Sequences count 1, 2, 3... separately for each run."""
        self.add_runs("run-1", "run-2")
        self.apply(append("a1"), append("b1", "run-2"), append("a2"))
        self.apply(append("a3"), append("b2", "run-2"))
        numbers = [(e.workflow_run_id, e.sequence) for e in self.store.get_outbox()]
        assert numbers == [("run-1", 1), ("run-2", 1), ("run-1", 2), ("run-1", 3), ("run-2", 2)]

    def test_append_outbox_writes_the_event_as_a_record(self) -> None:
        """The record carries the event's type, run, time and causation; unpublished."""
        self.add_runs("run-1")
        effect = append("ev-1", seconds=7)
        self.apply(effect)
        expected = OutboxEvent(
            id="ev-1",
            workflow_run_id="run-1",
            sequence=1,
            event_type="workflow:started",
            payload={"type": "workflow:started", **to_json(effect.event)},
            causation_id="cmd-ev-1",
            occurred_at=at(7),
        )
        assert self.store.get_outbox() == [expected]

    def test_append_outbox_payload_is_type_plus_event_json(self) -> None:
        """The payload is ``{"type": event.type, **to_json(event)}``."""
        self.add_runs("run-1")
        event = StageProgress(
            workflow_run_id="run-1",
            timestamp=at(1),
            stage_id="extract",
            progress=0.5,
            message="half",
            details={"pages": [1, 2], "ok": True, "ratio": 0.25, "note": None},
        )
        self.apply(AppendOutbox(event, event_id="ev-1", causation_id="cmd"))
        assert self.store.get_outbox()[0].payload == {"type": "stage:progress", **to_json(event)}

    def test_appends_of_one_transaction_keep_their_order_across_applies(self) -> None:
        """Events appended by several ``apply`` calls of one transaction (a job's finish
        and the next job's start) are numbered per run after those already stored, and
        stored in the order appended."""
        self.add_runs("run-1", "run-2")
        self.apply(append("a1"))
        with self.store.transaction() as tx:
            tx.apply([append("a2"), append("b1", "run-2")])
            tx.apply([append("b2", "run-2")])
            tx.apply([append("a3")])
        stored = [(e.id, e.sequence) for e in self.store.get_outbox()]
        assert stored == [("a1", 1), ("a2", 2), ("b1", 1), ("b2", 2), ("a3", 3)]

    def test_a_claim_sees_the_events_its_transaction_appended(self) -> None:
        """Reads in the appending transaction see its events, numbered and in order."""
        self.add_runs("run-1")
        self.apply(append("a1"))
        with self.store.transaction() as tx:
            tx.apply([append("a2"), append("a3")])
            claimed = tx.claim_outbox(at(0), 10, LEASE)
            tx.apply([append("a4")])
        assert [(e.id, e.sequence) for e in claimed] == [("a1", 1), ("a2", 2), ("a3", 3)]
        assert [e.sequence for e in self.store.get_outbox("run-1")] == [1, 2, 3, 4]

    def test_outbox_sequences_stay_gap_free_under_concurrent_appends(self) -> None:
        """Threads appending to one run get each number exactly once."""
        self.add_runs("run-1")

        def append_five(thread: int) -> None:
            for i in range(5):
                self.apply(append(f"ev-{thread}-{i}"))

        self.race(append_five)
        sequences = [event.sequence for event in self.store.get_outbox("run-1")]
        assert sequences == list(range(1, 5 * THREADS + 1))

    def test_rolled_back_append_leaves_no_gap(self) -> None:
        """A sequence number used by a rolled-back transaction is used again."""
        self.add_runs("run-1")
        self.apply(append("ev-1"))
        with pytest.raises(RuntimeError), self.store.transaction() as tx:
            tx.apply([append("ev-lost")])
            raise RuntimeError("boom")
        self.apply(append("ev-2"))
        assert [(e.id, e.sequence) for e in self.store.get_outbox()] == [("ev-1", 1), ("ev-2", 2)]

    def test_get_outbox_for_a_run_is_in_sequence_order(self) -> None:
        """``get_outbox(run_id)`` lists only that run's events, by sequence."""
        self.add_runs("run-1", "run-2")
        self.apply(append("a1"), append("b1", "run-2"), append("a2"))
        assert [event.id for event in self.store.get_outbox("run-1")] == ["a1", "a2"]
        assert self.store.get_outbox("missing") == []

    # -- claims ------------------------------------------------------------

    def test_claim_outbox_returns_unpublished_events_in_insertion_order(self) -> None:
        """Claims follow insertion order across runs, up to ``limit``."""
        self.add_runs("run-1", "run-2")
        self.apply(append("a1"), append("b1", "run-2"), append("a2"), append("b2", "run-2"))
        with self.store.transaction() as tx:
            claimed = tx.claim_outbox(at(0), 3, LEASE)
        assert claimed == self.store.get_outbox()[:3]

    def test_claim_outbox_skips_events_held_by_a_live_claim(self) -> None:
        """An event claimed by another flush is not offered again while its lease lasts."""
        self.add_runs("run-1", "run-2")
        self.apply(append("a1"), append("b1", "run-2"))
        assert self.claim(0, limit=1) == ["a1"]
        assert self.claim(1) == ["b1"]
        assert self.claim(2) == []

    def test_claim_outbox_holds_back_later_events_of_a_held_run(self) -> None:
        """Behind an event claimed elsewhere, the rest of its run waits (per-run order)."""
        self.add_runs("run-1", "run-2")
        self.apply(append("a1"), append("a2"), append("b1", "run-2"), append("a3"))
        assert self.claim(0, limit=1) == ["a1"]
        assert self.claim(1) == ["b1"]

    def test_claim_outbox_offers_events_again_once_the_lease_passes(self) -> None:
        """A claim lasts ``lease``; from its end the events can be claimed again."""
        self.add_runs("run-1")
        self.apply(append("a1"), append("a2"))
        assert self.claim(0, limit=1) == ["a1"]
        ends = LEASE.total_seconds()
        assert self.claim(ends - 1) == []
        assert self.claim(ends) == ["a1", "a2"]

    def test_update_outbox_ends_the_claim(self) -> None:
        """Recording a failed attempt releases the event for the next flush at once."""
        self.add_runs("run-1")
        self.apply(append("a1"))
        assert self.claim(0) == ["a1"]
        self.apply(UpdateOutbox(evolve(self.event("a1"), retry_count=1)))
        assert self.claim(1) == ["a1"]
        assert self.event("a1").retry_count == 1

    def test_a_flush_records_each_events_own_outcome(self) -> None:
        """Publication records of several events in one ``apply`` (one flush) each keep
        their own outcome and end their claim; other events are left as they were."""
        self.add_runs("run-1", "run-2")
        self.apply(append("a1"), append("a2"), append("b1", "run-2"), append("b2", "run-2"))
        assert self.claim(0, limit=3) == ["a1", "a2", "b1"]
        self.apply(
            UpdateOutbox(evolve(self.event("a1"), published_at=at(1))),
            UpdateOutbox(evolve(self.event("a2"), retry_count=1)),
            UpdateOutbox(evolve(self.event("b1"), retry_count=3, dlq_at=at(2))),
        )
        outcomes = {
            e.id: (e.published_at, e.retry_count, e.dlq_at) for e in self.store.get_outbox()
        }
        assert outcomes == {
            "a1": (at(1), 0, None),
            "a2": (None, 1, None),
            "b1": (None, 3, at(2)),
            "b2": (None, 0, None),
        }
        assert self.claim(1) == ["a2", "b2"]

    def test_claim_outbox_skips_published_and_dead_lettered_events(self) -> None:
        """Published and dead-lettered events are never claimed."""
        self.add_runs("run-1", "run-2", "run-3")
        self.apply(append("a1"), append("b1", "run-2"), append("c1", "run-3"))
        self.apply(
            UpdateOutbox(evolve(self.event("a1"), published_at=at(1))),
            UpdateOutbox(evolve(self.event("b1"), retry_count=3, dlq_at=at(1))),
        )
        assert self.claim(2) == ["c1"]

    def test_rolled_back_claim_releases_its_events(self) -> None:
        """A claim made in a transaction that rolls back never happened."""
        self.add_runs("run-1")
        self.apply(append("a1"))
        with pytest.raises(RuntimeError), self.store.transaction() as tx:
            assert [event.id for event in tx.claim_outbox(at(0), 10, LEASE)] == ["a1"]
            raise RuntimeError("boom")
        assert self.claim(1) == ["a1"]

    def test_claim_outbox_is_exclusive_across_threads(self) -> None:
        """Flushes claiming concurrently never claim the same event."""
        self.add_runs(*(f"run-{r}" for r in range(10)))
        self.apply(*(append(f"ev-{r}-{i}", f"run-{r}") for i in range(4) for r in range(10)))
        claims = self.race(lambda _: self.claim(0, limit=5))
        claimed = [event_id for ids in claims for event_id in ids]
        assert claimed and len(claimed) == len(set(claimed))

    def test_dead_letters_lists_dead_lettered_events_in_insertion_order(self) -> None:
        """``dead_letters`` returns dead-lettered events by insertion, up to ``limit``."""
        self.add_runs("run-1", "run-2")
        self.apply(append("a1"), append("b1", "run-2"), append("a2"))
        self.apply(
            *(
                UpdateOutbox(evolve(self.event(eid), retry_count=3, dlq_at=at(5)))
                for eid in ("a2", "a1")
            )
        )
        with self.store.transaction() as tx:
            assert [event.id for event in tx.dead_letters(10)] == ["a1", "a2"]
            assert [event.id for event in tx.dead_letters(1)] == ["a1"]

    # -- idempotency -------------------------------------------------------

    def test_acquire_idempotency_returns_none_for_a_new_key(self) -> None:
        """The first caller gets ``None``: it now holds the key."""
        with self.store.transaction() as tx:
            assert tx.acquire_idempotency(key()) is None
            assert tx.get_idempotency("key-1", "run.create") == key()

    def test_acquire_idempotency_returns_the_existing_record(self) -> None:
        """A later caller gets the record already stored, which is kept."""
        with self.store.transaction() as tx:
            tx.acquire_idempotency(key(result={"first": True}))
        with self.store.transaction() as tx:
            assert tx.acquire_idempotency(key(result=None)) == key(result={"first": True})

    def test_idempotency_keys_are_per_command_type(self) -> None:
        """One key used with two command types makes two records."""
        other: Any = evolve(key(), command_type="job.execute")
        with self.store.transaction() as tx:
            assert tx.acquire_idempotency(key()) is None
            assert tx.acquire_idempotency(other) is None
            assert tx.get_idempotency("key-1", "job.execute") == other

    def test_complete_idempotency_stores_the_cached_result(self) -> None:
        """``CompleteIdempotency`` marks the key completed with its result."""
        done = key(state="COMPLETED", result={"workflow_run_id": "run-1", "status": "PENDING"})
        with self.store.transaction() as tx:
            tx.acquire_idempotency(key())
            tx.apply([CompleteIdempotency(done)])
        with self.store.transaction() as tx:
            assert tx.get_idempotency("key-1", "run.create") == done
            assert tx.acquire_idempotency(key()) == done

    def test_release_idempotency_frees_the_key(self) -> None:
        """After ``ReleaseIdempotency`` the key can be acquired again."""
        with self.store.transaction() as tx:
            tx.acquire_idempotency(key())
        self.apply(ReleaseIdempotency("key-1", "run.create"))
        with self.store.transaction() as tx:
            assert tx.get_idempotency("key-1", "run.create") is None
            assert tx.acquire_idempotency(key()) is None

    def test_release_idempotency_keeps_a_completed_key(self) -> None:
        """A key whose command committed stays, so the retry of a caller that saw an
        error after the commit (a lost answer) replays the result."""
        done = key(state="COMPLETED", result={"workflow_run_id": "run-1", "status": "PENDING"})
        with self.store.transaction() as tx:
            tx.acquire_idempotency(key())
            tx.apply([CompleteIdempotency(done)])
        self.apply(ReleaseIdempotency("key-1", "run.create"))
        with self.store.transaction() as tx:
            assert tx.get_idempotency("key-1", "run.create") == done

    def test_acquire_idempotency_is_exclusive_across_threads(self) -> None:
        """Of threads acquiring one key concurrently, exactly one holds it."""

        def acquire(_: int) -> bool:
            with self.store.transaction() as tx:
                return tx.acquire_idempotency(key()) is None

        assert sorted(self.race(acquire)) == [False] * (THREADS - 1) + [True]
