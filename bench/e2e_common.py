"""What the end-to-end benchmarks share: SQL counting, the figures they print, RSS."""

from __future__ import annotations

import re
import resource
import sqlite3
import statistics
import sys
import time
from pathlib import Path

from attrs import frozen

from adapters.sqlite import SqliteStore
from adapters.sqlite.store import CHECKPOINT_PAGES
from bench.store_ops import STAGES
from kernel import Status
from kernel.events import Event

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")
_CTE_WRITE = re.compile(r"WITH\b.*\b(?:INSERT|UPDATE|DELETE)\b", re.I | re.S)


class SqlTrace:
    """Counts statements, and write transactions, from a ``sqlite3`` trace callback.

    A write transaction is a ``COMMIT`` that followed a write since its
    ``BEGIN``, or a write run outside ``BEGIN``/``COMMIT`` (autocommit). The
    store serialises all use of its connection, so the callback never races.
    """

    def __init__(self) -> None:
        self.statements = 0
        self.write_transactions = 0
        self.commits = 0
        self._in_transaction = False
        self._wrote = False

    def __call__(self, sql: str) -> None:
        self.statements += 1
        text = sql.lstrip()
        while text.startswith("--"):  # the store's statements open with comments
            newline = text.find("\n")
            text = "" if newline < 0 else text[newline + 1 :].lstrip()
        head = text[:8].upper()
        if head.startswith("SELECT"):
            return
        if head.startswith("BEGIN"):
            self._in_transaction, self._wrote = True, False
        elif head.startswith(("COMMIT", "END")):
            self.commits += 1
            self.write_transactions += self._wrote
            self._in_transaction, self._wrote = False, False
        elif head.startswith("ROLLBACK"):
            self._in_transaction, self._wrote = False, False
        elif head.startswith(_WRITES) or (head.startswith("WITH") and _CTE_WRITE.match(text)):
            if self._in_transaction:
                self._wrote = True
            else:
                self.write_transactions += 1


class DiscardingSink:
    """An event sink that drops every event (the benchmarks measure the engine, and a
    collecting sink would grow with every run)."""

    max_retries = 3

    def emit(self, event: Event) -> None:
        pass


@frozen
class Figures:
    """One measurement."""

    completed: int
    seconds: float
    stages: int
    write_transactions: int
    statements: int
    cpu_seconds: float
    """Process time of every process that took part (producer and workers)."""
    p50_ms: float
    p99_ms: float
    sqlite_calls: tuple[float, int] | None = None
    """With ``--sqlite-time``: CPU seconds spent inside ``sqlite3`` calls, and how many."""
    replayed: tuple[float, int] | None = None
    """With ``--replay``: CPU seconds the same statements took replayed alone, and how many
    (:mod:`bench.sqlite_replay`)."""

    @property
    def rate(self) -> float:
        return self.stages / self.seconds

    def row(self) -> str:
        """The figures as one line of the benchmark's table (without the attempt number)."""
        per = self.stages or 1
        return (
            f"{self.completed:>9} {self.seconds:>8.2f} {self.rate:>13.0f} "
            f"{self.write_transactions / per:>15.2f} {self.statements / per:>12.1f} "
            f"{self.cpu_seconds * 1000 / per:>13.3f} {self.p50_ms:>9.1f} {self.p99_ms:>9.1f}"
        )


def latencies(store: SqliteStore, ids: list[str]) -> list[float]:
    """Milliseconds from ``created_at`` to ``completed_at`` of each run."""
    millis = []
    for run_id in ids:
        run = store.get_run(run_id)
        assert run is not None and run.completed_at is not None, run_id
        millis.append((run.completed_at - run.created_at).total_seconds() * 1000)
    return millis


def figures(
    store: SqliteStore,
    ids: list[str],
    runs: int,
    elapsed: float,
    cpu: float,
    trace: SqlTrace,
    *more: SqlTrace,
) -> Figures:
    """Check that every run completed and sum up the measurement."""
    completed = len(store.list_runs(status=Status.COMPLETED, limit=runs + 1))
    if completed != runs or len(ids) != runs:
        raise SystemExit(f"{completed} of {runs} runs completed ({len(ids)} created)")
    millis = latencies(store, ids)
    cuts = statistics.quantiles(millis, n=100) if len(millis) > 1 else millis * 99
    traces = (trace, *more)
    return Figures(
        completed=completed,
        seconds=elapsed,
        stages=runs * STAGES,
        write_transactions=sum(t.write_transactions for t in traces),
        statements=sum(t.statements for t in traces),
        cpu_seconds=cpu,
        p50_ms=statistics.median(millis),
        p99_ms=cuts[98],
    )


def rss_kib() -> int:
    """This process's resident memory now, in KiB (its peak where ``/proc`` is missing)."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        pages = int(statm.read_text().split()[1])
        return pages * resource.getpagesize() // 1024
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def raw_commit_rate(path: Path, seconds: float) -> float:
    """Single-row INSERT transactions per second on a new SQLite file at ``path``, one
    connection, with the settings ``SqliteStore`` writes with (WAL,
    ``synchronous=NORMAL``, its checkpoint interval, ``BEGIN IMMEDIATE``): the
    commit limit of this machine's SQLite, with no engine around it."""
    if seconds <= 0:
        raise ValueError(f"seconds: expected a number > 0, got {seconds!r}")
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")
        db.execute(f"PRAGMA wal_autocheckpoint = {CHECKPOINT_PAGES:d}")
        db.execute("CREATE TABLE raw_commits (id INTEGER PRIMARY KEY, n INTEGER NOT NULL)")
        commits = 0
        start = time.perf_counter()
        deadline = start + seconds
        while time.perf_counter() < deadline:
            db.execute("BEGIN IMMEDIATE")
            db.execute("INSERT INTO raw_commits (n) VALUES (?)", (commits,))
            db.execute("COMMIT")
            commits += 1
        return commits / (time.perf_counter() - start)
    finally:
        db.close()
