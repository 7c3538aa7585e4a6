"""``bench/instructions.py``: instructions per stage from two callgrind counts.

valgrind itself is replaced by a script that answers as callgrind does, so these
tests check the benchmark's own work (the command it runs, the report it reads,
the arithmetic) in milliseconds rather than a minute.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from bench import instructions

_FAKE_VALGRIND = """#!/bin/sh
# Answers like callgrind: 1,000,000 instructions of start-up, 30 per run
# (10 per stage), read from the --runs option of the command it was given.
runs=0
while [ $# -gt 0 ]; do
  if [ "$1" = "--runs" ]; then runs=$2; fi
  shift
done
echo "==7== Events    : Ir" >&2
echo "==7== Collected : $((1000000 + runs * 30))" >&2
echo "==7==" >&2
"""


@pytest.fixture
def fake_valgrind(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    script = tmp_path / "bin" / "valgrind"
    script.parent.mkdir()
    script.write_text(_FAKE_VALGRIND)
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{script.parent}{os.pathsep}{os.environ['PATH']}")
    return script


def test_the_instructions_of_one_more_stage_are_printed(
    fake_valgrind: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert instructions.main(["--small", "10", "--large", "40"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1].split() == [
        "10",
        "runs:",
        "1,000,300",
        "instructions;",
        "40",
        "runs:",
        "1,001,200",
    ]
    assert out[2].split() == ["per", "stage", "execution:", "10"]


def test_the_count_is_read_from_callgrinds_closing_report() -> None:
    report = "==12== Events    : Ir\n==12== Collected : 3950743095\n==12==\n"
    assert instructions.collected(report) == 3_950_743_095
    with pytest.raises(ValueError, match="no 'Collected' line"):
        instructions.collected("==12== valgrind: failed to start tool\n")


def test_sizes_that_leave_no_difference_to_divide_are_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        instructions.main(["--small", "300", "--large", "300"])
    assert exit_.value.code == 2
    assert "expected 0 < small < large, got 300, 300" in capsys.readouterr().err


def test_no_valgrind_is_an_error_that_names_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(SystemExit) as exit_:
        instructions.main([])
    assert exit_.value.code == 2
    assert "valgrind: not found (Debian's package 'valgrind'" in capsys.readouterr().err


def test_a_root_without_the_projects_virtualenv_is_an_error_that_says_how_to_link_it(
    fake_valgrind: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit_:
        instructions.main(["--root", str(tmp_path)])
    assert exit_.value.code == 2
    assert f"--root: no .venv/bin/python in {tmp_path.resolve()}" in capsys.readouterr().err
