"""The demo's AI stages: offline by default, real providers only with a key (SPEC §11)."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from adapters.ai.anthropic import AnthropicProvider
from adapters.ai.openai import OpenAIProvider
from adapters.cli import main
from adapters.cli.ops import demo_provider
from adapters.demo import (
    OFFLINE_MODEL,
    SAMPLE_DOCUMENTS,
    demo_ai,
    demo_run_config,
    document_pipeline,
)
from adapters.sqlite import SqliteStore
from kernel import RunCreate, Status
from testing import create_test_kernel


def outputs(ai: bool) -> list[object]:
    """The outputs of the sample documents, on a kernel with or without the offline model."""
    tk = create_test_kernel(document_pipeline, ai=demo_ai() if ai else None)
    run_ids = [
        tk.dispatch(
            RunCreate(workflow_id=document_pipeline.id, input=attrs.asdict(document))
        ).workflow_run_id
        for document in SAMPLE_DOCUMENTS
    ]
    tk.run_until_idle()
    runs = [tk.store.get_run(run_id) for run_id in run_ids]
    assert all(run is not None and run.status == Status.COMPLETED for run in runs)
    if ai:
        for run_id in run_ids:
            ledger = tk.store.get_usage(run_id)
            assert sorted(e.kind for e in ledger) == ["object", "text"]
            assert {e.model for e in ledger} == {OFFLINE_MODEL}
    return [run.output for run in runs if run is not None]


def test_the_offline_model_answers_like_the_stand_ins() -> None:
    assert outputs(ai=True) == outputs(ai=False)


def test_wfk_demo_prints_each_run_s_model_calls_tokens_and_cost(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code = main(["demo"])
    out, err = capsys.readouterr()

    assert (code, err) == (0, "")
    assert f"asking {OFFLINE_MODEL}" in out
    ai_lines = [line for line in out.splitlines() if line.startswith("  ai: ")]
    assert len(ai_lines) == 3 and all(line.startswith("  ai: 2 calls, ") for line in ai_lines)
    store = SqliteStore(tmp_path / ".demo" / "demo.db")
    try:
        runs = store.list_runs()
        assert all(run.total_cost > 0 and run.budget is not None for run in runs)
        assert sum(len(store.get_usage(run.id)) for run in runs) == 6
    finally:
        store.close()


@pytest.mark.parametrize(
    ("provider", "key"), [("openai", "OPENAI_API_KEY"), ("anthropic", "ANTHROPIC_API_KEY")]
)
def test_a_real_provider_without_its_key_is_refused_before_anything_runs(
    provider: str,
    key: str,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(key, raising=False)
    code = main(["demo", "--provider", provider])
    out, err = capsys.readouterr()

    assert (code, out) == (2, "")
    assert err == (
        f"wfk: --provider {provider} calls the real {provider} API: set {key} first "
        "(or leave --provider out to run the offline model)\n"
    )
    assert not (tmp_path / ".demo").exists()


def test_with_a_key_the_demo_asks_the_real_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    assert isinstance(demo_provider("openai"), OpenAIProvider)
    assert isinstance(demo_provider("anthropic"), AnthropicProvider)
    assert demo_run_config("openai") == {
        "classify": {"model": "openai:gpt-4o-mini"},
        "summarize": {"model": "openai:gpt-4o-mini"},
    }
