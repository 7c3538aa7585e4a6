"""The lifecycle tables of ``kernel/status.py``, walked pair by pair (SPEC §3.1)."""

from __future__ import annotations

import itertools

import pytest

from kernel.status import (
    RUN_TERMINAL,
    RUN_TRANSITIONS,
    STAGE_ACTIVE,
    STAGE_TRANSITIONS,
    Status,
    can_run_move,
    can_stage_move,
)

P, R, S, C, F, X, K = (
    Status.PENDING,
    Status.RUNNING,
    Status.SUSPENDED,
    Status.COMPLETED,
    Status.FAILED,
    Status.CANCELLED,
    Status.SKIPPED,
)

EXPECTED_RUN_MOVES = {
    (P, R),  # claimed
    (P, F),  # claimed, but its workflow is gone or empty
    (P, X),  # cancelled before it started
    (R, R),  # advanced to the next group
    (R, S),  # every active stage suspended
    (R, C),
    (R, F),
    (R, X),
    (S, R),  # a suspended stage resumed
    (S, S),
    (S, C),
    (S, F),  # a check failed or timed out
    (S, X),
    (C, R),  # rerun-from
    (F, R),  # rerun-from
}
"""Every (from, to) pair a run may take; every other pair is refused."""

EXPECTED_STAGE_MOVES = {
    (P, R),  # a worker started it
    (P, X),  # its run was cancelled
    (P, K),
    (P, F),  # its job could not be started
    (R, P),  # retried with backoff, or its lease reaped
    (R, R),
    (R, S),
    (R, C),
    (R, F),
    (R, X),  # finished after its run was cancelled
    (S, S),  # checked, not ready yet
    (S, C),
    (S, F),
    (S, X),
    (S, R),
}
"""Every (from, to) pair a stage may take; finished stages never move."""

PAIRS = list(itertools.product(Status, repeat=2))


def test_every_status_has_a_row_in_both_tables() -> None:
    """SPEC §3.1: the tables cover the whole Status enum, no more."""
    assert set(RUN_TRANSITIONS) == set(Status)
    assert set(STAGE_TRANSITIONS) == set(Status)


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_run_move_is_allowed_exactly_when_expected(src: Status, dst: Status) -> None:
    """SPEC §3.1, §5: each pair of run statuses, allowed or refused."""
    assert can_run_move(src, dst) is ((src, dst) in EXPECTED_RUN_MOVES)


@pytest.mark.parametrize(("src", "dst"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_stage_move_is_allowed_exactly_when_expected(src: Status, dst: Status) -> None:
    """SPEC §3.1, §5: each pair of stage statuses, allowed or refused."""
    assert can_stage_move(src, dst) is ((src, dst) in EXPECTED_STAGE_MOVES)


def test_a_cancelled_run_never_moves_again() -> None:
    """SPEC §5.4: cancelling is final; only COMPLETED and FAILED runs reopen (rerun)."""
    reopenable = {src for src in RUN_TERMINAL if RUN_TRANSITIONS[src]}
    assert reopenable == {Status.COMPLETED, Status.FAILED}
    assert all(RUN_TRANSITIONS[src] == {Status.RUNNING} for src in reopenable)


def test_finished_stages_never_move() -> None:
    """SPEC §3.1: a stage that is not active has reached its end."""
    for src in set(Status) - STAGE_ACTIVE:
        assert STAGE_TRANSITIONS[src] == frozenset(), src


def test_status_compares_equal_to_its_name() -> None:
    """SPEC §10.1: ``Status`` is a StrEnum."""
    assert Status.COMPLETED == "COMPLETED"
    assert [str(status) for status in Status] == [status.name for status in Status]
