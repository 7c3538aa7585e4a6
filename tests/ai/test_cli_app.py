"""``wfk worker --app`` gives the kernel it builds the app's AIConfig and batch
providers, so AI workflows run under the command-line worker too."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from adapters.cli.apps import load_app
from adapters.cli.errors import CliError
from adapters.sqlite import SqliteStore
from kernel import AIConfig, RunCreate, Status
from testing import FakeAIProvider, FakeBatchProvider, create_test_kernel
from tests.ai.cli_app import APP, CONFIG, WORKFLOW
from tests.ai.support import PRICES
from tests.hosts.test_cli_databases import command, environment
from tests.hosts.waiting import wait_for


def test_an_app_list_may_hold_an_ai_config_and_batch_providers() -> None:
    app = load_app("tests.ai.cli_app:APP")

    assert app.workflow_ids() == ["ai"]
    assert app.ai is CONFIG
    assert [type(provider) for provider in app.batch_providers] == [FakeBatchProvider]


def test_two_ai_configs_in_one_app_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    import tests.ai.cli_app as module

    second = AIConfig([FakeAIProvider()], PRICES)
    monkeypatch.setattr(module, "TWICE", [*APP, second], raising=False)

    with pytest.raises(CliError, match="holds 2 AIConfig objects; give one"):
        load_app("tests.ai.cli_app:TWICE")


def test_a_cli_worker_runs_an_ai_stage_and_its_call_is_in_the_ledger(tmp_path: Path) -> None:
    path = tmp_path / "wfk.db"
    store = SqliteStore(path)
    try:
        creator = create_test_kernel(WORKFLOW, store=store)
        run_id = creator.dispatch(
            RunCreate(workflow_id="ai", input={"text": "tides"})
        ).workflow_run_id
    finally:
        store.close()
    log = tmp_path / "worker.log"
    argv = command("worker", "--app", "tests.ai.cli_app:APP", "--store", f"sqlite:///{path}")
    with log.open("w") as out:
        process = subprocess.Popen(
            argv, cwd=tmp_path, env=environment(), stdout=out, stderr=subprocess.STDOUT
        )
    reader = SqliteStore(path)
    try:

        def finished() -> bool:
            run = reader.get_run(run_id)
            return run is not None and run.is_terminal

        wait_for("the run to finish", finished, timeout=30)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0, log.read_text()
        run = reader.get_run(run_id)
        assert run is not None and run.status == Status.COMPLETED, log.read_text()
        [entry] = reader.get_usage(run_id)
        assert (entry.model, entry.kind, entry.usage.total_tokens) == ("fake:small", "text", 15)
        assert run.total_cost == entry.cost > 0
    finally:
        reader.close()
        if process.poll() is None:
            process.kill()
            process.wait(10)
