"""``wfk run signal``, and how ``run show`` and ``--wait`` show a run waiting for one (SPEC §13).

Every command runs through the real ``wfk`` entry point in a subprocess, on
the workflows of :mod:`tests.hosts.signal_apps`: ``draft → approve →
publish``, where ``approve`` waits for the signal ``approval``. A run is
brought to its signal stage with ``wfk run create --wait``, which stops
there; and a run given an idempotency key is driven on with ``wfk run
create --key KEY --wait`` again (the key names the same run).
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.sqlite import SqliteStore
from kernel import Status
from tests.hosts.test_cli_polish import open_store, wfk

pytestmark = pytest.mark.slow  # every test starts wfk processes

APP = "tests.hosts.signal_apps:approval_app"
DRAFT = json.dumps({"title": "Q3 report"})
APPROVED = json.dumps({"approved": True, "by": "ann"})
TIME = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"


@pytest.fixture
def url(tmp_path: Path) -> str:
    """A SQLite store URL whose database exists (created and migrated here)."""
    SqliteStore(tmp_path / "wfk.db").close()
    return f"sqlite:///{tmp_path / 'wfk.db'}"


def create(tmp_path: Path, url: str, workflow: str = "approval", *extra: str) -> str:
    """A PENDING run (``--key KEY`` in ``extra`` to drive it on later); its id."""
    done = wfk(
        tmp_path, "run", "create", workflow, "--app", APP, "--input", DRAFT, "--store", url,
        "--json", *extra,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    run_id: str = json.loads(done.stdout)["workflow_run_id"]
    return run_id


def run_here(tmp_path: Path, url: str, key: str, workflow: str = "approval") -> str:
    """``wfk run create --key KEY --wait``: run the key's run here until it ends or
    waits for a signal; what it printed."""
    done = wfk(
        tmp_path, "run", "create", workflow, "--app", APP, "--input", DRAFT, "--key", key,
        "--wait", "--store", url,
    )  # fmt: skip
    assert done.stderr == ""
    return done.stdout


def waiting_run(tmp_path: Path, url: str, workflow: str = "approval", key: str = "k") -> str:
    """A run waiting at its signal stage; its id."""
    out = run_here(tmp_path, url, key, workflow)
    run_id = out.split()[2].rstrip(";")
    assert f"{run_id[:8]}  approve      SUSPENDED  (waiting for signal approval" in out
    return run_id


def signal(tmp_path: Path, url: str, run_id: str, *extra: str, payload: str = APPROVED) -> str:
    done = wfk(
        tmp_path, "run", "signal", run_id, "approval", "--payload", payload, "--app", APP,
        "--store", url, *extra,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


def show(tmp_path: Path, url: str, run_id: str, *extra: str) -> str:
    done = wfk(tmp_path, "run", "show", run_id, "--store", url, *extra)
    assert (done.returncode, done.stderr) == (0, ""), done.stderr
    return done.stdout


def refused(tmp_path: Path, *argv: str) -> tuple[int, str]:
    """Run ``wfk``, which must fail printing nothing on stdout: its exit code and stderr."""
    done = wfk(tmp_path, *argv)
    assert done.stdout == ""
    return done.returncode, done.stderr


def stage_rows(output: str) -> list[str]:
    """The stages table's rows (and the lines under them)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("#  STAGE"))
    end = next((i for i in range(start, len(lines)) if not lines[i].strip()), len(lines))
    return lines[start + 1 : end]


def at(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


# -- delivered ----------------------------------------------------------------------------------


def test_wait_stops_at_the_signal_stage_and_says_how_to_send_the_signal(
    tmp_path: Path, url: str
) -> None:
    done = wfk(
        tmp_path, "run", "create", "approval", "--app", APP, "--input", DRAFT, "--wait",
        "--store", url,
    )  # fmt: skip
    assert (done.returncode, done.stderr) == (1, "")  # the run has not COMPLETED
    run_id = done.stdout.split()[2].rstrip(";")
    short = run_id[:8]
    lines = done.stdout.splitlines()
    assert f"{short}  run          SUSPENDED  (waiting on approve)" in lines
    summary = lines[lines.index(f"run {run_id}  SUSPENDED in -") :]
    assert [line.split()[:3] for line in summary[1:3]] == [
        ["1.", "draft", "COMPLETED"],
        ["2.", "approve", "SUSPENDED"],
    ]
    assert summary[3].startswith("  waiting for signal approval since ")
    assert summary[4] == (
        f"  send it with `wfk run signal {short} approval --payload JSON`; a worker runs the rest"
    )


def test_a_signal_completes_the_waiting_stage(tmp_path: Path, url: str) -> None:
    run_id = waiting_run(tmp_path, url)
    rows = stage_rows(show(tmp_path, url, run_id[:8]))
    assert [row.split()[1:3] for row in rows[:2]] == [
        ["draft", "COMPLETED"],
        ["approve", "SUSPENDED"],
    ]
    found = re.fullmatch(
        rf" +waiting for signal approval since ({TIME}) \(times out at ({TIME})\)", rows[2]
    )
    assert found is not None, rows[2]
    since, until = at(found[1]), at(found[2])
    assert until - since == timedelta(hours=48)
    assert abs(datetime.now(UTC) - since) < timedelta(minutes=1)

    out = signal(tmp_path, url, run_id[:8], "--key", "approval-1")
    assert out == f"signal 'approval' delivered to run {run_id}\n"
    # The same key again replays the result and sends nothing more.
    assert signal(tmp_path, url, run_id, "--key", "approval-1") == out
    rows = stage_rows(show(tmp_path, url, run_id))
    assert [row.split()[1:3] for row in rows] == [
        ["draft", "COMPLETED"],
        ["approve", "COMPLETED"],
        ["publish", "PENDING"],
    ]
    out = run_here(tmp_path, url, "k")
    assert f"run {run_id}  COMPLETED in " in out
    assert out.rstrip().endswith('output: {"title": "Q3 report", "approved": true, "by": "ann"}')
    shown = json.loads(show(tmp_path, url, run_id, "--json"))
    (sent,) = shown["signals"]
    assert (sent["name"], sent["stage_id"]) == ("approval", "approve")
    assert sent["payload"] == {"approved": True, "by": "ann", "comment": ""}  # defaults filled
    assert sent["consumed_at"] is not None


def test_signal_json(tmp_path: Path, url: str) -> None:
    run_id = waiting_run(tmp_path, url)
    assert json.loads(signal(tmp_path, url, run_id, "--json")) == {
        "workflow_run_id": run_id,
        "signal": "approval",
        "delivered": True,
        "buffered": False,
    }


def test_a_stage_waiting_without_timeout_shows_no_timeout(tmp_path: Path, url: str) -> None:
    run_id = waiting_run(tmp_path, url, "patient")
    note = stage_rows(show(tmp_path, url, run_id))[2]
    assert re.fullmatch(rf" +waiting for signal approval since {TIME}", note), note


# -- buffered -----------------------------------------------------------------------------------


def test_a_signal_sent_before_the_stage_waits_is_kept_then_consumed(
    tmp_path: Path, url: str
) -> None:
    run_id = create(tmp_path, url, "approval", "--key", "early")
    payload = json.dumps({"approved": False, "by": "bob", "comment": "too long"})
    out = signal(tmp_path, url, run_id, payload=payload)
    assert out == f"signal 'approval' buffered on run {run_id} (no stage waits for it yet)\n"
    shown = show(tmp_path, url, run_id)
    assert "no stages yet (the run waits for a worker)\nsignals kept: approval (1)\n" in shown
    (kept,) = json.loads(show(tmp_path, url, run_id, "--json"))["signals"]
    assert (kept["consumed_at"], kept["stage_id"]) == (None, None)

    out = run_here(tmp_path, url, "early")
    assert f"{run_id[:8]}  approve      SIGNALLED  approval" in out
    assert out.rstrip().endswith('output: {"title": "Q3 report", "approved": false, "by": "bob"}')
    shown = show(tmp_path, url, run_id)
    assert "signals kept" not in shown
    (taken,) = json.loads(show(tmp_path, url, run_id, "--json"))["signals"]
    assert taken["stage_id"] == "approve"


def test_signals_kept_are_counted_by_name(tmp_path: Path, url: str) -> None:
    run_id = create(tmp_path, url)
    for _ in range(2):
        signal(tmp_path, url, run_id)
    assert "\nsignals kept: approval (2)\n" in show(tmp_path, url, run_id)


# -- refused ------------------------------------------------------------------------------------


def test_bad_signals_are_refused_naming_what_is_wrong_and_write_nothing(
    tmp_path: Path, url: str
) -> None:
    run_id = waiting_run(tmp_path, url)

    def send(run: str, name: str, payload: str, *app: str) -> tuple[int, str]:
        return refused(
            tmp_path, "run", "signal", run, name, "--payload", payload, "--store", url, *app
        )

    assert send("00000000", "approval", APPROVED, "--app", APP) == (
        1,
        "wfk: workflow run '00000000' does not exist\n",
    )
    assert send(run_id, "nope", APPROVED, "--app", APP) == (
        1,
        "wfk: invalid input: signal: no stage of workflow 'approval' waits for signal 'nope' "
        "(its signals: 'approval')\n",
    )
    assert send(run_id, "approval", '{"approved": "yes", "by": 7}', "--app", APP) == (
        1,
        "wfk: invalid input: payload.approved: expected bool, got 'yes'; "
        "payload.by: expected str, got 7\n",
    )
    assert send(run_id, "approval", '{"approved": true}', "--app", APP) == (
        1,
        "wfk: invalid input: payload.by: required field missing\n",
    )
    assert send(run_id, "approval", "{approved: yes}", "--app", APP) == (
        1,
        "wfk: --payload '{approved: yes}': not valid JSON: Expecting property name enclosed in "
        "double quotes (line 1, column 2)\n",
    )
    assert send(run_id, "approval", APPROVED, "--app", "adapters.demo:document_pipeline") == (
        1,
        f"wfk: run {run_id} is of workflow 'approval', which is not registered by "
        "adapters.demo:document_pipeline (it has: document-pipeline)\n",
    )
    code, err = send(run_id, "approval", APPROVED)
    assert code == 2
    assert err.startswith("wfk: this command needs the workflows: pass --app MODULE:ATTRIBUTE")
    store = open_store(url)
    try:
        assert store.get_signals(run_id) == []
        assert [s.status for s in store.get_stages(run_id)] == [Status.COMPLETED, Status.SUSPENDED]
    finally:
        store.close()


@pytest.mark.parametrize("how", ["cancelled", "completed"])
def test_a_run_that_ended_takes_no_signal(tmp_path: Path, url: str, how: str) -> None:
    run_id = waiting_run(tmp_path, url)
    if how == "cancelled":
        assert wfk(tmp_path, "run", "cancel", run_id, "--store", url).returncode == 0
    else:
        signal(tmp_path, url, run_id)
        assert "COMPLETED in" in run_here(tmp_path, url, "k")
    code, err = refused(
        tmp_path, "run", "signal", run_id, "approval", "--payload", APPROVED, "--app", APP,
        "--store", url,
    )  # fmt: skip
    status = how.upper()
    assert (code, err) == (
        1,
        f"wfk: workflow run {run_id!r} is {status}: it takes no more signals\n",
    )


def test_a_stage_whose_wait_timed_out_takes_no_signal(tmp_path: Path, url: str) -> None:
    """``hasty`` waits one second; no worker runs, so the stage is still SUSPENDED after it."""
    run_id = waiting_run(tmp_path, url, "hasty")
    store = open_store(url)
    try:
        (until,) = [s.max_wait_until for s in store.get_stages(run_id) if s.stage_id == "approve"]
    finally:
        store.close()
    assert until is not None
    time.sleep(max((until - datetime.now(UTC)).total_seconds(), 0) + 0.05)
    code, err = refused(
        tmp_path, "run", "signal", run_id, "approval", "--payload", APPROVED, "--app", APP,
        "--store", url,
    )  # fmt: skip
    assert code == 1
    assert err == (
        f"wfk: stage 'approve' of run {run_id!r} stopped waiting for signal 'approval' at "
        f"{until.isoformat()} (SIGNAL_TIMEOUT)\n"
    )
