"""The runs list: filters by status and workflow, search by run id or idempotency key,
and keyset pages ("Older →") that cost the same at run 100,000 as at run 1."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from starlette.testclient import TestClient

from adapters.memory import InMemoryStore
from adapters.sqlite import SqliteStore
from adapters.ui import create_app
from kernel import Status, WorkflowRun
from kernel.effects import InsertRun
from kernel.ports import Store
from testing import TestKernel
from tests.harness import T0
from tests.ui.conftest import Client, create
from tests.ui.html import Element, parse


def listed(page: Element) -> list[str]:
    return [row.attrs["data-run"] for row in page.find("tr", data_run=None)]


def older_link(page: Element) -> str | None:
    links = page.find("a", rel="next")
    return links[0].attrs["href"] if links else None


def test_runs_filter_by_status_and_by_workflow(tk: TestKernel, client: Client) -> None:
    done = create(tk, "pipeline")
    failed = create(tk, "exploding")
    tk.run_until_idle()
    pending = create(tk, "pipeline")
    web = client()

    assert listed(parse(web.get("/?status=FAILED").text)) == [failed]
    assert listed(parse(web.get("/?workflow=pipeline").text)) == [pending, done]
    assert listed(parse(web.get("/?status=completed&workflow=pipeline").text)) == [done]
    assert "No runs match these filters" in web.get("/?workflow=nothing").text


def test_a_bad_filter_is_a_400_that_names_the_parameter_and_value(client: Client) -> None:
    response = client().get("/?status=DONE")

    assert response.status_code == 400
    assert "status: expected one of PENDING, RUNNING" in response.text
    assert "got &#39;DONE&#39;" in response.text
    assert (
        "limit: expected a number from 1 to 500, got &#39;0&#39;" in client().get("/?limit=0").text
    )


def test_search_by_run_id_or_idempotency_key_opens_the_run(tk: TestKernel, client: Client) -> None:
    keyed = create(tk, "pipeline", idempotency_key="invoice-42")
    web = client()

    by_id = web.get(f"/?q={keyed}", follow_redirects=False)
    by_key = web.get("/?q=invoice-42", follow_redirects=False)

    assert (by_id.status_code, by_id.headers["location"]) == (303, f"/runs/{keyed}")
    assert (by_key.status_code, by_key.headers["location"]) == (303, f"/runs/{keyed}")


def test_a_search_that_finds_nothing_says_so(client: Client) -> None:
    response = client().get("/?q=nobody")

    assert response.status_code == 404
    assert "no run has the id or idempotency key &#39;nobody&#39;" in response.text


def test_pages_follow_one_another_without_gaps_or_repeats(tk: TestKernel, client: Client) -> None:
    made = []
    for number in range(7):
        made.append(create(tk, "pipeline", title=f"doc {number}"))
        tk.clock.advance(timedelta(seconds=1))
    web = client()

    first = parse(web.get("/?limit=3").text)
    second = parse(web.get(str(older_link(first))).text)
    third = parse(web.get(str(older_link(second))).text)

    newest_first = made[::-1]
    assert [listed(first), listed(second), listed(third)] == [
        newest_first[:3],
        newest_first[3:6],
        newest_first[6:],
    ]
    assert older_link(third) is None
    query = parse_qs(urlsplit(str(older_link(first))).query)
    assert query == {"limit": ["3"], "before": [newest_first[2]]}
    assert [a.text for a in second.find("a") if a.text.startswith("←")] == ["← Newest"]


@pytest.mark.parametrize(("kind", "bound_s"), [("memory", 2.0), ("sqlite", 0.5)])
def test_a_page_stays_fast_at_100_000_runs(tmp_path: Path, kind: str, bound_s: float) -> None:
    """Keyset pagination: a page deep in the list is one store query (on SQLite, one
    index range scan), not a scan that the page number makes longer. The in-memory
    store sorts every run per call: the slowest case, hence its looser bound."""
    store: Store = InMemoryStore() if kind == "memory" else SqliteStore(tmp_path / "many.db")
    runs = [
        WorkflowRun(
            id=f"run-{number:06d}",
            workflow_id="pipeline",
            workflow_name="Pipeline",
            status=Status.COMPLETED if number % 10 else Status.FAILED,
            input={"title": str(number)},
            created_at=T0 + timedelta(seconds=number),
        )
        for number in range(100_000)
    ]
    with store.transaction() as tx:
        tx.apply([InsertRun(run) for run in runs])
    web = TestClient(create_app(store))
    timings = []
    for url in ("/", "/?before=run-050000", "/?status=FAILED&before=run-000100"):
        started = time.perf_counter()
        response = web.get(url)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 200
    page = parse(web.get("/?before=run-050000").text)
    assert listed(page)[:2] == ["run-049999", "run-049998"]
    assert older_link(page) == "/?before=run-049950"
    assert max(timings) < bound_s, timings
    store.close()


@pytest.mark.parametrize("limit", ["1", "500"])
def test_the_page_size_is_the_limit(tk: TestKernel, client: Client, limit: str) -> None:
    for _ in range(3):
        create(tk, "pipeline")

    shown = listed(parse(client().get(f"/?limit={limit}").text))

    assert len(shown) == min(int(limit), 3)
