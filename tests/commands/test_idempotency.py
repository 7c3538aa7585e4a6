"""Idempotency keys on ``run.create`` and ``job.execute`` (SPEC §6.3)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from kernel import (
    IdempotencyConflictError,
    IdempotencyInProgressError,
    InvalidInputError,
    JobExecute,
    RunCancel,
    RunCreate,
    RunNotFoundError,
    StageContext,
)
from kernel.dispatch import IDEMPOTENCY_TIMEOUT
from kernel.effects import CompleteIdempotency
from kernel.records import IdempotencyRecord
from tests.harness import TK, MakeKernel, idempotency_record, outbox, run_of, start
from tests.workflows import Calls, NoConfig, Num, custom, linear, pipeline


def create_cmd(key: str = "order-1", value: int = 1) -> RunCreate:
    return RunCreate(workflow_id="linear", input={"value": value}, idempotency_key=key)


def execute_cmd(run_id: str, stage_id: str, key: str = "exec-1") -> JobExecute:
    return JobExecute(
        workflow_run_id=run_id, workflow_id="linear", stage_id=stage_id, idempotency_key=key
    )


# -- run.create -------------------------------------------------------------------


def test_create_replay_returns_the_same_run(make_tk: MakeKernel) -> None:
    """SPEC §6.3: same key, same payload: the cached result."""
    tk = make_tk(linear(Calls()))

    first = tk.dispatch(create_cmd())
    again = tk.dispatch(create_cmd())

    assert again == first


def test_create_replay_writes_nothing(make_tk: MakeKernel) -> None:
    """SPEC §6.3: no second run and no second event."""
    tk = make_tk(linear(Calls()))
    run_id = tk.dispatch(create_cmd()).workflow_run_id

    tk.dispatch(create_cmd())

    assert [run.id for run in tk.store.list_runs()] == [run_id]
    assert [e.event_type for e in tk.store.get_outbox()] == ["workflow:created"]


def test_create_completes_its_key_with_the_result(make_tk: MakeKernel) -> None:
    """SPEC §3.2: the key is remembered as completed, with the cached result."""
    tk = make_tk(linear(Calls()))
    run_id = tk.dispatch(create_cmd()).workflow_run_id

    record = idempotency_record(tk.store, "order-1", "run.create")

    assert record.state == "COMPLETED"
    assert record.result == {"workflow_run_id": run_id, "status": "PENDING"}


def test_create_replay_with_another_payload_raises_conflict(make_tk: MakeKernel) -> None:
    """SPEC §6.3: same key, different payload: ``IdempotencyConflictError``."""
    tk = make_tk(linear(Calls()))
    tk.dispatch(create_cmd(value=1))

    with pytest.raises(IdempotencyConflictError, match=re.escape("'order-1' for run.create")):
        tk.dispatch(create_cmd(value=2))

    assert len(tk.store.list_runs()) == 1


def test_create_keys_are_scoped_by_command_type(make_tk: MakeKernel) -> None:
    """SPEC §3.2: (key, command type) is unique, so two command types may share a key."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear", idempotency_key="shared")

    result = tk.dispatch(execute_cmd(run_id, "first", key="shared"))

    assert result.outcome == "completed"


def test_failed_create_releases_its_key(make_tk: MakeKernel) -> None:
    """SPEC §6.3: a command that failed releases its key for a corrected retry."""
    tk = make_tk(linear(Calls()))
    bad = RunCreate(workflow_id="linear", input={"value": "one"}, idempotency_key="order-1")
    with pytest.raises(InvalidInputError):
        tk.dispatch(bad)

    assert idempotency_record(tk.store, "order-1", "run.create") is None
    result = tk.dispatch(create_cmd())

    assert run_of(tk.store, result.workflow_run_id).input == {"value": 1}


def test_create_without_a_key_creates_every_time(make_tk: MakeKernel) -> None:
    """SPEC §6.3: idempotency is opt-in."""
    tk = make_tk(linear(Calls()))
    cmd = RunCreate(workflow_id="linear", input={"value": 1})

    assert tk.dispatch(cmd) != tk.dispatch(cmd)
    assert len(tk.store.list_runs()) == 2


# -- job.execute ------------------------------------------------------------------


def test_execute_replay_returns_the_cached_result(make_tk: MakeKernel) -> None:
    """SPEC §6.3: the replay answers with the first result."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear", 4)

    first = tk.dispatch(execute_cmd(run_id, "first"))
    again = tk.dispatch(execute_cmd(run_id, "first"))

    assert again == first
    assert (again.outcome, again.output) == ("completed", {"value": 5})


def test_execute_replay_runs_no_user_code(make_tk: MakeKernel) -> None:
    """SPEC §6.3: the stage is not executed a second time and nothing is written."""
    calls = Calls()
    tk = make_tk(linear(calls))
    run_id = start(tk, "linear")
    tk.dispatch(execute_cmd(run_id, "first"))
    events = outbox(tk.store, run_id)

    tk.dispatch(execute_cmd(run_id, "first"))

    assert calls["first"] == 1
    assert outbox(tk.store, run_id) == events


def test_execute_replay_of_a_failed_attempt_returns_the_failure(make_tk: MakeKernel) -> None:
    """SPEC §6.3: a failed stage is a completed command; its result is cached too."""
    calls = Calls()

    def fail_once(ctx: StageContext[Num, NoConfig]) -> Num:
        calls.hit("first")
        raise RuntimeError("nope")

    tk = make_tk(pipeline("linear", custom("first", fail_once)))
    run_id = start(tk, "linear")

    first = tk.dispatch(execute_cmd(run_id, "first"))
    again = tk.dispatch(execute_cmd(run_id, "first"))

    assert (again, calls["first"]) == (first, 1)
    assert again.error == "RuntimeError: nope"


def test_execute_with_the_key_still_in_progress_raises_in_progress(make_tk: MakeKernel) -> None:
    """SPEC §6.3: the same key while the first command executes:
    ``IdempotencyInProgressError``."""
    raised: list[BaseException] = []
    kernels: list[TK] = []

    def reenter(ctx: StageContext[Num, NoConfig]) -> Num:
        try:
            kernels[0].dispatch(execute_cmd(ctx.workflow_run_id, "first"))
        except IdempotencyInProgressError as error:
            raised.append(error)
        return ctx.input

    tk = make_tk(pipeline("linear", custom("first", reenter)))
    kernels.append(tk)
    run_id = start(tk, "linear")

    result = tk.dispatch(execute_cmd(run_id, "first"))

    assert result.outcome == "completed"
    [error] = raised
    assert isinstance(error, IdempotencyInProgressError)
    assert str(error) == (
        "idempotency key 'exec-1' for job.execute is held by a command still in progress"
    )


def test_in_progress_key_is_recorded_while_the_stage_runs(make_tk: MakeKernel) -> None:
    """SPEC §3.2: the key is IN_PROGRESS during the command, COMPLETED after it."""
    states: list[str] = []
    kernels: list[TK] = []

    def look(ctx: StageContext[Num, NoConfig]) -> Num:
        states.append(idempotency_record(kernels[0].store, "exec-1", "job.execute").state)
        return ctx.input

    tk = make_tk(pipeline("linear", custom("first", look)))
    kernels.append(tk)
    run_id = start(tk, "linear")

    tk.dispatch(execute_cmd(run_id, "first"))

    assert states == ["IN_PROGRESS"]
    assert idempotency_record(tk.store, "exec-1", "job.execute").state == "COMPLETED"


def test_execute_replay_for_another_stage_raises_conflict(make_tk: MakeKernel) -> None:
    """SPEC §6.3: a key reused for a different payload is a conflict."""
    tk = make_tk(linear(Calls()))
    run_id = start(tk, "linear")
    tk.dispatch(execute_cmd(run_id, "first"))

    with pytest.raises(IdempotencyConflictError, match=re.escape("'exec-1' for job.execute")):
        tk.dispatch(execute_cmd(run_id, "second"))


def test_failed_execute_releases_its_key(make_tk: MakeKernel) -> None:
    """SPEC §6.3: a command that raised releases its key."""
    tk = make_tk(linear(Calls()))
    with pytest.raises(RunNotFoundError):
        tk.dispatch(execute_cmd("missing", "first"))

    assert idempotency_record(tk.store, "exec-1", "job.execute") is None


# -- keys of crashed callers -----------------------------------------------------------


def abandon_key(tk: TK, key: str, age: timedelta) -> None:
    """Leave ``key`` IN_PROGRESS for ``create_cmd()``'s payload, as a caller that died
    ``age`` ago would (a live command always completes or releases its key)."""
    probe = tk.dispatch(create_cmd(key="probe"))
    fingerprint = idempotency_record(tk.store, "probe", "run.create").fingerprint
    tk.dispatch(RunCancel(workflow_run_id=probe.workflow_run_id))
    held = IdempotencyRecord(
        key=key,
        command_type="run.create",
        state="IN_PROGRESS",
        fingerprint=fingerprint,
        created_at=tk.clock.now() - age,
    )
    with tk.store.transaction() as tx:
        tx.apply([CompleteIdempotency(held)])


def test_a_key_abandoned_longer_than_the_timeout_is_taken_over(make_tk: MakeKernel) -> None:
    """A caller that crashed mid-command must not block its key for ever."""
    tk = make_tk(linear(Calls()))
    abandon_key(tk, "order-1", IDEMPOTENCY_TIMEOUT + timedelta(seconds=1))

    created = tk.dispatch(create_cmd())

    assert run_of(tk.store, created.workflow_run_id).status == "PENDING"
    record = idempotency_record(tk.store, "order-1", "run.create")
    assert record.state == "COMPLETED"
    assert record.result["workflow_run_id"] == created.workflow_run_id


def test_a_recently_taken_key_still_raises_in_progress(make_tk: MakeKernel) -> None:
    tk = make_tk(linear(Calls()))
    abandon_key(tk, "order-1", IDEMPOTENCY_TIMEOUT - timedelta(seconds=1))

    with pytest.raises(IdempotencyInProgressError):
        tk.dispatch(create_cmd())


def test_an_abandoned_key_with_another_payload_still_conflicts(make_tk: MakeKernel) -> None:
    tk = make_tk(linear(Calls()))
    abandon_key(tk, "order-1", IDEMPOTENCY_TIMEOUT * 2)

    with pytest.raises(IdempotencyConflictError):
        tk.dispatch(create_cmd(value=2))
