"""The rules of ``runs.purge`` as a pure decision, and the command's checks (SPEC §16.1).

A purge is built or refused at once: ``older_than`` must be positive, ``statuses``
terminal, ``limit`` at least 1, and the error names the field. The decision
takes the store's candidates but checks each again, so only finished runs of
the statuses asked for, finished before the cutoff, are ever deleted.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from attrs import evolve

from kernel import InvalidInputError, RunsPurge, Status, WorkflowRun
from kernel.decisions import runs_purge
from kernel.effects import PurgeRun
from tests.harness import T0, env

DAY = timedelta(days=1)
NOW = T0 + 100 * DAY


def finished(
    run_id: str, days_ago: float, status: Status = Status.COMPLETED, **changes: Any
) -> WorkflowRun:
    run = WorkflowRun(
        id=run_id,
        workflow_id="wf",
        workflow_name="Workflow",
        status=status,
        input={},
        created_at=T0,
        started_at=T0,
        completed_at=NOW - timedelta(days=days_ago),
        version=3,
    )
    return evolve(run, **changes)


def decide(cmd: RunsPurge, *candidates: WorkflowRun) -> tuple[Any, tuple[Any, ...]]:
    decision = runs_purge.decide(cmd, list(candidates), env(NOW)).unwrap()
    return decision.result, decision.effects


# -- the command's checks ------------------------------------------------------------


@pytest.mark.parametrize("older_than", [timedelta(0), -DAY, 30])
def test_older_than_must_be_a_positive_duration(older_than: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"older_than: expected a timedelta > 0"):
        RunsPurge(older_than=older_than)


@pytest.mark.parametrize(
    "status", [Status.RUNNING, Status.PENDING, Status.SUSPENDED, Status.SKIPPED]
)
def test_a_status_that_is_not_terminal_is_refused_by_name(status: Status) -> None:
    with pytest.raises(InvalidInputError, match=rf"statuses: only finished runs .* got {status}"):
        RunsPurge(older_than=DAY, statuses=(Status.COMPLETED, status))


def test_statuses_must_name_at_least_one() -> None:
    with pytest.raises(InvalidInputError, match=r"statuses: expected one or more of"):
        RunsPurge(older_than=DAY, statuses=())


@pytest.mark.parametrize("limit", [0, -1, True, 2.5])
def test_limit_is_at_least_one(limit: Any) -> None:
    with pytest.raises(InvalidInputError, match=r"limit: expected an int >= 1"):
        RunsPurge(older_than=DAY, limit=limit)


def test_the_defaults_purge_every_terminal_status_a_thousand_at_a_time() -> None:
    cmd = RunsPurge(older_than=DAY)
    assert cmd.type == "runs.purge"
    assert set(cmd.statuses) == {Status.COMPLETED, Status.CANCELLED, Status.FAILED}
    assert (cmd.limit, cmd.dry_run) == (1000, False)
    assert RunsPurge(older_than=DAY, statuses=[Status.FAILED]).statuses == (Status.FAILED,)


# -- the decision ----------------------------------------------------------------------


def test_each_purged_run_is_one_effect_at_the_version_read() -> None:
    result, effects = decide(RunsPurge(older_than=30 * DAY), finished("a", 40), finished("b", 31))
    assert effects == (PurgeRun("a", 3), PurgeRun("b", 3))
    assert (result.purged, result.run_ids, result.finished_before) == (
        2,
        ("a", "b"),
        NOW - 30 * DAY,
    )


def test_a_candidate_the_rules_do_not_allow_is_left_alone() -> None:
    """Whatever the store hands over: a run not finished, finished at or after the
    cutoff, without ``completed_at``, or of a status not asked for stays."""
    cmd = RunsPurge(older_than=30 * DAY, statuses=(Status.COMPLETED, Status.FAILED))
    result, effects = decide(
        cmd,
        finished("running", 40, Status.RUNNING),
        finished("at-cutoff", 30),
        finished("young", 1),
        finished("no-end", 40, completed_at=None),
        finished("cancelled", 40, Status.CANCELLED),
        finished("ok", 40, Status.FAILED),
    )
    assert result.run_ids == ("ok",)
    assert effects == (PurgeRun("ok", 3),)


def test_oldest_finish_first_and_at_most_limit() -> None:
    result, _ = decide(
        RunsPurge(older_than=DAY, limit=2), finished("c", 5), finished("a", 9), finished("b", 7)
    )
    assert result.run_ids == ("a", "b")


def test_a_dry_run_names_the_runs_and_deletes_nothing() -> None:
    result, effects = decide(RunsPurge(older_than=DAY, dry_run=True), finished("a", 9))
    assert (result.purged, result.run_ids, effects) == (0, ("a",), ())
