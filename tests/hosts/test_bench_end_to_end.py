"""Smoke tests of ``bench/end_to_end.py``: each mode runs, every run completes, the
numbers print."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapters import create_kernel
from adapters.sqlite import SqliteStore
from bench import end_to_end
from bench.e2e_common import DiscardingSink
from bench.sqlite_replay import recorded_connections, replay, state_of
from bench.sqlite_time import statement_label
from bench.store_ops import WORKFLOW
from kernel import RunCreate


def _last_row(out: str) -> list[float]:
    assert "python 3." in out and "cores" in out
    assert "created_at/completed_at" in out
    row = [float(value) for value in out.strip().splitlines()[-1].split()]
    assert len(row) == 9
    return row


@pytest.mark.parametrize(
    "mode",
    [
        ["--rate", "1000"],
        ["--rate", "1000", "--concurrency", "2"],
        ["--processes", "2"],
        ["--idle", "--gap-ms", "1"],
    ],
    ids=["one-slot", "two-slots", "two-processes", "idle"],
)
def test_end_to_end_bench_completes_every_run_and_prints_its_numbers(
    mode: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert end_to_end.main(["--runs", "30", "--tick-ms", "50", *mode]) == 0
    row = _last_row(capsys.readouterr().out)
    number, completed, seconds, rate, tx, statements, cpu, p50, p99 = row
    assert number == 1 and completed == 30
    assert min(seconds, rate, tx, statements, cpu, p50, p99) > 0
    assert p50 <= p99


def test_the_memory_mode_prints_the_workers_resident_memory_at_both_marks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert end_to_end.main(["--memory", "--memory-stages", "1200", "--tick-ms", "50"]) == 0
    lines = capsys.readouterr().out.splitlines()
    marks = [line.split() for line in lines if line.strip().startswith("after")]
    assert [mark[1] for mark in marks] == ["1,000", "1,200"]
    assert all(float(mark[4]) > 0 for mark in marks)  # "after N stages: RSS x MiB"
    assert lines[-1].strip().startswith("grew") and lines[-1].endswith("from 1,000 to 1,200 stages")


def test_the_sqlite_time_mode_prints_the_cpu_time_inside_sqlite3_calls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every statement the trace counts is a timed call, and the time inside the calls
    is part of the process's CPU time, never more."""
    assert end_to_end.main(["--runs", "30", "--rate", "1000", "--sqlite-time"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    inside = lines[-1].split()
    assert inside[:3] == ["inside", "sqlite3", "calls:"], lines[-1]
    milliseconds, calls = float(inside[3]), float(inside[7])
    *_, statements, cpu, _, _ = (float(value) for value in lines[-2].split())
    assert 0 < milliseconds < cpu
    assert calls == pytest.approx(statements, abs=0.2)  # one call per statement


def test_the_raw_commit_rate_follows_the_measure_with_its_limit_per_stage(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The raw rate divided by the measure's write transactions per stage is the limit
    printed; the table above it is unchanged (``bench/ratio.py`` reads its rows)."""
    assert end_to_end.main(["--runs", "30", "--rate", "1000", "--raw-seconds", "0.2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    raw_line, limit_line = lines[-2:]
    assert raw_line.startswith("raw commit rate (single-row INSERT, one connection"), raw_line
    raw = float(raw_line.split()[-2].replace(",", ""))
    per_stage = float(limit_line.split("(")[1].split(")")[0])
    limit = float(limit_line.split()[-3].replace(",", ""))
    row = [float(value) for value in lines[-3].split()]
    assert row[1] == 30 and per_stage == pytest.approx(row[4], abs=0.005)
    assert raw > 0 and limit == pytest.approx(raw / per_stage, rel=0.01)


@pytest.mark.parametrize("mode", [["--idle"], ["--memory"], ["--raw-seconds=-1"]])
def test_the_raw_commit_rate_is_refused_where_there_is_no_drain_to_set_it_beside(
    mode: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    options = mode if mode[0].startswith("--raw") else [*mode, "--raw-seconds", "1"]
    with pytest.raises(SystemExit) as exit_:
        end_to_end.main(["--runs", "3", *options])
    assert exit_.value.code == 2
    assert "--raw-seconds: expected >= 0, not with --idle or --memory" in capsys.readouterr().err


def test_the_sqlite_statements_mode_lists_the_statements_that_took_most_of_that_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The N statements, slowest first, each with its share of the time inside sqlite3
    per stage (fetching its rows included): together no more than that time."""
    args = ["--runs", "30", "--rate", "1000", "--sqlite-time", "--sqlite-statements", "4"]
    assert end_to_end.main(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    inside, listed = lines[-5], lines[-4:]
    assert inside.split()[:3] == ["inside", "sqlite3", "calls:"], inside
    times = [float(line.split()[0]) for line in listed]
    assert times == sorted(times, reverse=True)
    assert 0 < sum(times) <= float(inside.split()[3]) + 0.001
    assert any(line.split()[4:] == ["COMMIT"] for line in listed), listed


def test_statements_are_listed_without_comment_lines_and_with_their_row_groups_folded() -> None:
    two = "-- the runs\nINSERT INTO t (a, b)\nVALUES (?, ?), (?, ?)"
    four = "INSERT INTO t (a, b) VALUES (?, ?), (?, ?), (?, ?), (?, ?)"
    assert (
        statement_label(two)
        == statement_label(four)
        == ("INSERT INTO t (a, b) VALUES (?, ...), ...")
    )
    assert statement_label("SELECT *\n  FROM runs  -- all\n") == "SELECT * FROM runs -- all"


def test_sqlite_statements_needs_sqlite_time() -> None:
    with pytest.raises(SystemExit):
        end_to_end.main(["--runs", "30", "--sqlite-statements", "3"])


def test_the_replay_mode_runs_the_same_statements_alone_and_prints_what_they_cost(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The replay runs every statement the trace counted, on a new file that ends as the
    measured one did, in less CPU time than the whole measure took."""
    assert end_to_end.main(["--runs", "30", "--rate", "1000", "--replay"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    replayed = lines[-1].split()
    assert replayed[:2] == ["the", "same"] and "replayed alone" in lines[-1], lines[-1]
    statements, milliseconds = float(replayed[2].replace(",", "")), float(replayed[10])
    limit = float(replayed[-3].replace(",", ""))
    row = [float(value) for value in lines[-2].split()]
    stages = row[1] * 3
    assert statements / stages == pytest.approx(row[5], abs=0.2)  # one call per statement
    assert 0 < milliseconds < row[6]
    assert limit == pytest.approx(1000 / milliseconds, rel=0.02)


def test_a_replay_that_does_not_end_as_the_measure_did_is_an_error(tmp_path: Path) -> None:
    """A recording that missed statements cannot pass for the measure's SQL."""
    with recorded_connections() as recording:
        store = SqliteStore(tmp_path / "measured.db")
    try:
        kernel = create_kernel(WORKFLOW, store=store, sink=DiscardingSink())
        recording.start()
        kernel.dispatch(RunCreate(workflow_id=WORKFLOW.id, input={"n": 1}))
        kernel.dispatch(RunCreate(workflow_id=WORKFLOW.id, input={"n": 2}))
        calls = recording.stop()
        expected = state_of(store._conn)
    finally:
        store.close()
    assert expected["runs"] == [("PENDING", 2)]
    replayed = replay(calls, tmp_path / "whole.db", expected)
    assert replayed.statements == len(calls) and replayed.cpu_seconds > 0
    begins = [i for i, call in enumerate(calls) if call.sql == "BEGIN IMMEDIATE"]
    assert len(begins) == 2  # one transaction per create
    with pytest.raises(AssertionError, match=r"the replay ended with .*'PENDING', 1"):
        replay(calls[: begins[1]], tmp_path / "first_only.db", expected)


@pytest.mark.parametrize("mode", [["--idle"], ["--processes", "1"], ["--sqlite-time"]])
def test_the_replay_is_refused_outside_the_default_mode(
    mode: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        end_to_end.main(["--runs", "3", *mode, "--replay"])
    assert exit_.value.code == 2
    assert "--replay: only in the default mode" in capsys.readouterr().err
