"""A three-stage workflow that passes text along, growing it at each stage, so a test
chooses how large every value is (with a small ``inline_limit``, a few kB is "large")."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import attrs

from kernel import RunCreate, StageContext, Workflow, WorkflowBuilder, define_stage
from kernel.effects import StoreEffect
from kernel.ports import Store, StoreTransaction
from kernel.records import Json
from testing import TestKernel


@attrs.frozen
class Text:
    text: str


@attrs.frozen
class Grow:
    """How many characters each stage adds."""

    by: int = 10


def _grow(letter: str) -> Any:
    def execute(ctx: StageContext[Text, Grow]) -> Text:
        return Text(ctx.input.text + letter * ctx.config.by)

    return define_stage(
        id=letter, name=letter.upper(), input=Text, output=Text, config=Grow, execute=execute
    )


texts: Workflow[Text, Text] = (
    WorkflowBuilder("texts", "Texts", input=Text, output=Text)
    .pipe(_grow("a"))
    .pipe(_grow("b"))
    .pipe(_grow("c"))
    .build()
)
"""``texts``: stages ``a``, ``b``, ``c``; each appends its letter ``by`` times."""

LIMIT = 1_000
"""The ``inline_limit`` the tests use: a text of 2,000 characters is a blob."""


def run_texts(tk: TestKernel[Any, Any], text: str, by: int = 10) -> str:
    """Create a ``texts`` run and run it to its end; its id."""
    config = {stage: {"by": by} for stage in "abc"}
    created = tk.dispatch(RunCreate(workflow_id="texts", input={"text": text}, config=config))
    tk.run_until_idle()
    return created.workflow_run_id


def is_ref(value: Json) -> bool:
    """Whether a stored value is a ``{"$blob": ref}`` marker."""
    return isinstance(value, dict) and list(value) == ["$blob"] and isinstance(value["$blob"], str)


class Failing:
    """A store whose transactions fail as a test says: ``when`` is an effect type whose
    ``apply`` raises (after the store applied it, so the rollback has work to undo),
    or ``at_commit`` fails after the transaction's body is done, as a crash or a lost
    connection between the blob writes and the commit would."""

    def __init__(
        self, store: Store, when: type[Any] | None = None, *, at_commit: bool = False
    ) -> None:
        self.inner = store
        self.when = when
        self.at_commit = at_commit

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with self.inner.transaction() as tx:
            yield _FailingTx(tx, self.when)
            if self.at_commit:
                raise ConnectionError("connection lost at commit")

    def as_store(self) -> Store:
        return cast(Store, self)


class _FailingTx:
    def __init__(self, tx: StoreTransaction, when: type[Any] | None) -> None:
        self._tx = tx
        self._when = when

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def apply(self, effects: Sequence[StoreEffect]) -> None:
        self._tx.apply(effects)
        if self._when is not None and any(isinstance(e, self._when) for e in effects):
            raise RuntimeError(f"disk full while applying {self._when.__name__}")
