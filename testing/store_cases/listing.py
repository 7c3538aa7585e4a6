"""Conformance cases: ``list_runs`` one page at a time (``before``), filtered or not."""

from __future__ import annotations

from kernel.effects import InsertRun, UpdateRun
from kernel.records import WorkflowRun
from kernel.status import Status
from testing.store_cases.base import StoreCase, bump, make_run

COMPLETED, FAILED, RUNNING = Status.COMPLETED, Status.FAILED, Status.RUNNING

RUNS = [
    # id, seconds after T0, workflow, status; inserted in this order.
    ("r01", 0, "alpha", COMPLETED),
    ("r02", 1, "beta", FAILED),
    ("r03", 1, "gamma", COMPLETED),
    ("r04", 1, "alpha", RUNNING),
    ("r05", 2, "beta", COMPLETED),
    ("r06", 3, "gamma", FAILED),
    ("r07", 3, "alpha", COMPLETED),
    ("r08", 4, "beta", RUNNING),
    ("r09", 5, "gamma", COMPLETED),
    ("r10", 5, "alpha", FAILED),
    ("r11", 6, "beta", COMPLETED),
    ("r12", 7, "gamma", RUNNING),
]
"""Twelve runs of three workflows; some were created at the same instant."""

NEWEST_FIRST = ["r12", "r11", "r10", "r09", "r08", "r07", "r06", "r05", "r04", "r03", "r02", "r01"]
"""``RUNS`` as ``list_runs`` orders them: by creation time, ties by insertion, newest first."""

WORKFLOW = {run_id: workflow for run_id, _, workflow, _ in RUNS}
STATUS = {run_id: status for run_id, _, _, status in RUNS}


class ListingCases(StoreCase):
    """``list_runs(status, workflow_id, limit, before=...)`` pages through runs (SPEC §7)."""

    def add_listed_runs(self) -> None:
        """Insert ``RUNS``, each in a transaction of its own."""
        for run_id, seconds, workflow, status in RUNS:
            self.apply(InsertRun(make_run(run_id, seconds, workflow_id=workflow, status=status)))

    def walk(
        self, size: int, status: Status | None = None, workflow_id: str | None = None
    ) -> list[list[str]]:
        """Every page of ``size`` runs, each starting after the last run of the one before,
        up to the first page shorter than ``size``."""
        pages: list[list[str]] = []
        before: str | None = None
        while not pages or len(pages[-1]) == size:
            page = self.store.list_runs(status, workflow_id, size, before=before)
            pages.append([run.id for run in page])
            before = page[-1].id if page else None
        return pages

    def test_walking_the_pages_lists_every_run_once_newest_first(self) -> None:
        """Pages chained by ``before`` give every run exactly once, in order."""
        self.add_listed_runs()
        assert self.walk(5) == [NEWEST_FIRST[0:5], NEWEST_FIRST[5:10], NEWEST_FIRST[10:]]
        assert self.walk(4) == [NEWEST_FIRST[0:4], NEWEST_FIRST[4:8], NEWEST_FIRST[8:], []]

    def test_the_page_after_a_run_starts_just_after_it(self) -> None:
        """``before`` is the last run of the previous page; the next page starts after it."""
        self.add_listed_runs()
        page = self.store.list_runs(limit=3, before="r08")
        assert [run.id for run in page] == ["r07", "r06", "r05"]
        assert self.store.list_runs(before="r01") == []

    def test_pages_by_status_list_only_that_status(self) -> None:
        """With ``status``, the pages hold exactly the runs in that status, in order."""
        self.add_listed_runs()
        completed = [run_id for run_id in NEWEST_FIRST if STATUS[run_id] is COMPLETED]
        assert completed == ["r11", "r09", "r07", "r05", "r03", "r01"]
        assert self.walk(4, status=COMPLETED) == [completed[:4], completed[4:]]

    def test_pages_by_workflow_list_only_that_workflow(self) -> None:
        """With ``workflow_id``, the pages hold exactly that workflow's runs, in order."""
        self.add_listed_runs()
        assert self.walk(2, workflow_id="alpha") == [["r10", "r07"], ["r04", "r01"], []]

    def test_pages_by_status_and_workflow_list_runs_matching_both(self) -> None:
        """Both filters intersect, page by page."""
        self.add_listed_runs()
        assert self.walk(1, status=FAILED, workflow_id="gamma") == [["r06"], []]
        assert self.walk(1, status=COMPLETED, workflow_id="beta") == [["r11"], ["r05"], []]

    def test_before_may_name_a_run_the_filter_excludes(self) -> None:
        """``before`` is a position in the list of all runs: it need not match the filters."""
        self.add_listed_runs()
        assert STATUS["r08"] is RUNNING and WORKFLOW["r08"] == "beta"
        failed = self.store.list_runs(status=FAILED, before="r08")
        assert [run.id for run in failed] == ["r06", "r02"]
        alpha = self.store.list_runs(workflow_id="alpha", limit=1, before="r08")
        assert [run.id for run in alpha] == ["r07"]
        both = self.store.list_runs(status=COMPLETED, workflow_id="gamma", before="r08")
        assert [run.id for run in both] == ["r03"]

    def test_an_unknown_before_gives_no_runs(self) -> None:
        """A ``before`` naming no run gives an empty page, filtered or not."""
        self.add_listed_runs()
        assert self.store.list_runs(before="missing") == []
        assert self.store.list_runs(status=COMPLETED, before="missing") == []
        assert self.store.list_runs(workflow_id="alpha", before="missing") == []
        assert self.store.list_runs(COMPLETED, "alpha", 10, before="missing") == []

    def test_runs_created_at_one_instant_are_listed_newest_inserted_first(self) -> None:
        """Equal creation times keep insertion order (newest first), in one transaction
        or across several, and paging through them one at a time loses none."""
        self.apply(InsertRun(make_run("m", 5)), InsertRun(make_run("z", 5)))
        self.apply(InsertRun(make_run("a", 5)))
        self.apply(InsertRun(make_run("old", 1)), InsertRun(make_run("k", 5)))
        expected = ["k", "a", "z", "m", "old"]
        assert [run.id for run in self.store.list_runs()] == expected
        one_by_one = [[run_id] for run_id in expected] + [[]]
        assert self.walk(1) == one_by_one
        assert self.walk(1, status=Status.PENDING) == one_by_one
        assert self.walk(1, workflow_id="wf") == one_by_one
        assert self.walk(1, status=Status.PENDING, workflow_id="wf") == one_by_one

    def test_runs_created_after_the_first_page_do_not_shift_the_next(self) -> None:
        """A page continues after its ``before`` run, however many runs were created since."""
        self.add_listed_runs()
        first = self.store.list_runs(limit=3)
        for n in range(5):
            self.apply(InsertRun(make_run(f"new-{n}", 100 + n)))
        second = self.store.list_runs(limit=3, before=first[-1].id)
        assert [run.id for run in first + second] == NEWEST_FIRST[:6]

    def test_a_run_keeps_its_place_when_its_status_changes(self) -> None:
        """Updates move a run between status filters, never within the order."""
        self.add_listed_runs()
        running: WorkflowRun | None = self.store.get_run("r08")
        assert running is not None
        self.apply(UpdateRun(bump(running, status=FAILED), expected_version=running.version))
        assert [run.id for run in self.store.list_runs(limit=6)] == NEWEST_FIRST[:6]
        failed = self.walk(2, status=FAILED)
        assert failed == [["r10", "r08"], ["r06", "r02"], []]
        assert [run.id for run in self.store.list_runs(status=RUNNING)] == ["r12", "r04"]
