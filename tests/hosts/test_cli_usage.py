"""What runs spent, on the command line: ``wfk run show`` shows cost, tokens and calls per
stage and the run's cost and budget; ``wfk usage RUN_ID`` lists the usage ledger with a
total line; ``--json`` gives money as decimal strings (SPEC §8, §11)."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from adapters.cli import main
from adapters.cli.render import cost, stages_table
from adapters.demo import document_pipeline
from adapters.sqlite import SqliteStore
from kernel import RunCreate, Status, Usage, UsageRecord
from testing import create_test_kernel
from testing.store_cases.base import make_stage

CALLS = [
    ("call-1", "extract", 1, "openai:gpt-4o-mini", Usage(1200, 300, cached_input_tokens=200)),
    ("call-2", "extract", 2, "openai:gpt-4o-mini", Usage(800, 100)),
    ("call-3", "summarize", 1, "anthropic:claude-haiku", Usage(500, 50, reasoning_tokens=40)),
]
COSTS = [Decimal("0.00012300"), Decimal("0.1"), Decimal("0.2")]


@pytest.fixture
def store_path(tmp_path: Path) -> Path:
    return tmp_path / "wfk.db"


@pytest.fixture
def url(store_path: Path) -> str:
    return f"sqlite:///{store_path}"


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert err == ""
    return code, out


def spending_run(store_path: Path, budget: Decimal | None = Decimal("5")) -> str:
    """A completed run of the demo pipeline (its classify stage reports cost 0.00002 and
    2 tokens, summarize 2 tokens) whose stages paid for ``CALLS``; the third call's model
    is missing from the price table, which its note says."""
    store = SqliteStore(store_path)
    try:
        tk = create_test_kernel(document_pipeline, store=store)
        run_id = tk.dispatch(
            RunCreate(
                workflow_id="document-pipeline",
                input={"title": "T", "text": "some words"},
                budget=budget,
            )
        ).workflow_run_id
        tk.run_until_idle()
        for (call_id, stage_id, attempt, model, usage), paid in zip(CALLS, COSTS, strict=True):
            tk.dispatch(
                UsageRecord(
                    call_id=call_id,
                    workflow_run_id=run_id,
                    stage_id=stage_id,
                    attempt=attempt,
                    model=model,
                    kind="text",
                    usage=usage,
                    cost=paid,
                    priced=call_id != "call-3",
                    note="no price for this model" if call_id == "call-3" else None,
                )
            )
    finally:
        store.close()
    return run_id


def test_cost_prints_every_digit_of_a_decimal_without_exponent_or_trailing_zeros() -> None:
    assert [cost(value) for value in (*COSTS, Decimal("0E-8"), Decimal("1E-8"))] == [
        "0.000123",
        "0.1",
        "0.2",
        "0",
        "0.00000001",
    ]


def test_usage_lists_each_call_in_record_order_with_a_total_line(
    capsys: pytest.CaptureFixture[str], store_path: Path, url: str
) -> None:
    run_id = spending_run(store_path)
    code, out = run_cli(capsys, "usage", run_id[:8], "--store", url)
    assert code == 0
    header, *rows, total, spent = out.splitlines()
    assert header.split() == [
        "AT", "STAGE", "ATTEMPT", "MODEL", "KIND", "IN", "CACHED", "OUT", "REASONING", "COST",
        "NOTE",
    ]  # fmt: skip
    assert [row.split()[2:] for row in rows] == [
        ["extract", "1", "openai:gpt-4o-mini", "text", "1200", "200", "300", "0", "0.000123"],
        ["extract", "2", "openai:gpt-4o-mini", "text", "800", "0", "100", "0", "0.1"],
        ["summarize", "1", "anthropic:claude-haiku", "text", "500", "0", "50", "40", "0.2",
         "unpriced;", "no", "price", "for", "this", "model"],
    ]  # fmt: skip
    assert total.split() == ["total", "3", "calls", "2500", "200", "450", "40", "0.300123"]
    # The run's own figures add what classify and summarize reported themselves.
    assert spent == f"run {run_id}: cost 0.300143 of budget 5 (4.699857 left)    tokens 2994"


def test_usage_json_gives_the_entries_totals_and_money_as_decimal_strings(
    capsys: pytest.CaptureFixture[str], store_path: Path, url: str
) -> None:
    run_id = spending_run(store_path)
    code, out = run_cli(capsys, "usage", run_id, "--json", "--store", url)
    assert code == 0
    shown = json.loads(out)
    assert [entry["call_id"] for entry in shown["usage"]] == ["call-1", "call-2", "call-3"]
    assert shown["usage"][0]["cost"] == "0.00012300"
    assert shown["usage"][0]["usage"] == {
        "input_tokens": 1200,
        "output_tokens": 300,
        "cached_input_tokens": 200,
        "reasoning_tokens": 0,
    }
    assert (shown["usage"][2]["priced"], shown["usage"][2]["note"]) == (
        False,
        "no price for this model",
    )
    assert shown["total"] == {
        "calls": 3,
        "input_tokens": 2500,
        "cached_input_tokens": 200,
        "output_tokens": 450,
        "reasoning_tokens": 40,
        "cost": "0.30012300",
    }
    assert (shown["run_total_cost"], shown["budget"]) == ("0.30014300", "5")


def test_usage_of_a_run_without_calls_says_so(
    capsys: pytest.CaptureFixture[str], store_path: Path, url: str
) -> None:
    store = SqliteStore(store_path)
    try:
        tk = create_test_kernel(document_pipeline, store=store)
        created = tk.dispatch(
            RunCreate(workflow_id="document-pipeline", input={"title": "T", "text": "x"})
        )
    finally:
        store.close()
    code, out = run_cli(capsys, "usage", created.workflow_run_id, "--store", url)
    assert (code, out) == (0, f"no AI calls recorded for run {created.workflow_run_id}\n")


def test_run_show_prints_cost_tokens_and_calls_per_stage_and_the_runs_budget(
    capsys: pytest.CaptureFixture[str], store_path: Path, url: str
) -> None:
    """Stages that paid for calls or reported spend show their cost, tokens and calls;
    figures a stage never had are ``-``."""
    run_id = spending_run(store_path)
    code, out = run_cli(capsys, "run", "show", run_id, "--store", url)
    assert code == 0
    lines = out.splitlines()
    assert "usage     cost 0.300143 of budget 5 (4.699857 left)    tokens 2994" in lines
    header = "#  STAGE      STATUS     ATTEMPT  DURATION  COST      TOKENS  CALLS  ERROR"
    start = lines.index(header)
    assert [line.split()[:2] + line.split()[-3:] for line in lines[start + 1 : start + 5]] == [
        ["1", "extract", "0.100123", "2400", "2"],
        ["2", "classify", "0.00002", "2", "-"],
        ["3", "summarize", "0.2", "592", "1"],
        ["4", "merge", "-", "-", "-"],
    ]
    code, out = run_cli(capsys, "run", "show", run_id, "--json", "--store", url)
    shown = json.loads(out)
    assert (shown["run"]["total_cost"], shown["run"]["budget"]) == ("0.30014300", "5")
    metrics = {stage["stage_id"]: stage["metrics"] for stage in shown["stages"]}
    assert metrics["extract"] == {"total_cost": "0.10012300", "total_tokens": 2400, "calls": 2}


def test_stages_that_spent_nothing_get_no_usage_columns() -> None:
    stages = [make_stage("run-1", "a", status=Status.COMPLETED, attempt=1)]
    assert stages_table(stages).splitlines() == [
        "#  STAGE  STATUS     ATTEMPT  DURATION  ERROR",
        "1  a      COMPLETED  1        -",
    ]
