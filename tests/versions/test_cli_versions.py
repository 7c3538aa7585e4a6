"""The command line shows each run's workflow version, creates runs of a named version
and says which versions a worker serves (SPEC §16)."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.cli.apps import load_app
from tests.hosts.test_cli_databases import command, environment
from tests.hosts.waiting import wait_for

APP = "tests.versions.workflows:APP"


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'wfk.db'}"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def create(capsys: pytest.CaptureFixture[str], url: str, *extra: str) -> str:
    code, out, err = run_cli(
        capsys, "run", "create", "pricing", "--app", APP, "--input", '{"value": 1}',
        "--store", url, "--create", "--json", *extra,
    )  # fmt: skip
    assert code == 0, err
    run_id: str = json.loads(out)["workflow_run_id"]
    return run_id


def test_runs_and_run_show_say_each_runs_version(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    newest = create(capsys, url)
    pinned = create(capsys, url, "--version", "1")

    code, out, _ = run_cli(capsys, "runs", "--store", url)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:4] == ["RUN", "WORKFLOW", "VERSION", "STATUS"]
    assert [row.split()[:4] for row in rows] == [
        [pinned, "pricing", "1", "PENDING"],
        [newest, "pricing", "2", "PENDING"],
    ]
    code, out, _ = run_cli(capsys, "runs", "--json", "--store", url)
    assert [(run["id"], run["workflow_version"]) for run in json.loads(out)] == [
        (pinned, "1"),
        (newest, "2"),
    ]
    code, out, _ = run_cli(capsys, "run", "show", newest, "--store", url)
    assert out.splitlines()[1] == "workflow  pricing (Pricing v2)    version 2"
    code, out, _ = run_cli(capsys, "run", "show", pinned, "--json", "--store", url)
    assert json.loads(out)["run"]["workflow_version"] == "1"


def test_run_create_of_an_unknown_version_is_refused(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    code, out, err = run_cli(
        capsys, "run", "create", "pricing", "--app", APP, "--input", '{"value": 1}',
        "--store", url, "--create", "--version", "9",
    )  # fmt: skip
    assert (code, out) == (1, "")
    assert "workflow 'pricing' version '9' is not registered" in err


def test_a_worker_says_which_versions_it_serves(url: str, tmp_path: Path) -> None:
    """``wfk worker``'s start line lists each workflow with the versions it holds."""
    log = tmp_path / "worker.log"
    argv = command("worker", "--app", APP, "--store", url, "--create", "--worker-id", "w1")
    with log.open("w") as out:
        process = subprocess.Popen(
            argv, cwd=tmp_path, env=environment(), stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for("the worker to start", lambda: "stops it" in log.read_text(), timeout=15)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    first = log.read_text().splitlines()[0]
    assert first == f"wfk worker w1 on {url}: pricing (versions 1, 2); SIGTERM or Ctrl-C stops it"


def test_an_apps_workflows_are_listed_once_with_their_versions() -> None:
    app = load_app(APP)
    assert (app.workflow_ids(), app.served()) == (["pricing"], "pricing (versions 1, 2)")
    demo = load_app("adapters.demo:document_pipeline")
    assert demo.served() == "document-pipeline (version 1)"
