"""Adding a command, the way docs/architecture.md describes: a command class, a pure
decision, a handler (its load and decision as one phase), a table entry, and tests.

``RunTag`` (``run.tag``) is an illustration: it adds one metadata entry to a run.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import ClassVar

from attrs import frozen
from returns.result import Failure, Result, Success

from adapters.memory import InMemoryStore
from kernel import RunCreate, StageContext, Status, WorkflowBuilder, WorkflowRun, define_stage
from kernel.commands import Command
from kernel.decisions.changes import bump_run
from kernel.decisions.context import Env
from kernel.effects import Decision
from kernel.errors import KernelError, RunNotFoundError
from kernel.shell.reads import Reads
from kernel.shell.steps import Done, Phase, Table, entry, single
from kernel.workflows import Registry
from testing import SequentialIds, create_test_kernel


# --8<-- [start:command]
# 1. kernel/commands.py: the command and its result.
@frozen(kw_only=True)
class RunTagResult:
    tagged: bool


@frozen(kw_only=True)
class RunTag(Command[RunTagResult]):
    """Add ``key=value`` to a run's metadata."""

    type: ClassVar[str] = "run.tag"
    workflow_run_id: str
    key: str
    value: str


# --8<-- [end:command]


# --8<-- [start:decision]
# 2. kernel/decisions/run_tag.py: the rule, over values only.
def decide(
    cmd: RunTag, run: WorkflowRun | None, env: Env
) -> Result[Decision[RunTagResult], KernelError]:
    """Tag a run; a missing run is an error, a tag it already has changes nothing."""
    if run is None:
        return Failure(RunNotFoundError(cmd.workflow_run_id))
    if run.metadata.get(cmd.key) == cmd.value:
        return Success(Decision(RunTagResult(tagged=False)))
    _, update = bump_run(run, metadata={**run.metadata, cmd.key: cmd.value})
    return Success(Decision(RunTagResult(tagged=True), (update,)))


# --8<-- [end:decision]


# --8<-- [start:entry]
# 3. kernel/shell/table.py: what the decision reads, and one entry in TABLE.
def _run_tag(cmd: RunTag) -> Phase[RunTagResult]:
    return single(
        lambda reads: reads.tx.get_run(cmd.workflow_run_id),
        lambda run, env: decide(cmd, run, env),
    )


TABLE = Table(entry(RunTag, RunTagResult, _run_tag))  # in the kernel: one more line in TABLE
# --8<-- [end:entry]


T0 = datetime(2026, 1, 1, tzinfo=UTC)


@frozen
class Empty:
    pass


def nothing(ctx: StageContext[Empty, Empty]) -> Empty:
    return Empty()


idle = define_stage(
    id="idle", name="Idle", input=Empty, output=Empty, config=Empty, execute=nothing
)
quiet = WorkflowBuilder("quiet", "Quiet", input=Empty, output=Empty).pipe(idle).build()


# --8<-- [start:tests]
# 4. tests: the decision alone (no store), then the phase inside a store transaction.
def test_the_decision_tags_a_run_once() -> None:
    env = Env(now=T0, new_id=SequentialIds().new_id, causation_id="cmd-1")
    run = WorkflowRun(
        id="r1", workflow_id="w", workflow_name="W", status=Status.PENDING, input={}, created_at=T0
    )
    cmd = RunTag(workflow_run_id="r1", key="team", value="search")
    match decide(cmd, run, env):
        case Success(made):
            assert made.result == RunTagResult(tagged=True)
            assert len(made.effects) == 1
        case Failure(error):
            raise AssertionError(error)


def test_the_phase_applies_in_one_transaction() -> None:
    store = InMemoryStore()
    tk = create_test_kernel(quiet, store=store)
    run_id = tk.dispatch(RunCreate(workflow_id="quiet", input={})).workflow_run_id
    tag = RunTag(workflow_run_id=run_id, key="team", value="search")
    phase = TABLE.find(tag).begin(tag)
    env = Env(now=T0, new_id=SequentialIds().new_id, causation_id="cmd-1")
    with store.transaction() as tx:
        match phase.run(Reads(tx, Registry([quiet]), T0), env):
            case Success(made):
                assert made.result == Done(RunTagResult(tagged=True))
                tx.apply(made.effects)
            case Failure(error):
                raise AssertionError(error)
    run = store.get_run(run_id)
    assert run is not None and run.metadata == {"team": "search"}


# --8<-- [end:tests]
