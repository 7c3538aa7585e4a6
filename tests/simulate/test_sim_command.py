"""``wfk sim --app MODULE:ATTR --seeds 0..999``: the simulation from the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adapters.cli import main
from testing.simulate.seeds import parse_seeds
from tests.simulate import bugs

APP = ["--app", "tests.simulate.workflows:DEMO", "--inputs", "tests.simulate.workflows:numbers"]


def test_passing_seeds_print_a_summary_and_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sim", *APP, "--seeds", "0..2", "--runs", "4", "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("3 seeds passed (4 runs x 2 workers, ")
    assert "seeds/min" in out


def test_a_failing_seed_prints_its_shrunk_schedule_saves_it_and_exits_1(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    saved = tmp_path / "failure.json"
    with bugs.planted("lease hands out leased job"):
        code = main(["sim", *APP, "--seeds", "0..9", "--save", str(saved), "--quiet"])
    assert code == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("simulation seed 0 broke an invariant: no job leased by two")
    assert "shrunk schedule (" in captured.err and f"saved the shrunk schedule to {saved}" in (
        captured.err
    )
    assert captured.out.startswith("0 seeds passed") and "seed 0 failed" in captured.out
    assert json.loads(saved.read_text())["seed"] == 0


def test_workflows_that_need_inputs_without_inputs_is_a_usage_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["sim", "--app", "tests.simulate.workflows:DEMO", "--seeds", "0..1"]) == 2
    err = capsys.readouterr().err
    assert "workflow 'linear' needs inputs" in err and "pass --inputs MODULE:ATTR" in err


@pytest.mark.parametrize(
    ("seeds", "message"),
    [("5..4", "--seeds: '5..4' is empty"), ("a lot", "expected FIRST..LAST (like 0..999)")],
)
def test_bad_seeds_are_refused_naming_the_option(
    seeds: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sim", *APP, "--seeds", seeds]) == 2
    assert message in capsys.readouterr().err


def test_seeds_are_a_range_with_both_ends_or_one_seed() -> None:
    assert parse_seeds("0..999") == range(1000)
    assert parse_seeds("17") == range(17, 18)
