"""Workflow versions (SPEC §16, §16.1): several versions of one workflow id in a
registry, runs pinned to the version they were created with, and workers that
only claim and lease what they hold, so a rolling deploy never fails old runs.

Every test that takes ``store`` or ``deploy`` runs on the three stores.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from kernel import (
    DefinitionError,
    IdempotencyConflictError,
    InvalidInputError,
    InvalidStateError,
    JobLease,
    JobStatus,
    RunClaimPending,
    RunCreate,
    RunRerunFrom,
    StageNotFoundError,
    StagePollSuspended,
    Status,
    Workflow,
    WorkflowBuilder,
    WorkflowNotFoundError,
    define_stage,
)
from kernel.ports import Store
from kernel.workflows import Registry
from testing import FakeClock
from tests.harness import job_of, run_of, stage_of
from tests.versions.conftest import Deploy
from tests.versions.workflows import pricing_v1, pricing_v2
from tests.workflows import Batch, Calls, NoConfig, Num, batch, echo


def create(tk: object, value: int = 1, **fields: object) -> str:
    made = tk.dispatch(  # type: ignore[attr-defined]
        RunCreate(workflow_id="pricing", input={"value": value}, **fields)  # type: ignore[arg-type]
    )
    run_id: str = made.workflow_run_id
    return run_id


def stage_ids(store: Store, run_id: str) -> list[str]:
    return [stage.stage_id for stage in store.get_stages(run_id)]


# -- the registry ----------------------------------------------------------------------


def test_the_newest_version_is_the_last_registered() -> None:
    """A registry holds several versions of one id; without a version it gives the last
    registered, which need not sort last."""
    calls = Calls()
    v2, v1 = pricing_v2(calls), pricing_v1(calls)
    registry = Registry([v2, v1])

    assert registry.get_workflow("pricing") is v1
    assert registry.get_workflow("pricing", "2") is v2
    assert registry.get_workflow("pricing", "3") is None
    assert registry.workflow_ids() == {"pricing"}
    assert registry.workflow_versions() == {("pricing", "1"), ("pricing", "2")}
    assert registry.versions_of("pricing") == ("2", "1")
    assert registry.workflows == (v2, v1)


def test_registering_one_version_twice_is_refused() -> None:
    """Two workflows with the same (id, version) cannot both be served; the same object
    registered again changes nothing."""
    calls = Calls()
    first = pricing_v1(calls)
    registry = Registry([first, first])
    with pytest.raises(DefinitionError) as raised:
        registry.register(pricing_v1(calls))
    assert str(raised.value) == "registry: workflow 'pricing' version '1' is registered twice"
    assert registry.workflows == (first,)


def test_a_workflow_is_version_1_unless_it_says_otherwise() -> None:
    calls = Calls()
    built = WorkflowBuilder("plain", "Plain", input=Num, output=Num).pipe(echo(calls)).build()
    assert (built.version, pricing_v2(calls).version) == ("1", "2")


@pytest.mark.parametrize("version", ["", "  ", None, 2])
def test_a_version_must_be_a_non_empty_string(version: object) -> None:
    with pytest.raises(DefinitionError) as raised:
        WorkflowBuilder("w", "W", input=Num, output=Num, version=version)  # type: ignore[arg-type]
    assert str(raised.value) == (
        f"workflow 'w': version: expected a non-empty string, got {version!r}"
    )


# -- run.create --------------------------------------------------------------------------


def test_run_create_uses_the_newest_version_unless_one_is_named(deploy: Deploy) -> None:
    calls = Calls()
    tk = deploy("app", pricing_v1(calls), pricing_v2(calls))

    newest = create(tk)
    pinned = create(tk, version="1")

    assert run_of(tk.store, newest).workflow_version == "2"
    assert run_of(tk.store, newest).workflow_name == "Pricing v2"
    assert run_of(tk.store, pinned).workflow_version == "1"
    tk.run_until_idle()
    assert stage_ids(tk.store, newest) == ["add", "review", "check"]
    assert stage_ids(tk.store, pinned) == ["add", "check"]
    assert (run_of(tk.store, newest).output, run_of(tk.store, pinned).output) == (
        {"value": 20},
        {"value": 2},
    )
    assert calls.counts == {"2:add": 1, "2:review": 1, "2:check": 1, "1:add": 1, "1:check": 1}
    assert {job.workflow_version for job in tk.store.get_jobs(newest)} == {"2"}


def test_an_unknown_version_is_refused_naming_workflow_and_version(deploy: Deploy) -> None:
    tk = deploy("app", pricing_v1(Calls()))

    with pytest.raises(WorkflowNotFoundError) as raised:
        create(tk, version="3")

    assert str(raised.value) == "workflow 'pricing' version '3' is not registered"
    assert (raised.value.workflow_id, raised.value.version) == ("pricing", "3")
    assert tk.store.list_runs() == []


@pytest.mark.parametrize("command", [RunCreate, RunRerunFrom])
def test_an_empty_version_is_refused_when_the_command_is_built(command: type) -> None:
    fields = (
        {"workflow_id": "pricing", "input": {}}
        if command is RunCreate
        else {"workflow_run_id": "run-1", "from_stage_id": "add"}
    )
    with pytest.raises(InvalidInputError) as raised:
        command(**fields, version="")
    assert raised.value.problems == ("version: expected a non-empty string, got ''",)


def test_the_version_is_part_of_an_idempotent_create(deploy: Deploy) -> None:
    """The same key and version replays the first run; the same key with another
    version is another command, refused as a conflict."""
    tk = deploy("app", pricing_v1(Calls()), pricing_v2(Calls()))

    first = create(tk, idempotency_key="k", version="1")
    again = create(tk, idempotency_key="k", version="1")
    with pytest.raises(IdempotencyConflictError):
        create(tk, idempotency_key="k", version="2")

    assert again == first
    assert [run.workflow_version for run in tk.store.list_runs()] == ["1"]


# -- rolling deploys ---------------------------------------------------------------------


def test_a_worker_without_a_runs_version_leaves_its_work_alone(deploy: Deploy) -> None:
    """Runs of version 1 are in flight when release 2 starts on the same store: its
    workers lease only version-2 jobs and claim only version-2 runs, and their
    ``run_until_idle()`` returns with the version-1 work still waiting, untouched."""
    calls = Calls()
    old = deploy("old", pricing_v1(calls))
    in_flight = create(old)
    assert len(old.dispatch(RunClaimPending(worker_id="old")).claimed) == 1
    new = deploy("new", pricing_v2(calls))
    fresh = create(new)
    late_old = create(old)  # an old client still creating version-1 runs

    executed = new.run_until_idle()

    assert executed == 3
    assert run_of(new.store, fresh).status == Status.COMPLETED
    waiting = job_of(new.store, in_flight, "add")
    assert (waiting.status, waiting.worker_id, waiting.attempt) == (JobStatus.QUEUED, None, 0)
    assert run_of(new.store, in_flight).status == Status.RUNNING
    assert run_of(new.store, late_old).status == Status.PENDING
    assert calls.counts == {"2:add": 1, "2:review": 1, "2:check": 1}


def test_a_serverless_lease_of_a_version_the_worker_lacks_leaves_the_job_queued(
    deploy: Deploy,
) -> None:
    """A queue message naming a version-1 job reaches a function deployed with only
    version 2: ``job.lease`` leases nothing, says why, and the job waits, unfailed,
    for a worker that has version 1."""
    calls = Calls()
    old = deploy("old", pricing_v1(calls))
    run_id = create(old)
    old.dispatch(RunClaimPending(worker_id="old"))
    job = job_of(old.store, run_id, "add")
    new = deploy("new", pricing_v2(calls))

    result = new.dispatch(
        JobLease(job_id=job.id, worker_id="fn", workflow_run_id=run_id, stage_id="add")
    )

    assert result.job is None
    assert result.reason == (
        f"job {job.id!r} is of workflow 'pricing' version '1', which this worker "
        "does not have: it stays queued"
    )
    waiting = job_of(new.store, run_id, "add")
    assert (waiting.status, waiting.worker_id, waiting.attempt) == (JobStatus.QUEUED, None, 0)
    assert (
        old.dispatch(
            JobLease(job_id=job.id, worker_id="fn-old", workflow_run_id=run_id, stage_id="add")
        ).job
        is not None
    )


def test_a_worker_with_both_versions_drains_both(deploy: Deploy) -> None:
    calls = Calls()
    old = deploy("old", pricing_v1(calls))
    in_flight = create(old)
    old.dispatch(RunClaimPending(worker_id="old"))
    new = deploy("new", pricing_v2(calls))
    fresh = create(new)
    new.dispatch(RunClaimPending(worker_id="new"))
    both = deploy("both", pricing_v1(calls), pricing_v2(calls))

    assert both.run_until_idle() == 5

    assert run_of(both.store, in_flight).status == Status.COMPLETED
    assert run_of(both.store, fresh).status == Status.COMPLETED
    assert stage_ids(both.store, in_flight) == ["add", "check"]
    assert stage_ids(both.store, fresh) == ["add", "review", "check"]
    assert calls.counts == {"1:add": 1, "1:check": 1, "2:add": 1, "2:review": 1, "2:check": 1}


def test_an_old_worker_finishes_its_own_runs_mid_deploy(deploy: Deploy) -> None:
    """The old release keeps running version-1 runs to the end while version-2 jobs
    queue ahead of them; it never runs version-2 stages it lacks."""
    calls = Calls()
    old = deploy("old", pricing_v1(calls))
    new = deploy("new", pricing_v2(calls))
    fresh = create(new, priority=9)
    new.dispatch(RunClaimPending(worker_id="new"))
    in_flight = create(old)

    assert old.run_until_idle() == 2

    assert run_of(old.store, in_flight).status == Status.COMPLETED
    assert job_of(old.store, fresh, "add").status == JobStatus.QUEUED
    assert calls.counts == {"1:add": 1, "1:check": 1}


# -- run.rerunFrom -----------------------------------------------------------------------


def test_rerun_without_a_version_keeps_the_runs_version(deploy: Deploy) -> None:
    """Registering a newer version does not move finished runs: a rerun stays on the
    run's own version."""
    calls = Calls()
    tk = deploy("app", pricing_v1(calls), pricing_v2(calls))
    run_id = create(tk, version="1")
    tk.run_until_idle()

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="check"))
    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.status, run.workflow_version) == (Status.COMPLETED, "1")
    assert stage_ids(tk.store, run_id) == ["add", "check"]
    assert calls["1:check"] == 2


def test_rerun_with_a_version_moves_the_run_to_it(deploy: Deploy) -> None:
    """The kept stages stay, the rest is run by the target version's code; the run's
    config is completed with the defaults of the target's new stages."""
    calls = Calls()
    tk = deploy("app", pricing_v1(calls), pricing_v2(calls))
    run_id = create(tk, version="1", config={"add": {"amount": 4}})
    tk.run_until_idle()

    result = tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="review", version="2"))
    tk.run_until_idle()

    assert result.deleted_stages == ["check"]
    run = run_of(tk.store, run_id)
    assert (run.status, run.workflow_version, run.workflow_name) == (
        Status.COMPLETED,
        "2",
        "Pricing v2",
    )
    assert run.output == {"value": 50}
    assert run.config == {"add": {"amount": 4}, "review": {"factor": 10}, "check": {}}
    assert stage_ids(tk.store, run_id) == ["add", "review", "check"]
    assert calls.counts == {"1:add": 1, "1:check": 1, "2:review": 1, "2:check": 1}
    assert {job.workflow_version for job in tk.store.get_jobs(run_id)} == {"1", "2"}


def test_rerun_onto_a_version_without_the_stage_is_refused(deploy: Deploy) -> None:
    tk = deploy("app", pricing_v1(Calls()), pricing_v2(Calls()))
    run_id = create(tk, version="2")
    tk.run_until_idle()
    before = run_of(tk.store, run_id)

    with pytest.raises(StageNotFoundError) as raised:
        tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="review", version="1"))

    assert str(raised.value) == "stage 'review' is not part of workflow 'pricing' version '1'"
    assert run_of(tk.store, run_id) == before


def test_rerun_onto_an_unknown_version_is_refused(deploy: Deploy) -> None:
    tk = deploy("app", pricing_v1(Calls()))
    run_id = create(tk)
    tk.run_until_idle()

    with pytest.raises(WorkflowNotFoundError) as raised:
        tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="add", version="7"))

    assert str(raised.value) == "workflow 'pricing' version '7' is not registered"


def test_rerun_onto_a_version_needing_an_earlier_stage_the_run_lacks_is_refused(
    deploy: Deploy,
) -> None:
    """Earlier outputs are fed forward: version 2's ``check`` needs ``review``'s, which a
    version-1 run never made."""
    tk = deploy("app", pricing_v1(Calls()), pricing_v2(Calls()))
    run_id = create(tk, version="1")
    tk.run_until_idle()

    with pytest.raises(InvalidStateError) as raised:
        tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="check", version="2"))

    assert str(raised.value) == (
        f"run {run_id!r} cannot be rerun from stage 'check': earlier stage 'review' is "
        "missing, not COMPLETED"
    )


def test_rerun_onto_a_version_with_other_groups_renumbers_the_kept_stages(
    deploy: Deploy,
) -> None:
    """Version 1 runs ``a`` and ``b`` side by side, version 2 one after the other: the
    kept records take version 2's groups, so the rerun stage reads the right outputs."""
    calls = Calls()
    last = define_stage(
        id="c", name="C", input=None, output=Num, config=NoConfig,
        execute=lambda ctx: ctx.require("b"),
    )  # fmt: skip
    side_by_side = (
        WorkflowBuilder("steps", "Steps", input=Num, output=Num, version="1")
        .parallel([echo(calls, "a"), echo(calls, "b")])
        .pipe(last)
        .build()
    )
    in_line = (
        WorkflowBuilder("steps", "Steps", input=Num, output=Num, version="2")
        .pipe(echo(calls, "a"))
        .pipe(echo(calls, "b"))
        .pipe(last)
        .build()
    )
    tk = deploy("app", side_by_side, in_line)
    run_id = tk.dispatch(
        RunCreate(workflow_id="steps", input={"value": 7}, version="1")
    ).workflow_run_id
    tk.run_until_idle()

    tk.dispatch(RunRerunFrom(workflow_run_id=run_id, from_stage_id="c", version="2"))
    tk.run_until_idle()

    stages = tk.store.get_stages(run_id)
    assert [(s.stage_id, s.stage_number, s.execution_group) for s in stages] == [
        ("a", 1, 1),
        ("b", 2, 2),
        ("c", 3, 3),
    ]
    run = run_of(tk.store, run_id)
    assert (run.status, run.workflow_version, run.output) == (Status.COMPLETED, "2", {"value": 7})
    assert (calls["a"], calls["b"]) == (1, 1)


def test_a_suspended_stage_of_another_version_is_left_to_a_worker_holding_it(
    deploy: Deploy, clock: FakeClock
) -> None:
    """The poll of suspended stages skips a version the worker lacks: the stage is not
    failed as unregistered, and a worker holding its version resumes it."""
    calls = Calls()

    def waiting(version: str) -> Workflow[Any, Any]:
        return (
            WorkflowBuilder("batches", "Batches", input=Num, output=Num, version=version)
            .pipe(batch(calls, Batch(poll_interval=timedelta(seconds=30))))
            .build()
        )

    old = deploy("old", waiting("1"))
    run_id = old.dispatch(RunCreate(workflow_id="batches", input={"value": 3})).workflow_run_id
    old.dispatch(RunClaimPending(worker_id="old"))
    old.kernel.execute_jobs("old")
    assert stage_of(old.store, run_id, "batch").status == Status.SUSPENDED
    new = deploy("new", waiting("2"))
    clock.advance(timedelta(minutes=5))

    polled = new.dispatch(StagePollSuspended())

    assert polled.checked == 0
    assert stage_of(new.store, run_id, "batch").status == Status.SUSPENDED
    assert calls["batch.check"] == 0
    assert old.run_until_idle() == 0
    assert run_of(old.store, run_id).output == {"value": 30}
