"""What a command handler is made of: phases, each one transaction, and the steps between.

A handler turns a command into its first :class:`Phase`. The shell runs a
phase inside a transaction: the phase *loads* what its decision needs, the
pure *decision* returns effects and a :data:`Step`, and the shell applies the
effects in that same transaction. The step says what comes next:

- :class:`Done`: the command's result; the transaction commits.
- :class:`Within`: another phase in the same transaction (it sees the effects).
- :class:`Outside`: commit, carry out a work item (user code, publishing)
  outside any transaction, then run the phase built from its outcome.

:class:`Before` joins two commands' phases in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, Protocol, TypeVar, cast

from attrs import frozen
from returns.result import Result, Success

from kernel.commands import Command
from kernel.decisions.context import Env
from kernel.effects import Decision, OutsideWorld, Work
from kernel.errors import KernelError
from kernel.shell.reads import Reads

R = TypeVar("R")
S = TypeVar("S")
T = TypeVar("T")
O = TypeVar("O")
C = TypeVar("C")
A = TypeVar("A")


@frozen
class Done(Generic[R]):
    """The command is finished with ``result``."""

    result: R


@frozen
class Within(Generic[R]):
    """Apply this decision's effects, then run ``then`` in the same transaction."""

    then: Phase[R]


class Resumable(Protocol[R]):
    """A step that continues after work done outside any transaction."""

    def resume(self, world: OutsideWorld) -> Phase[R]:
        """Carry out the work through ``world``; the phase that records what came of it."""
        ...


@frozen
class Outside(Generic[O, R]):
    """Commit, carry out ``work`` outside any transaction, then run ``then(outcome)``."""

    work: Work[O]
    then: Callable[[O], Phase[R]]

    def resume(self, world: OutsideWorld) -> Phase[R]:
        return self.then(self.work.carry_out(world))


Step = Done[R] | Within[R] | Resumable[R]


class Phase(Protocol[R]):
    """One transaction of a command: load, decide, and say what comes next."""

    def run(self, reads: Reads, env: Env) -> Result[Decision[Step[R]], KernelError]:
        """Load through ``reads`` and decide; the shell applies the decision's effects."""
        ...


@frozen
class Transaction(Generic[S, T, R]):
    """A phase made of a loader, a pure decision over what it loaded, and what comes
    after the decision's result (by default: the command is done with it)."""

    load: Callable[[Reads], S]
    decide: Callable[[S, Env], Result[Decision[T], KernelError]]
    then: Callable[[T], Step[R]]

    def run(self, reads: Reads, env: Env) -> Result[Decision[Step[R]], KernelError]:
        match self.decide(self.load(reads), env):
            case Success(decided):
                made: Decision[T] = decided
                return Success(Decision(self.then(made.result), made.effects))
            case failed:
                return cast("Result[Decision[Step[R]], KernelError]", failed)


def single(
    load: Callable[[Reads], S], decide: Callable[[S, Env], Result[Decision[R], KernelError]]
) -> Transaction[S, R, R]:
    """The one phase of a single-transaction command: its decision's result is the command's."""
    return Transaction(load, decide, Done)


@frozen
class Before(Generic[A, R]):
    """The phase ``first`` (of another command), then, in the same transaction, what
    ``then`` makes of its result: two commands that commit together."""

    first: Phase[A]
    then: Callable[[A], Step[R]]

    def run(self, reads: Reads, env: Env) -> Result[Decision[Step[R]], KernelError]:
        def chain(decided: Decision[Step[A]]) -> Decision[Step[R]]:
            step = decided.result
            following: Step[R]
            if isinstance(step, Done):
                following = self.then(step.result)
            elif isinstance(step, Within):
                following = Within(Before(step.then, self.then))
            else:  # work outside any transaction cannot join this one
                raise TypeError(f"a phase with work outside cannot go first: {step!r}")
            return Decision(following, decided.effects)

        return self.first.run(reads, env).map(chain)


@frozen
class Entry(Generic[C, R]):
    """How the shell handles one command class: its result type (to restore cached
    results of idempotent commands) and the first phase for a command."""

    command: type[C]
    result: type[R]
    begin: Callable[[C], Phase[R]]


def entry(
    command: type[Command[R]], result: type[R], begin: Callable[[C], Phase[R]]
) -> Entry[C, R]:
    """A table entry; mypy checks that ``begin``'s phases end in ``command``'s result type.

    (``begin`` takes an instance of ``command``: a test walks the table for it.)
    """
    return Entry(cast("type[C]", command), result, begin)


class Table:
    """The handlers of every command, keyed by command class."""

    def __init__(self, *entries: object) -> None:
        # Entries are taken as ``object``: each was type-checked where ``entry()``
        # built it, and a narrower parameter type would bend that inference.
        self._entries: dict[type[object], Entry[object, object]] = {}
        for item in entries:
            if not isinstance(item, Entry):
                raise TypeError(f"Table: expected entries made by entry(), got {item!r}")
            if item.command in self._entries:
                raise ValueError(f"two handlers for {item.command.__name__}")
            self._entries[item.command] = item

    def find(self, cmd: Command[R]) -> Entry[Command[R], R]:
        """The entry of ``cmd``'s class; ``TypeError`` if ``cmd`` is not a known command."""
        found = self._entries.get(type(cmd))
        if found is None:
            raise TypeError(f"dispatch: expected a command, got {cmd!r}")
        # The one cast of the table: entry() checked that this class's handler
        # ends in the class's own result type.
        return cast("Entry[Command[R], R]", found)

    def __iter__(self) -> Iterator[Entry[object, object]]:
        return iter(self._entries.values())
