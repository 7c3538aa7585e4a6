"""What an LLM batch stage keeps in its ``suspended_state`` (SPEC §12, §12.1), and the
pure rules over it: the tag of a generation, the polling gaps, the items' final results.

The state is written three ways, each in its own transaction: by ``batch.intent``
before a batch is submitted (``batch_id`` still ``None``), by the finish of the
attempt that submitted it (``Suspend``), and by each poll (``NotReady(state=...)``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from attrs import field, frozen
from returns.result import Failure, Success

from kernel.ai.batch import BatchState, ItemFailed, ItemSucceeded
from kernel.convert import structure, to_json
from kernel.copying import evolve
from kernel.records import Json

MAX_GAP_FACTOR = 10
"""The longest gap between two status checks, in poll intervals."""
GAP_GROWTH = 1.5
"""Each gap between status checks is this many times the one before."""


def batch_tag(run_id: str, stage_id: str, stage_record_id: str, generation: int) -> str:
    """The label a generation's batch is submitted under: a hash of the run, the stage,
    its record (new on every rerun, so a rerun never adopts an old run's batch) and the
    generation.

    >>> batch_tag("r1", "summarise", "s1", 1) == batch_tag("r1", "summarise", "s1", 1)
    True
    >>> batch_tag("r1", "summarise", "s1", 1) == batch_tag("r1", "summarise", "s2", 1)
    False
    >>> batch_tag("r1", "summarise", "s1", 1)[:4]
    'wfk-'
    """
    key = "\x1f".join((run_id, stage_id, stage_record_id, str(generation)))
    return "wfk-" + hashlib.sha256(key.encode()).hexdigest()[:40]


@frozen(kw_only=True)
class Generation:
    """A batch of an earlier generation: where its results are, and how it ended."""

    generation: int
    tag: str
    batch_id: str
    custom_ids: list[str] | None
    """The items it held (``None``: every item ``build`` returned)."""
    state: BatchState


@frozen(kw_only=True)
class BatchProgress:
    """An LLM batch stage's ``suspended_state``.

    ``batch_id`` is ``None`` between ``batch.intent`` and the moment the
    provider's id is known: an attempt that finds it so asks ``find(tag)``.
    """

    provider: str
    tag: str
    generation: int
    batch_id: str | None = None
    submitted_at: datetime | None = None
    """When the current generation's batch was submitted (or adopted)."""
    first_submitted_at: datetime | None = None
    """When the first generation was: ``max_wait`` runs from here."""
    custom_ids: list[str] | None = None
    """The items of the current generation (``None``: all of them)."""
    earlier: list[Generation] = field(factory=list)
    gap_seconds: float | None = None
    """The last gap between status checks (``None``: none yet)."""

    def to_state(self) -> dict[str, Json]:
        """The JSON form kept in ``suspended_state``."""
        state: dict[str, Json] = to_json(self)
        return state

    def submitted(self, batch_id: str, now: datetime, poll_interval: timedelta) -> BatchProgress:
        """The current generation's batch is known: ``batch_id``, submitted (or found) now."""
        return evolve(
            self,
            batch_id=batch_id,
            submitted_at=now,
            first_submitted_at=self.first_submitted_at or now,
            gap_seconds=poll_interval.total_seconds(),
        )

    def next_generation(self, tag: str, failed: Sequence[str], state: BatchState) -> BatchProgress:
        """The intent of the next generation: the items that ``failed`` in this one."""
        assert self.batch_id is not None, "only a submitted generation has a next one"
        done = Generation(
            generation=self.generation,
            tag=self.tag,
            batch_id=self.batch_id,
            custom_ids=self.custom_ids,
            state=state,
        )
        return evolve(
            self,
            tag=tag,
            generation=self.generation + 1,
            batch_id=None,
            submitted_at=None,
            custom_ids=sorted(failed),
            earlier=[*self.earlier, done],
            gap_seconds=None,
        )


def read_progress(state: Json) -> BatchProgress | None:
    """The progress kept in ``state``, or ``None`` if it holds none (a first attempt).

    >>> read_progress(None) is None
    True
    >>> read_progress({"provider": "fakebatch", "tag": "t", "generation": 1}).batch_id is None
    True
    """
    if not isinstance(state, Mapping) or "tag" not in state:
        return None
    match structure(state, BatchProgress, "suspended_state"):
        case Success(progress):
            found: BatchProgress = progress
            return found
        case Failure(problems):
            raise ValueError("; ".join(problems))
    return None  # pragma: no cover - the match above is exhaustive


def intents_of(state: Json) -> int:
    """How many ``batch.intent`` writes a stage record holds: each writes the next
    generation, so it is the generation recorded (0 for any other state).

    >>> intents_of({"provider": "p", "tag": "t", "generation": 2}), intents_of({"tag": 1})
    (2, 0)
    """
    try:
        progress = read_progress(state)
    except ValueError:
        return 0
    return progress.generation if progress is not None else 0


def next_gap(previous: timedelta, poll_interval: timedelta) -> timedelta:
    """The gap before the next status check: 1.5 times the one before, at most 10 poll
    intervals (the poll also never passes the ``max_wait`` deadline).

    >>> minute = timedelta(minutes=1)
    >>> [next_gap(minute * f, minute) / minute for f in (1, 1.5, 8, 10)]
    [1.5, 2.25, 10.0, 10.0]
    """
    return min(previous * GAP_GROWTH, poll_interval * MAX_GAP_FACTOR)


Result = ItemSucceeded | ItemFailed


def missing(state: BatchState) -> ItemFailed:
    """What an item a stopped batch did not answer counts as.

    >>> missing("expired")
    ItemFailed(code='BATCH_EXPIRED', message='the batch ended expired without this item')
    """
    if state == "ended":
        return ItemFailed("BATCH_ITEM_MISSING", "the batch ended without a result for this item")
    return ItemFailed("BATCH_" + state.upper(), f"the batch ended {state} without this item")


def generation_results(
    custom_ids: Sequence[str], found: Mapping[str, Result], state: BatchState
) -> dict[str, Result]:
    """Every item of one generation with its result; a missing one is failed."""
    return {custom_id: found.get(custom_id) or missing(state) for custom_id in custom_ids}


def merged(by_generation: Sequence[Mapping[str, Result]]) -> dict[str, Result]:
    """Each item's result from the last generation that held it."""
    items: dict[str, Result] = {}
    for results in by_generation:
        items.update(results)
    return items


__all__ = [
    "BatchProgress",
    "Generation",
    "batch_tag",
    "generation_results",
    "merged",
    "missing",
    "next_gap",
    "read_progress",
]
