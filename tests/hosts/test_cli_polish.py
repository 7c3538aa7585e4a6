"""``wfk`` polish, through the real entry point in a subprocess (issue 10, item 8).

``--version``; a closed pipe (``| head``) ends quietly; a repeated ``--key``
says the run already exists; ``--wait`` prints the run's events in sequence
order; a rerun shows its duration and the run's in all; the demo groups
parallel stages and prints each run as a block; Ctrl-C drains, and a second
Ctrl-C gives the running job back to the queue.

The helpers here (:func:`wfk`, :func:`start_wfk`, ...) serve ``test_cli_show.py`` too.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import attrs
import pytest

from adapters.cli.interrupts import DRAINING
from adapters.demo import SAMPLE_DOCUMENTS
from adapters.sqlite import SqliteStore
from kernel import JobStatus, Status
from kernel.records import OutboxEvent
from tests.hosts.apps import finish_markers, start_markers
from tests.hosts.backends import Backend
from tests.hosts.waiting import wait_for

pytestmark = pytest.mark.slow  # every test starts wfk processes

ROOT = Path(__file__).resolve().parents[2]
DEMO_APP = "adapters.demo:document_pipeline"
SLOW_APP = "tests.hosts.apps:slow_app"
INPUT = json.dumps(attrs.asdict(SAMPLE_DOCUMENTS[0]))
TIMEOUT_S = 60


def wfk_command() -> list[str]:
    """The installed ``wfk`` script next to this Python, else ``python -m adapters.cli``."""
    script = Path(sys.executable).with_name("wfk")
    return [str(script)] if script.exists() else [sys.executable, "-m", "adapters.cli"]


def wfk_env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("WFK_")}
    return {**env, "PYTHONPATH": str(ROOT)}


def wfk(cwd: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``wfk ARGV`` to the end; its exit code, stdout and stderr."""
    return subprocess.run(
        [*wfk_command(), *argv],
        cwd=cwd,
        env=wfk_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


class Running:
    """A ``wfk`` subprocess whose stdout and stderr go to files, read while it runs."""

    def __init__(self, cwd: Path, *argv: str) -> None:
        self.out_path = cwd / f"wfk-{os.urandom(4).hex()}.out"
        self.err_path = self.out_path.with_suffix(".err")
        with self.out_path.open("w") as out, self.err_path.open("w") as err:
            self.process = subprocess.Popen(
                [*wfk_command(), *argv], cwd=cwd, env=wfk_env(), stdout=out, stderr=err
            )

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def interrupt(self) -> None:
        self.process.send_signal(signal.SIGINT)

    def wait(self, timeout: float = TIMEOUT_S) -> int:
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"wfk did not exit:\nstdout:\n{self.out}\nstderr:\n{self.err}"
            ) from None

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


@pytest.fixture
def started(tmp_path: Path) -> Iterator[list[Running]]:
    """``wfk`` processes a test starts: killed at the end if still running."""
    processes: list[Running] = []
    yield processes
    for process in processes:
        process.close()


def start_wfk(started: list[Running], cwd: Path, *argv: str) -> Running:
    process = Running(cwd, *argv)
    started.append(process)
    return process


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite store URL whose database exists (created and migrated here)."""
    SqliteStore(tmp_path / "wfk.db").close()
    return f"sqlite:///{tmp_path / 'wfk.db'}"


def open_store(url: str) -> SqliteStore:
    return SqliteStore(url.removeprefix("sqlite:///"))


def create_demo_run(tmp_path: Path, url: str, *extra: str) -> str:
    """A document-pipeline run (``--wait``: run to the end); its id."""
    done = wfk(
        tmp_path, "run", "create", "document-pipeline", "--app", DEMO_APP, "--input", INPUT,
        "--store", url, "--json", *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    run_id: str = shown["run"]["id"] if "--wait" in extra else shown["workflow_run_id"]
    return run_id


def outbox(url: str, run_id: str) -> list[OutboxEvent]:
    store = open_store(url)
    try:
        return store.get_outbox(run_id)
    finally:
        store.close()


# -- --version ------------------------------------------------------------------------------------


def test_version_prints_the_installed_version(tmp_path: Path) -> None:
    done = wfk(tmp_path, "--version")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"wfk {metadata.version('workflow-kernel')}\n"


# -- a closed pipe --------------------------------------------------------------------------------


def test_a_reader_that_goes_away_ends_wfk_quietly(tmp_path: Path, url: str) -> None:
    """``wfk run show RUN | head -1``: no traceback, no "Exception ignored", exit 0 or 141."""
    document = {"title": "Long", "text": "word " * 40_000}  # far more than a pipe holds
    (tmp_path / "long.json").write_text(json.dumps(document))
    done = wfk(
        tmp_path, "run", "create", "document-pipeline", "--app", DEMO_APP,
        "--input", "@long.json", "--store", url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.split()[2]
    for extra in (["--json"], []):
        process = subprocess.Popen(
            [*wfk_command(), "run", "show", run_id, "--store", url, *extra],
            cwd=tmp_path,
            env=wfk_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None and process.stderr is not None
        if extra:
            assert process.stdout.readline() == "{\n"  # head -1: one line, then gone
        process.stdout.close()  # plain: gone before wfk writes anything
        err = process.stderr.read()
        process.stderr.close()
        assert process.wait(TIMEOUT_S) in (0, 141)
        assert err == ""


def test_help_into_a_closed_pipe_is_quiet_too(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [*wfk_command(), "--help"],
        cwd=tmp_path,
        env=wfk_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read()
    process.stderr.close()
    assert process.wait(TIMEOUT_S) in (0, 141)
    assert err == ""


# -- a repeated --key -----------------------------------------------------------------------------


def test_a_repeated_key_says_the_run_already_exists(tmp_path: Path, url: str) -> None:
    argv = [
        "run", "create", "document-pipeline", "--app", DEMO_APP, "--input", INPUT,
        "--key", "order-42", "--store", url,
    ]  # fmt: skip
    first = wfk(tmp_path, *argv)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("created run ") and first.stdout.endswith(" (PENDING)\n")
    run_id = first.stdout.split()[2]
    again = wfk(tmp_path, *argv)
    assert (again.returncode, again.stdout, again.stderr) == (
        0,
        f"run {run_id} already exists (PENDING)\n",
        "",
    )
    shown = json.loads(wfk(tmp_path, *argv, "--json").stdout)
    assert shown == {"workflow_run_id": run_id, "status": "PENDING", "created": False}
    # --wait runs it here; once it ended, the key says so and shows how it ended.
    waited = wfk(tmp_path, *argv, "--wait")
    assert waited.returncode == 0, waited.stderr
    assert waited.stdout.startswith(f"run {run_id} already exists (PENDING); running it here")
    assert f"run {run_id}  COMPLETED in " in waited.stdout
    ended = wfk(tmp_path, *argv, "--wait")
    assert ended.returncode == 0
    assert ended.stdout.startswith(f"run {run_id} already exists (COMPLETED)\n\nrun {run_id}  ")
    assert wfk(tmp_path, *argv).stdout == f"run {run_id} already exists (COMPLETED)\n"
    store = open_store(url)
    assert [run.id for run in store.list_runs()] == [run_id]
    store.close()


# -- --wait: events in causal order ---------------------------------------------------------------

EVENT_WORDS = {
    "workflow:created": "PENDING",
    "workflow:started": "RUNNING",
    "workflow:completed": "COMPLETED",
    "stage:started": "RUNNING",
    "stage:completed": "COMPLETED",
}


def test_wait_prints_the_runs_events_in_sequence_order(tmp_path: Path, url: str) -> None:
    done = wfk(
        tmp_path, "run", "create", "document-pipeline", "--app", DEMO_APP, "--input", INPUT,
        "--wait", "--store", url,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, "")
    run_id = done.stdout.split()[2].rstrip(";")
    printed = [
        line.split()[1:3] for line in done.stdout.splitlines() if line.startswith(run_id[:8])
    ]
    expected = [
        [
            str(event.payload.get("stage_id", "run")),
            EVENT_WORDS.get(event.event_type)
            or f"{round(float(event.payload['progress']) * 100)}%",
        ]
        for event in sorted(outbox(url, run_id), key=lambda event: event.sequence)
    ]
    assert printed == expected
    assert printed[0] == ["run", "PENDING"] and printed[-1] == ["run", "COMPLETED"]
    merge_starts = printed.index(["merge", "RUNNING"])
    assert ["classify", "COMPLETED"] in printed[:merge_starts]
    assert ["summarize", "COMPLETED"] in printed[:merge_starts]


# -- rerun durations ------------------------------------------------------------------------------


def test_after_a_rerun_the_run_shows_its_duration_in_all_and_the_reruns(
    tmp_path: Path, url: str
) -> None:
    run_id = create_demo_run(tmp_path, url, "--wait")
    done = wfk(
        tmp_path, "run", "rerun", run_id, "--from", "merge", "--app", DEMO_APP, "--wait",
        "--store", url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    # --wait shows the rerun's events only.
    assert [line.split()[1:3] for line in lines[1:5]] == [
        ["run", "RUNNING"],
        ["merge", "RUNNING"],
        ["merge", "COMPLETED"],
        ["run", "COMPLETED"],
    ]
    summary = re.search(r"COMPLETED in (\d+) ms for the rerun, (\d+) ms in all", done.stdout)
    assert summary is not None, done.stdout
    shown = wfk(tmp_path, "run", "show", run_id, "--store", url).stdout
    header = re.search(r"duration (\d+) ms for the rerun, (\d+) ms in all", shown)
    assert header is not None, shown
    assert header.groups() == summary.groups()
    store = open_store(url)
    run = store.get_run(run_id)
    store.close()
    assert run is not None and run.duration_ms is not None
    first = next(
        event.payload["duration_ms"]
        for event in outbox(url, run_id)
        if event.event_type == "workflow:completed"
    )
    assert (int(header[1]), int(header[2])) == (run.duration_ms, first + run.duration_ms)


# -- the demo -------------------------------------------------------------------------------------


def test_the_demo_groups_parallel_stages_and_does_not_interleave_runs(tmp_path: Path) -> None:
    done = wfk(tmp_path, "demo")
    assert (done.returncode, done.stderr) == (0, ""), done.stdout
    lines = done.stdout.splitlines()
    summaries = [line.split() for line in lines if re.match(r"  \d\. ", line)]
    assert [" ".join(words[1:-3]) for words in summaries] == [
        "extract",
        "classify ∥ summarize",
        "merge",
    ] * 3
    assert all(words[-3] == "COMPLETED" for words in summaries)
    live = [line[:8] for line in lines if re.match(r"[0-9a-f]{8}  ", line)]
    blocks = [run for index, run in enumerate(live) if index == 0 or live[index - 1] != run]
    assert len(blocks) == len(set(blocks)) == 3  # each run's lines together


# -- Ctrl-C ---------------------------------------------------------------------------------------


def jobs_by_stage(store_url: str, backend: Backend | None, run_id: str) -> dict[str, JobStatus]:
    store = backend.open() if backend is not None else open_store(store_url)
    try:
        return {job.stage_id: job.status for job in store.get_jobs(run_id)}
    finally:
        if backend is None:
            store.close()


def slow_run(
    started: list[Running],
    tmp_path: Path,
    url: str,
    seconds: float,
    backend: Backend | None = None,
) -> tuple[Running, str]:
    """``wfk run create slow --wait``, once its slow stage runs; the process and the run id."""
    if backend is not None:
        backend.open()  # the database (its schema) exists before wfk uses it
    spec = json.dumps({"marker_dir": str(tmp_path), "seconds": seconds})
    process = start_wfk(
        started, tmp_path, "run", "create", "slow", "--app", SLOW_APP, "--input", spec,
        "--wait", "--store", url,
    )  # fmt: skip

    def slow_started() -> list[Path]:
        if process.process.poll() is not None:
            raise AssertionError(f"wfk exited early:\n{process.out}\n{process.err}")
        return start_markers(tmp_path)

    wait_for("the slow stage to start", slow_started, timeout=30)
    first = process.out.split()
    return process, first[2].rstrip(";")


def test_ctrl_c_lets_the_running_stage_finish_then_exits_130(
    started: list[Running], tmp_path: Path, url: str
) -> None:
    process, run_id = slow_run(started, tmp_path, url, seconds=1.0)
    process.interrupt()
    assert process.wait() == 130
    assert DRAINING in process.err
    assert "interrupted: the running stages finished; run " in process.err
    assert "Traceback" not in process.err
    assert len(finish_markers(tmp_path)) == 1  # the stage ran to its end
    jobs = jobs_by_stage(url, None, run_id)
    assert jobs == {
        "prepare": JobStatus.COMPLETED,
        "slow": JobStatus.COMPLETED,
        "finish": JobStatus.QUEUED,  # left for any worker: this one took no new job
    }


def test_a_second_ctrl_c_gives_the_running_job_back_to_the_queue(
    started: list[Running], tmp_path: Path, backend: Backend
) -> None:
    process, run_id = slow_run(started, tmp_path, backend.url, seconds=120, backend=backend)
    process.interrupt()
    wait_for("the drain to begin", lambda: DRAINING in process.err)
    process.interrupt()
    assert process.wait(timeout=30) == 130
    assert "abandoned: 1 running job(s) went back to the queue" in process.err
    assert "Traceback" not in process.err
    assert not finish_markers(tmp_path)
    jobs = jobs_by_stage(backend.url, backend, run_id)
    assert jobs["slow"] == JobStatus.QUEUED  # not LEASED by a dead process until the reaper
    store = backend.open()
    stages = {stage.stage_id: stage for stage in store.get_stages(run_id)}
    assert stages["slow"].status == Status.PENDING
    run = store.get_run(run_id)
    assert run is not None and run.status == Status.RUNNING
