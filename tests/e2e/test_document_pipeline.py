"""The document pipeline of ``adapters/demo.py``, end to end (SPEC §4.3, §8)."""

from __future__ import annotations

from decimal import Decimal

from adapters.demo import SAMPLE_DOCUMENTS, DocumentInput, document_pipeline
from kernel import RunCreate, StageStarted, Status
from kernel.convert import to_json
from testing import CollectingEventSink
from tests.harness import TK, MakeKernel, event_types, run_of

QUARTERLY = SAMPLE_DOCUMENTS[0]
"""'Revenue grew as the market recovered and the bank cut its price of credit.'"""


def create_report_run(tk: TK, document: DocumentInput = QUARTERLY) -> str:
    return tk.dispatch(
        RunCreate(workflow_id="document-pipeline", input=to_json(document))
    ).workflow_run_id


def test_document_pipeline_completes_with_the_merged_report(make_tk: MakeKernel) -> None:
    """SPEC §4.3: extract → parallel(classify, summarize) → merge, computed by hand:
    14 words; "revenue", "market", "bank" and "price" are finance words and no
    other label matches; the summary is the first 12 words and an ellipsis."""
    tk = make_tk(document_pipeline)
    run_id = create_report_run(tk)

    executed = tk.run_until_idle()

    assert executed == 4
    run = run_of(tk.store, run_id)
    assert run.status == Status.COMPLETED
    assert run.output == {
        "title": "Quarterly report",
        "summary": "Revenue grew as the market recovered and the bank cut its price…",
        "categories": ["finance"],
        "word_count": 14,
    }


def test_document_pipeline_sums_the_model_metrics(make_tk: MakeKernel) -> None:
    """SPEC §5.3: classify and summarize each count 14 tokens; classify costs
    0.00001 per token."""
    tk = make_tk(document_pipeline)
    run_id = create_report_run(tk)

    tk.run_until_idle()

    run = run_of(tk.store, run_id)
    assert (run.total_tokens, run.total_cost) == (28, Decimal("0.00014"))


def test_document_pipeline_runs_each_stage_once_in_order(
    make_tk: MakeKernel, sink: CollectingEventSink
) -> None:
    """SPEC §3.3, §4.3: every stage starts and completes once; the parallel group
    runs between extract and merge."""
    tk = make_tk(document_pipeline)
    run_id = create_report_run(tk)

    tk.run_until_idle()

    started = [e.stage_id for e in sink.of_type(StageStarted)]
    assert started[0] == "extract" and started[-1] == "merge"
    assert sorted(started[1:3]) == ["classify", "summarize"]
    assert event_types(tk.store, run_id) == [e.type for e in sink.events]
    assert event_types(tk.store, run_id)[-1] == "workflow:completed"
    sequences = [e.sequence for e in tk.store.get_outbox(run_id)]
    assert sequences == list(range(1, len(sequences) + 1))


def test_document_pipeline_logs_the_summary_digest(make_tk: MakeKernel) -> None:
    """SPEC §4.1: ``ctx.log`` lines are stored with the run."""
    tk = make_tk(document_pipeline)
    run_id = create_report_run(tk)

    tk.run_until_idle()

    [entry] = tk.store.get_logs(run_id)
    assert (entry.level, entry.message) == ("INFO", "summarised")
    assert set(entry.metadata) == {"digest"}


def test_every_sample_document_completes(make_tk: MakeKernel) -> None:
    """SPEC §8: the demo's three documents all run to completion side by side."""
    tk = make_tk(document_pipeline)
    run_ids = [create_report_run(tk, document) for document in SAMPLE_DOCUMENTS]

    tk.run_until_idle()

    outputs = [run_of(tk.store, run_id).output for run_id in run_ids]
    assert [o["categories"] for o in outputs] == [["finance"], ["technology"], ["sports"]]
