"""Smoke tests of ``bench/cpu_execute.py``: on SQLite and on PostgreSQL, one job per
transaction and in groups, every stage runs (the script exits otherwise) and the
numbers print; the PostgreSQL schema it made is gone afterwards."""

from __future__ import annotations

import pytest
from psycopg import sql

from bench import cpu_execute
from tests.postgres_support import require_postgres, server_execute


def _rows(out: str) -> list[list[float]]:
    lines = out.strip().splitlines()
    assert lines[1].split()[-4:] == ["cpu", "ms", "per", "stage"]
    return [[float(value) for value in line.split()] for line in lines[2:]]


@pytest.mark.parametrize("group", [[], ["--group", "4"]], ids=["one-job", "groups"])
def test_on_sqlite(group: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert cpu_execute.main(["--runs", "20", "--repeat", "2", *group]) == 0
    out = capsys.readouterr().out
    assert out.startswith("store=sqlite runs=20 stages/run=3 group=")
    for _, seconds, rate, per_stage in _rows(out):
        assert seconds > 0 and rate > 0
        # seconds print rounded to 0.01 s: 0.005 s over 60 stages is 0.083 ms
        assert per_stage == pytest.approx(seconds * 1000 / 60, abs=0.09)


@pytest.mark.postgres
def test_on_postgres_in_a_schema_it_drops(capsys: pytest.CaptureFixture[str]) -> None:
    dsn = require_postgres()
    args = ["--runs", "20", "--repeat", "1", "--postgres", dsn, "--group", "16"]
    assert cpu_execute.main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("store=postgres runs=20 stages/run=3 group=16")
    [[number, seconds, rate, per_stage]] = _rows(out)
    assert number == 1 and seconds > 0 and rate > 0 and per_stage > 0
    query = sql.SQL("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'wfk_cpu_%'")
    assert server_execute(query) == [(0,)]
