"""``wfk worker`` when its database goes away, and the host's back-off log and stop bound.

A lost database is one warning, one line per back-off step and one line
when it is back, with no traceback unless ``--debug``; SIGTERM stops the
worker within the drain timeout plus ``STOP_GRACE`` whatever the database
does (refuses, never answers a connect, or goes silent mid-query). The
subprocess tests run ``wfk`` against PostgreSQL through a
:class:`~tests.adapters.test_postgres_connect.TcpProxy` the test breaks.
"""

from __future__ import annotations

import logging
import re
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from adapters import create_kernel
from adapters.demo import document_pipeline
from adapters.hosts import WorkerHost
from adapters.hosts.logs import BACKOFF_S, HostLog, Outage
from adapters.hosts.worker import STOP_GRACE
from adapters.memory import InMemoryStore
from kernel.errors import StoreError
from kernel.ports import Store
from tests.adapters.test_postgres_connect import TcpProxy
from tests.hosts.backends import postgres_url
from tests.hosts.test_cli_databases import DEMO_APP, command, environment
from tests.hosts.waiting import wait_for

DRAIN_S = 1.0
STOP_BOUND_S = DRAIN_S + STOP_GRACE.total_seconds() + 2.5
"""A stopped worker exits within the drain timeout, the grace, and a margin for the process."""


class Worker:
    """``wfk worker`` on a database through a :class:`TcpProxy`, its output in a file."""

    def __init__(self, url: str, tmp_path: Path, *extra: str) -> None:
        self.log = tmp_path / "worker.log"
        argv = command(
            "worker", "--app", DEMO_APP, "--store", url, "--worker-id", "w1",
            "--drain", str(DRAIN_S), "--tick", "0.2", "--poll", "0.1", *extra,
        )  # fmt: skip
        with self.log.open("w") as out:
            self.process = subprocess.Popen(
                argv, cwd=tmp_path, env=environment(), stdout=out, stderr=subprocess.STDOUT
            )

    def output(self) -> str:
        return self.log.read_text()

    def started(self) -> None:
        wait_for("the worker to start", lambda: "worker started" in self.output(), timeout=15)

    def terminate(self) -> float:
        """SIGTERM; returns how long the worker took to exit (it must exit 0)."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"worker did not exit:\n{self.output()}") from None
        took = time.monotonic() - started
        assert code == 0, self.output()
        return took

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def proxied(tmp_path: Path) -> Iterator[tuple[TcpProxy, str]]:
    """A proxy to the test server, and a ``postgresql://`` URL through it (a fresh schema)."""
    from tests.postgres_support import drop_schema, fresh_schema, require_postgres

    proxy = TcpProxy(require_postgres())
    schema = fresh_schema()
    yield proxy, postgres_url(proxy.proxied_dsn(), schema)
    proxy.close()
    drop_schema(schema)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


@pytest.mark.postgres
def test_a_lost_database_is_one_line_per_backoff_step_until_it_is_back(
    proxied: tuple[TcpProxy, str], tmp_path: Path, workers: list[Worker]
) -> None:
    proxy, url = proxied
    worker = Worker(url, tmp_path)
    workers.append(worker)
    worker.started()
    proxy.refuse()
    wait_for("a second back-off step", lambda: "store still unavailable" in worker.output())
    time.sleep(1.0)
    proxy.restore()
    wait_for("the database to be back", lambda: "store available again" in worker.output())
    took = worker.terminate()
    output = worker.output()
    assert "Traceback" not in output
    assert output.count("store unavailable: ") == 1
    # One line per back-off step, not one per failed call: however long the outage
    # lasted, the lines announce the steps of BACKOFF_S in order, each once.
    delays = re.findall(r"retrying in (\d+(?:\.\d)? s)", output)
    steps = [BACKOFF_S[min(k, len(BACKOFF_S) - 1)] for k in range(len(delays))]
    assert len(delays) >= 2, output
    assert delays == [f"{s:.1f} s" if s < 10 else f"{s:.0f} s" for s in steps], output
    assert "(connection refused)" in output
    assert output.count("store available again after ") == 1
    assert took < STOP_BOUND_S, output


@pytest.mark.postgres
@pytest.mark.parametrize("cut", [True, False], ids=["connects-hang", "server-hangs"])
def test_sigterm_stops_a_worker_in_time_whatever_the_database_does(
    proxied: tuple[TcpProxy, str], tmp_path: Path, workers: list[Worker], cut: bool
) -> None:
    """A black-holed server (``cut``: connects never answer; else open connections go silent)."""
    proxy, url = proxied
    worker = Worker(url, tmp_path)
    workers.append(worker)
    worker.started()
    proxy.hang(cut=cut)
    time.sleep(1.0)  # ticks and dequeues are now stuck in the database
    took = worker.terminate()
    assert took < STOP_BOUND_S, worker.output()
    assert "wfk worker w1 stopped" in worker.output()


@pytest.mark.postgres
def test_debug_shows_the_tracebacks_of_a_lost_database(
    proxied: tuple[TcpProxy, str], tmp_path: Path, workers: list[Worker]
) -> None:
    proxy, url = proxied
    worker = Worker(url, tmp_path, "--debug")
    workers.append(worker)
    worker.started()
    proxy.refuse()
    wait_for("a traceback", lambda: "Traceback" in worker.output())
    assert "store unavailable: " in worker.output()
    assert worker.terminate() < STOP_BOUND_S


# -- the back-off log and the stop bound, in-process ------------------------------------


class Unavailable(StoreError):
    """What an adapter raises when its database cannot be reached."""

    unavailable = True


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def outage_log() -> tuple[HostLog, FakeClock, list[logging.LogRecord]]:
    """A host log whose outage reads a fake clock, and the records it emits."""
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    logger = logging.getLogger(f"wfk-test-{uuid.uuid4().hex[:8]}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(Keep())
    log = HostLog("w1", logger)
    clock = FakeClock()
    log.outage = Outage(log._emit, clock)
    return log, clock, records


def fail(log: HostLog, message: str = "lost the connection") -> None:
    try:
        raise Unavailable(message)
    except Unavailable:
        log.exception("tick: claim failed")


def lines(records: list[logging.LogRecord], level: int = logging.INFO) -> list[str]:
    return [r.getMessage() for r in records if r.levelno >= level]


def test_an_outage_logs_one_line_per_backoff_step_and_lets_one_call_through() -> None:
    log, clock, records = outage_log()
    assert log.outage.may_try()
    fail(log)
    for _ in range(5):  # the other threads' calls fail too: counted, not logged
        fail(log)
    assert lines(records) == ["store unavailable: lost the connection; retrying in 1.0 s"]
    assert not log.outage.may_try()
    clock.now += 1.0
    assert log.outage.may_try()  # one attempt per step
    assert not log.outage.may_try()
    fail(log, "connection refused")
    assert lines(records)[1:] == [
        "store still unavailable after 1.0 s (7 failed call(s)): connection refused; "
        "retrying in 2.0 s"
    ]
    clock.now += 2.0
    assert log.outage.may_try()
    log.outage.recovered()
    assert lines(records)[2:] == ["store available again after 3.0 s (7 failed call(s))"]
    assert log.outage.may_try() and log.outage.may_try()
    assert all(r.exc_info is None for r in records if r.levelno >= logging.INFO)
    tracebacks = [r for r in records if r.levelno == logging.DEBUG]
    assert len(tracebacks) == 7 and all(r.exc_info for r in tracebacks)


def test_other_errors_keep_their_traceback_and_a_muted_outage_says_nothing() -> None:
    log, _, records = outage_log()
    try:
        raise StoreError("constraint violated")
    except StoreError:
        log.exception("tick: claim failed")
    assert [(r.getMessage(), r.levelno, bool(r.exc_info)) for r in records] == [
        ("tick: claim failed", logging.ERROR, True)
    ]
    log.outage.mute()
    fail(log)
    log.outage.recovered()
    assert lines(records)[1:] == []


class HangingStore:
    """An in-memory store whose every call blocks once ``hang`` is set."""

    def __init__(self) -> None:
        self.inner = InMemoryStore()
        self.hang = threading.Event()
        self.release = threading.Event()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.hang.is_set():
                self.release.wait(30)
            return attribute(*args, **kwargs)

        return call


def test_a_stop_returns_within_the_drain_timeout_when_the_store_hangs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = HangingStore()
    kernel = create_kernel(document_pipeline, store=cast(Store, store))
    host = WorkerHost(
        kernel, cast(Store, store), worker_id="w1", drain_timeout=timedelta(seconds=0.5),
        orchestration_interval=timedelta(milliseconds=50),
        job_poll_interval=timedelta(milliseconds=50),
    )  # fmt: skip
    returned: list[float] = []

    def run() -> None:
        host.run_forever()
        returned.append(time.monotonic())

    running = threading.Thread(target=run, daemon=True)
    try:
        running.start()
        wait_for("a first tick", lambda: host.stats().ticks >= 1)
        store.hang.set()
        time.sleep(0.2)  # the tick and the slots are now stuck in the store
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="workflow_kernel.hosts"):
            host.stop()
            assert time.monotonic() - started < 0.5 + STOP_GRACE.total_seconds() + 0.5
            running.join(timeout=5)
        assert returned and returned[0] - started < 0.5 + STOP_GRACE.total_seconds() + 0.5
        assert "stopping without the last store calls" in caplog.text
    finally:
        store.release.set()
