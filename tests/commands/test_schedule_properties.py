"""Properties of ``schedule.tick`` over any pattern of host downtime (hypothesis):
with ``catchup="all"`` every fire time up to now runs exactly once; with
``"latest"`` fire times only move forward and the newest due one always runs."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given
from hypothesis import strategies as st

from kernel import Catchup, Schedule, ScheduleTick, ScheduleUpsert
from testing import FakeClock, create_test_kernel
from tests.harness import T0
from tests.workflows import Calls, echo, pipeline

EVERY = timedelta(minutes=5)
gaps = st.lists(
    st.integers(min_value=0, max_value=3 * 3600).map(lambda s: timedelta(seconds=s)),
    min_size=1,
    max_size=12,
)


def _fires(catchup: Catchup, pauses: list[timedelta]) -> tuple[list[str], FakeClock]:
    clock = FakeClock(T0)
    tk = create_test_kernel(pipeline("echoes", echo(Calls())), clock=clock)
    schedule = Schedule(
        "s", "echoes", every=EVERY, input={"value": 1}, overlap="allow", catchup=catchup
    )
    tk.dispatch(ScheduleUpsert(schedule))
    for pause in pauses:
        clock.advance(pause)
        while len(tk.dispatch(ScheduleTick(max_fires=7)).created) == 7:
            pass  # a full tick leaves the rest for the next one
    runs = tk.store.list_runs(limit=100_000)
    return [run.metadata["fire_time"] for run in runs], clock


@given(gaps)
def test_catch_up_all_runs_every_fire_time_exactly_once(pauses: list[timedelta]) -> None:
    fired, clock = _fires("all", pauses)

    due = (clock.now() - T0) // EVERY
    expected = [(T0 + k * EVERY).isoformat() for k in range(1, due + 1)]
    assert sorted(fired) == expected


@given(gaps)
def test_catch_up_latest_fires_forward_and_never_misses_the_newest(
    pauses: list[timedelta],
) -> None:
    fired, clock = _fires("latest", pauses)

    assert len(fired) == len(set(fired))
    due = (clock.now() - T0) // EVERY
    if due:
        assert max(fired) == (T0 + due * EVERY).isoformat()
    else:
        assert fired == []
