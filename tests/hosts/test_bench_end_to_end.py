"""Smoke test of ``bench/end_to_end.py``: it runs, every run completes, the numbers print."""

from __future__ import annotations

import pytest

from bench import end_to_end


def test_end_to_end_bench_completes_every_run_and_prints_its_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert end_to_end.main(["--runs", "30", "--tick-ms", "50", "--rate", "1000"]) == 0
    out = capsys.readouterr().out
    assert "python 3." in out and "cores" in out
    assert "created_at/completed_at" in out
    row = out.strip().splitlines()[-1].split()
    assert len(row) == 8
    number, completed, seconds, rate, tx, statements, p50, p99 = (float(v) for v in row)
    assert number == 1 and completed == 30
    assert min(seconds, rate, tx, statements, p50, p99) > 0
    assert p50 <= p99
