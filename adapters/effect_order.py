"""The order in which a store may apply a transaction's effects grouped by kind.

Both SQL stores write several rows of one kind with one statement. They may
reorder a transaction's effects into kind groups only where no outcome depends
on the order between kinds: for the kinds of :data:`GROUPABLE`, the only order
that matters is a row's insert before its updates (and a run's before its
stages' and jobs'), and the updates of one row in their order, which a stable
sort keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kernel.effects import (
    AppendOutbox,
    EnqueueJob,
    InsertRun,
    InsertStage,
    PutBlob,
    UpdateJob,
    UpdateRun,
    UpdateStage,
)

GROUPABLE: dict[type[Any], int] = {
    kind: rank
    for rank, kind in enumerate(
        (
            InsertRun,
            UpdateRun,
            InsertStage,
            UpdateStage,
            EnqueueJob,
            UpdateJob,
            AppendOutbox,
            PutBlob,
        )
    )
}
"""Kinds that may be applied grouped, each kind with its rank in the order applied."""


def by_kind(effects: Sequence[Any]) -> Sequence[Any]:
    """``effects`` grouped by kind (a stable sort) when every one is of a kind in
    :data:`GROUPABLE`, so each kind can be written with one statement (a new list);
    else ``effects`` itself."""
    if len(effects) < 3:
        return effects
    order = GROUPABLE
    for effect in effects:
        if type(effect) not in order:
            return effects
    return sorted(effects, key=lambda effect: order[type(effect)])
