"""The simulation's AI and batch providers: the user's providers (fakes, usually),
wrapped so that ``provider`` faults can fail them, and watched.

:class:`ProviderFaults` holds what the next calls will suffer (armed by a
``fault provider ...`` step) and what the providers did: the calls answered
this step (each must reach the usage ledger) and every batch accepted, by tag
(each intent's batch must be submitted once). :class:`FlakyAI` and
:class:`FlakyBatch` wrap one provider each and keep its ``name``, so stage
code and the kernel see the provider they were configured with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import attrs

from kernel.ai.batch import BatchItem, BatchStatus, ItemFailed, ItemSucceeded
from kernel.ai.config import AIConfig
from kernel.ai.errors import ProviderError
from kernel.ai.ports import AIProvider, BatchProvider, Unknown
from kernel.ai.types import AIRequest, AIResponse, EmbedRequest, EmbedResponse
from testing.batch import SimulatedCrash

AI_FAULTS = ("rate limit next", "answer lost")
"""What a ``provider`` fault may do to an AI provider's next calls."""

BATCH_FAULTS = ("submit uncertain", "crash after submit", "status fails next", "cancel fails next")
"""What a ``provider`` fault may do to a batch provider's next calls."""


class ProviderFaults:
    """What the next provider calls suffer, and what the providers did."""

    def __init__(self) -> None:
        self.rate_limited = 0
        """The next this many AI calls fail with a retryable rate limit, unsent."""
        self.answers_lost = 0
        """The next this many AI calls reach the provider (paid), then fail."""
        self.submit: str | None = None
        """The next batch submission: ``uncertain`` (accepted, then an error) or
        ``crash`` (accepted, then the worker dies)."""
        self.status_failing = 0
        self.cancel_failing = 0
        self.answered = 0
        """AI calls answered (returned to stage code) since the checker last looked."""
        self.accepted: dict[str, list[str]] = {}
        """Tag → the batch ids the provider accepted under it (more than one: paid twice)."""
        self.results: dict[str, Mapping[str, ItemSucceeded | ItemFailed]] = {}
        """Tag → the results the provider handed out for its batch."""
        self._tags: dict[str, str] = {}

    def arm(self, words: Sequence[str]) -> str | None:
        """Arm ``fault provider <words>``; what the trace says, ``None`` if unknown."""
        match list(words):
            case ["rate", "limit", "next", count]:
                self.rate_limited = int(count)
                return f"the next {count} AI calls are rate limited"
            case ["answer", "lost"]:
                self.answers_lost = 1
                return "the next AI call is answered, but the answer is lost"
            case ["submit", "uncertain"]:
                self.submit = "uncertain"
                return "the next batch is accepted, but the answer is lost"
            case ["crash", "after", "submit"]:
                self.submit = "crash"
                return "the worker that submits the next batch dies once it is accepted"
            case ["status", "fails", "next", count]:
                self.status_failing = int(count)
                return f"the next {count} batch status checks fail"
            case ["cancel", "fails", "next", count]:
                self.cancel_failing = int(count)
                return f"the next {count} batch cancels fail"
        return None

    def heal(self) -> None:
        self.rate_limited = self.answers_lost = 0
        self.status_failing = self.cancel_failing = 0
        self.submit = None

    def take_answered(self) -> int:
        answered, self.answered = self.answered, 0
        return answered

    def twice(self) -> str | None:
        """A tag whose batch the provider accepted more than once, said as an invariant."""
        for tag, batches in self.accepted.items():
            if len(batches) > 1:
                return (
                    f"a batch is submitted once per intent: tag {tag} was submitted "
                    f"{len(batches)} times ({', '.join(batches)})"
                )
        return None


def _failure(what: str) -> ProviderError:
    return ProviderError(f"simulated provider failure: {what}", retryable=True)


@attrs.define
class FlakyAI:
    """An AI provider that fails as :class:`ProviderFaults` says, else asks ``inner``."""

    inner: AIProvider
    faults: ProviderFaults
    name: str = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.name = self.inner.name

    def _before(self) -> None:
        if self.faults.rate_limited > 0:
            self.faults.rate_limited -= 1
            raise _failure("429 rate limited")

    def _after(self) -> None:
        if self.faults.answers_lost > 0:
            self.faults.answers_lost -= 1
            raise _failure("the connection dropped after the provider answered (paid)")
        self.faults.answered += 1

    def generate(self, request: AIRequest) -> AIResponse:
        self._before()
        response = self.inner.generate(request)
        self._after()
        return response

    def embed(self, request: EmbedRequest) -> EmbedResponse:
        self._before()
        response = self.inner.embed(request)
        self._after()
        return response


@attrs.define
class FlakyBatch:
    """A batch provider that fails as :class:`ProviderFaults` says, else asks ``inner``;
    it notes each accepted batch and the results it handed out, by tag."""

    inner: BatchProvider
    faults: ProviderFaults
    name: str = attrs.field(init=False)
    max_items: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.name = self.inner.name
        self.max_items = self.inner.max_items

    def submit(self, items: Sequence[BatchItem], tag: str) -> str:
        faults = self.faults
        try:
            batch_id = self.inner.submit(items, tag)
        except SimulatedCrash:  # the fake's own crash_after_submit: it accepted the batch
            faults.accepted.setdefault(tag, []).append("one accepted as its submitter died")
            raise
        faults.accepted.setdefault(tag, []).append(batch_id)
        faults._tags[batch_id] = tag
        then, faults.submit = faults.submit, None
        if then == "uncertain":
            raise _failure(f"the provider accepted {batch_id}, but the answer was lost")
        if then == "crash":
            raise SimulatedCrash(f"{self.name} accepted batch {batch_id}, then the worker died")
        return batch_id

    def find(self, tag: str) -> str | Literal[Unknown.UNKNOWN] | None:
        found = self.inner.find(tag)
        if isinstance(found, str):
            self.faults._tags[found] = tag
        return found

    def status(self, batch_id: str) -> BatchStatus:
        if self.faults.status_failing > 0:
            self.faults.status_failing -= 1
            raise _failure("503 on the status check")
        return self.inner.status(batch_id)

    def results(self, batch_id: str) -> Mapping[str, ItemSucceeded | ItemFailed]:
        found = self.inner.results(batch_id)
        tag = self.faults._tags.get(batch_id)
        if tag is not None:
            self.faults.results[tag] = dict(found)
        return found

    def cancel(self, batch_id: str) -> None:
        if self.faults.cancel_failing > 0:
            self.faults.cancel_failing -= 1
            raise _failure("503 on the cancel")
        self.inner.cancel(batch_id)


def wrap(
    ai: AIConfig | None, batch: Sequence[BatchProvider], faults: ProviderFaults
) -> tuple[AIConfig | None, list[BatchProvider]]:
    """The config and providers the simulation's kernel uses: each provider wrapped."""
    flaky_ai = None
    if ai is not None:
        flaky_ai = attrs.evolve(ai, providers=[FlakyAI(p, faults) for p in ai.providers])
    return flaky_ai, [FlakyBatch(p, faults) for p in batch]


__all__ = ["AI_FAULTS", "BATCH_FAULTS", "FlakyAI", "FlakyBatch", "ProviderFaults", "wrap"]
