"""``FakeBatchProvider``: a batch provider for tests, with the crashes and failures that
LLM batch stages must survive (SPEC §12.1).

Its state lives in memory, or, with ``state_path=``, in a JSON file that
several processes share (under a file lock): a worker killed right after the
provider accepted a batch leaves that batch for the next worker to find.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from kernel.ai.batch import BatchItem, BatchStatus, ItemFailed, ItemSucceeded
from kernel.ai.ports import UNKNOWN, Unknown
from kernel.ai.types import AIResponse, Usage

FAKE_USAGE = Usage(10, 5)
"""What each succeeded item of the fake uses."""


class SimulatedCrash(BaseException):
    """Raised by ``FakeBatchProvider(crash_after_submit=N)`` right after it accepted a
    batch. A ``BaseException``: the stage runner does not catch it, so it escapes like
    a dead worker and leaves the job leased (``lease.reapStale`` gives it back)."""


def _empty_state(crash_after_submit: int) -> dict[str, Any]:
    return {
        "next_id": 1,
        "batches": {},
        "submitted": [],
        "cancelled": [],
        "failed_once": [],
        "crashes_left": crash_after_submit,
    }


class FakeBatchProvider:
    """A batch provider that answers every item, on a script.

    - the ``finish_after_polls``-th ``status`` call of a batch says ``ended``;
    - items in ``fail_items`` fail the first time this fake is asked for their
      ``custom_id``, items in ``fail_always`` every time (code ``FAKE_ITEM_FAILED``);
      each succeeded item used ``Usage(10, 5)`` and its text is
      ``"reply to <custom_id>"``;
    - ``crash_after_submit=N``: the next N submissions raise :class:`SimulatedCrash`
      right after the batch was accepted;
    - ``find_supported=False``: ``find`` returns ``UNKNOWN`` (as Anthropic's does);
    - ``.submitted`` lists the tags submitted, ``.cancelled`` the batch ids cancelled.

    >>> fake = FakeBatchProvider()
    >>> from kernel.ai.types import AIRequest, Message
    >>> batch_id = fake.submit([BatchItem("a", AIRequest("m", [Message("user", "hi")]))], "t1")
    >>> fake.find("t1") == batch_id, fake.status(batch_id).state
    (True, 'ended')
    >>> fake.results(batch_id)["a"].response.text
    'reply to a'
    """

    def __init__(
        self,
        name: str = "fakebatch",
        finish_after_polls: int = 1,
        fail_items: Collection[str] = (),
        fail_always: Collection[str] = (),
        max_items: int = 50_000,
        crash_after_submit: int = 0,
        find_supported: bool = True,
        *,
        state_path: str | Path | None = None,
    ) -> None:
        if isinstance(finish_after_polls, bool) or finish_after_polls < 1:
            raise ValueError(f"finish_after_polls must be an int >= 1, got {finish_after_polls!r}")
        self.name = name
        self.max_items = max_items
        self.finish_after_polls = finish_after_polls
        self.fail_items = frozenset(fail_items)
        self.fail_always = frozenset(fail_always)
        self.find_supported = find_supported
        self._path = Path(state_path) if state_path is not None else None
        self._memory = _empty_state(crash_after_submit)
        if self._path is not None and not self._path.exists():
            self._path.write_text(json.dumps(self._memory))

    # -- state -----------------------------------------------------------------------

    @contextmanager
    def _state(self) -> Iterator[dict[str, Any]]:
        """The fake's state, for reading and changing (locked across processes)."""
        if self._path is None:
            yield self._memory
            return
        with self._path.with_suffix(".lock").open("w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            state = json.loads(self._path.read_text())
            yield state
            self._path.write_text(json.dumps(state))

    @property
    def submitted(self) -> list[str]:
        """The tags of every accepted submission, in order."""
        with self._state() as state:
            return list(state["submitted"])

    @property
    def cancelled(self) -> list[str]:
        """The ids of the batches ``cancel`` was called for, in order."""
        with self._state() as state:
            return list(state["cancelled"])

    # -- the port ----------------------------------------------------------------------

    def submit(self, items: Sequence[BatchItem], tag: str) -> str:
        if len(items) > self.max_items:
            raise ValueError(f"{self.name}: {len(items)} items, at most {self.max_items}")
        with self._state() as state:
            batch_id = f"{self.name}-batch-{state['next_id']}"
            state["next_id"] += 1
            state["batches"][batch_id] = {
                "tag": tag,
                "items": [[item.custom_id, item.request.model] for item in items],
                "polls": 0,
                "state": "in_progress",
                "results": None,
            }
            state["submitted"].append(tag)
            crash = state["crashes_left"] > 0
            if crash:
                state["crashes_left"] -= 1
        if crash:
            raise SimulatedCrash(f"{self.name} accepted batch {batch_id}, then the worker died")
        return batch_id

    def find(self, tag: str) -> str | Literal[Unknown.UNKNOWN] | None:
        if not self.find_supported:
            return UNKNOWN
        with self._state() as state:
            found = [key for key, batch in state["batches"].items() if batch["tag"] == tag]
        return found[-1] if found else None

    def status(self, batch_id: str) -> BatchStatus:
        with self._state() as state:
            batch = self._batch(state, batch_id)
            if batch["state"] == "in_progress":
                batch["polls"] += 1
                if batch["polls"] >= self.finish_after_polls:
                    batch["state"] = "ended"
            total = len(batch["items"])
            done = total if batch["state"] == "ended" else 0
            return BatchStatus(
                batch["state"],
                {"succeeded": done, "failed": 0, "in_progress": total - done},
            )

    def results(self, batch_id: str) -> Mapping[str, ItemSucceeded | ItemFailed]:
        with self._state() as state:
            batch = self._batch(state, batch_id)
            if batch["state"] != "ended":
                return {}  # stopped before any item was answered
            if batch["results"] is None:
                batch["results"] = {
                    custom_id: self._fails(state, custom_id) for custom_id, _ in batch["items"]
                }
            outcome: dict[str, bool] = batch["results"]
            return {
                custom_id: self._result(custom_id, model, outcome[custom_id])
                for custom_id, model in batch["items"]
            }

    def cancel(self, batch_id: str) -> None:
        with self._state() as state:
            batch = self._batch(state, batch_id)
            if batch["state"] == "in_progress":
                batch["state"] = "cancelled"
            state["cancelled"].append(batch_id)

    # -- helpers -------------------------------------------------------------------------

    def _batch(self, state: dict[str, Any], batch_id: str) -> dict[str, Any]:
        batch: dict[str, Any] | None = state["batches"].get(batch_id)
        if batch is None:
            raise KeyError(f"{self.name}: no batch {batch_id!r}")
        return batch

    def _fails(self, state: dict[str, Any], custom_id: str) -> bool:
        if custom_id in self.fail_always:
            return True
        if custom_id in self.fail_items and custom_id not in state["failed_once"]:
            state["failed_once"].append(custom_id)
            return True
        return False

    def _result(self, custom_id: str, model: str, failed: bool) -> ItemSucceeded | ItemFailed:
        if failed:
            return ItemFailed("FAKE_ITEM_FAILED", f"{self.name} failed item {custom_id!r}")
        response = AIResponse(
            text=f"reply to {custom_id}",
            usage=FAKE_USAGE,
            model=model,
            finish_reason="stop",
            provider_id=f"{self.name}-{custom_id}",
        )
        return ItemSucceeded(response)


__all__ = ["FAKE_USAGE", "FakeBatchProvider", "SimulatedCrash"]
