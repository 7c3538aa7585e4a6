"""Smoke test of ``bench/end_to_end_postgres.py`` (every run completes, the numbers
print, its schema is dropped) and of ``bench/ratio.py``, which reads its output."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from psycopg import sql

from bench import end_to_end_postgres, ratio
from tests.postgres_support import require_postgres, server_execute

pytestmark = pytest.mark.postgres

DBOS_OUTPUT = """dbos direct, 4 thread(s) system database=postgres runs=1000 steps/run=3
workflows/s:        145
steps/s:            435
"""


def test_postgres_bench_completes_every_run_and_prints_its_numbers(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dsn = require_postgres()
    args = ["--dsn", dsn, "--runs", "20", "--workers", "2", "--tick-ms", "200"]
    args += ["--idle-runs", "3", "--gap-ms", "10", "--raw-seconds", "0.2"]
    assert end_to_end_postgres.main(args) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    heading = next(i for i, line in enumerate(lines) if "round trips/stage" in line)
    number, seconds, rate, tx, trips, statements, p50, p99, *cpu = (
        float(value) for value in lines[heading + 1].split()
    )
    assert number == 1 and len(cpu) == 2
    assert min(seconds, rate, tx, trips, statements, p50, p99) > 0
    assert p50 <= p99
    idle = next(line for line in lines if line.startswith("idle workers (3 runs"))
    counted = re.search(r"sent ([\d.]+) statements in ([\d.]+) round trips, ([\d.]+) write", idle)
    assert counted is not None, idle
    statements_per_run, trips_per_run, writes_per_run = map(float, counted.groups())
    # Each write transaction takes a round trip at least (a group may hold several runs).
    assert writes_per_run > 0 and trips_per_run >= writes_per_run
    assert statements_per_run >= trips_per_run
    assert "raw commit rate" in out and "target, 50 % of raw commit rate" in out
    schema = next(line for line in lines if line.startswith("schema ")).split()[1]
    query = sql.SQL("SELECT 1 FROM pg_namespace WHERE nspname = %s")
    assert server_execute(query, schema) == []
    assert ratio.stage_rate(out) == rate


def test_postgres_bench_vacuums_the_catalogs_when_asked_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    dsn = require_postgres()
    args = ["--dsn", dsn, "--runs", "3", "--workers", "1", "--tick-ms", "200"]
    args += ["--idle-runs", "0", "--raw-seconds", "0", "--vacuum-catalogs"]
    assert end_to_end_postgres.main(args) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("catalogs: "))
    counts = re.fullmatch(
        r"catalogs: ([\d,]+) dead rows, ([\d,]+) after a VACUUM \(autovacuum=(on|off)\)", line
    )
    assert counts is not None, line
    before, after = (int(value.replace(",", "")) for value in counts.groups()[:2])
    assert after <= before


def test_ratio_divides_the_stage_rate_by_dboss_steps(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ours = "\n".join(
        [
            "  #  seconds  stage exec/s  write tx/stage",
            "  1     1.00           900            1.50",
            "  2     1.00           800            1.50",
            "  3     1.00          1000            1.50",
            "idle workers (3 runs, one every 10 ms): p50 9.0 ms, p99 12.0 ms",
        ]
    )
    assert ratio.stage_rate(ours) == 900
    assert ratio.steps_rate(DBOS_OUTPUT) == 435
    with pytest.raises(ValueError, match="stage exec/s"):
        ratio.stage_rate("nothing here")
    (tmp_path / "ours.txt").write_text(ours)
    (tmp_path / "dbos.txt").write_text(DBOS_OUTPUT)
    assert ratio.main([str(tmp_path / "ours.txt"), str(tmp_path / "dbos.txt")]) == 0
    assert "900 stage executions/s / DBOS 435 steps/s = 2.1x" in capsys.readouterr().out
