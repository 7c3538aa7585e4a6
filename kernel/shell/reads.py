"""What a phase may load: the open transaction's reads, the registry, and the
loads several commands share (a run with its stages, a group's stored outputs)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol, cast, runtime_checkable

from kernel.decisions.lifecycle import StageState, output_key
from kernel.ports import StoreTransaction, WorkflowRegistry
from kernel.records import Job, Json, WorkflowRun, WorkflowStage
from kernel.status import Status
from kernel.workflows import Workflow

RunRecords = tuple[WorkflowRun | None, list[WorkflowStage]]
"""A run (``None``: no such run) and its stage records, in ``get_stages``' order."""

RunSnapshot = tuple[WorkflowRun | None, list[WorkflowStage], dict[str, Json]]
"""A run, its stage records, and stored outputs of some of them by stage record id."""


@runtime_checkable
class SnapshotReads(Protocol):
    """Reads a store transaction may add to the port's to save statements on a job's
    path; without them the shell uses ``get_run``, ``get_stages``, ``get_blob`` and
    ``get_job``.

    ``unchanged`` lets a job's finish decide on the records its start left
    (:attr:`~kernel.effects.ExecuteStage.stages_read`) instead of reading them
    again. What it checked must stay so until the transaction ends: a store whose
    write transactions run one at a time (SQLite's ``BEGIN IMMEDIATE``) has
    that for free; one with row locks must take them, as its ``get_run`` does.
    """

    def get_run_with_stages(self, run_id: str, group: int = 0) -> RunSnapshot:
        """``get_run`` and ``get_stages`` at once, with the stored value named by the
        ``output_ref`` of COMPLETED stages of execution group ``group``, by stage record
        id (none for group 0, or where nothing is stored). A store may leave any out:
        the shell reads what is missing with ``get_blob``."""
        ...

    def unchanged(self, run: WorkflowRun, stages: Sequence[WorkflowStage], job: Job | None) -> bool:
        """Whether the run and its stage records are still at these versions (the
        same records, no more, no fewer) and ``job`` (if any) is still exactly this."""
        ...


@runtime_checkable
class ManySnapshots(Protocol):
    """A read a store transaction may add to save statements when a worker starts a
    group of jobs: the runs of several jobs with their stages at once."""

    def get_runs_with_stages(self, requests: Sequence[tuple[str, int]]) -> list[RunSnapshot]:
        """``get_run_with_stages(run_id, group)`` for each ``(run_id, group)`` of
        ``requests`` (distinct runs), in their order."""
        ...

    def unchanged_many(
        self, items: Sequence[tuple[WorkflowRun, Sequence[WorkflowStage], Job | None]]
    ) -> list[bool]:
        """``unchanged(run, stages, job)`` of each item (distinct runs), in their order."""
        ...


@runtime_checkable
class ManyLeases(Protocol):
    """A lease a store transaction may add to save statements when a worker leases a
    group of jobs."""

    def lease_next_jobs(
        self,
        worker_id: str,
        now: datetime,
        n: int,
        *,
        versions: Collection[tuple[str, str]] | None = None,
    ) -> tuple[list[Job], bool]:
        """Up to ``n`` jobs (at least one if any is available), leased as that many
        ``lease_next_job`` calls in a row would lease them, and whether the call
        stopped at a job with a limit key before ``n``: only then may asking again
        lease more (fewer than ``n`` otherwise means no other job is available)."""
        ...


_CAPABLE: dict[tuple[type[Any], tuple[str, ...]], bool] = {}
"""Whether each transaction class has each optional capability (checked once a class)."""


def _has(tx: StoreTransaction, *names: str) -> bool:
    """Whether ``tx``'s class has every method ``names`` names. Looked up on the class,
    not the object: a wrapper that hands unknown attributes on to the transaction it
    wraps (adapters.blobs_store) must not lend out reads that would skip what it does
    to ``get_run``."""
    key = (type(tx), names)
    found = _CAPABLE.get(key)
    if found is None:
        found = _CAPABLE[key] = all(callable(getattr(type(tx), name, None)) for name in names)
    return found


def _snapshot_reads(tx: StoreTransaction) -> SnapshotReads | None:
    found = _has(tx, "get_run_with_stages", "unchanged")
    return cast("SnapshotReads", tx) if found else None


def _many_snapshots(tx: StoreTransaction) -> ManySnapshots | None:
    found = _has(tx, "get_runs_with_stages", "unchanged_many")
    return cast("ManySnapshots", tx) if found else None


def _many_leases(tx: StoreTransaction) -> ManyLeases | None:
    return cast("ManyLeases", tx) if _has(tx, "lease_next_jobs") else None


class Reads:
    """Loads for one phase, inside its transaction."""

    def __init__(self, tx: StoreTransaction, registry: WorkflowRegistry, now: datetime) -> None:
        self.tx = tx
        """The open transaction, for the reads that choose rows (claims, leases)."""
        self.registry = registry
        self.now = now
        """The decision's time, for reads that choose rows by it (due, stale)."""
        self._snapshots = _snapshot_reads(tx)
        self._outputs: dict[str, Json] = {}
        """Stored outputs this phase read along with their run, by stage record id."""

    def run_records(self, run_id: str, *, outputs_of: int = 0) -> RunRecords:
        """The run and its stage records (no stages without a run). A store with
        :class:`SnapshotReads` also reads the stored outputs of group ``outputs_of``
        in the same statement, for :meth:`group_outputs` to take."""
        if self._snapshots is not None:
            run, stages, outputs = self._snapshots.get_run_with_stages(run_id, outputs_of)
            self._outputs.update(outputs)
            return run, stages
        run = self.tx.get_run(run_id)
        return run, self.tx.get_stages(run_id) if run is not None else []

    def lease_jobs(self, worker_id: str, n: int) -> list[Job]:
        """Lease up to ``n`` queued jobs of workflow versions this kernel knows (those of
        others stay QUEUED for a worker that does), in lease order; one statement
        each, or a few for all where the store has :class:`ManyLeases`."""
        versions = self.known_versions()
        many = _many_leases(self.tx) if n > 1 else None
        jobs: list[Job] = []
        while len(jobs) < n:
            if many is not None:
                wanted = n - len(jobs)
                got, at_limit = many.lease_next_jobs(worker_id, self.now, wanted, versions=versions)
                jobs += got
                if not got or (len(got) < wanted and not at_limit):
                    break  # asking again would find nothing: a statement saved
                continue
            job = self.tx.lease_next_job(worker_id, self.now, versions=versions)
            if job is None:
                break
            jobs.append(job)
        return jobs

    def runs_records(self, requests: Sequence[tuple[str, int]]) -> list[RunRecords]:
        """:meth:`run_records` of each ``(run_id, outputs_of)`` of ``requests`` (distinct
        runs), in one statement where the store has :class:`ManySnapshots`."""
        many = _many_snapshots(self.tx) if len(requests) > 1 else None
        if many is None or self._snapshots is None:
            return [self.run_records(run_id, outputs_of=group) for run_id, group in requests]
        found: list[RunRecords] = []
        for run, stages, outputs in many.get_runs_with_stages(requests):
            self._outputs.update(outputs)
            found.append((run, stages))
        return found

    def unchanged(self, run: WorkflowRun, stages: Sequence[WorkflowStage], job: Job | None) -> bool:
        """Whether the store confirms these records current (``False``: it cannot tell,
        read them again)."""
        return self._snapshots is not None and self._snapshots.unchanged(run, stages, job)

    def unchanged_all(
        self, items: Sequence[tuple[WorkflowRun, Sequence[WorkflowStage] | None, Job | None]]
    ) -> list[bool]:
        """:meth:`unchanged` of each ``(run, stages, job)`` of distinct runs (``False``
        where ``stages`` is ``None``), in one go where the store has
        :class:`ManySnapshots`."""
        many = _many_snapshots(self.tx) if len(items) > 1 else None
        if many is None or self._snapshots is None:
            return [
                stages is not None and self.unchanged(run, stages, job)
                for run, stages, job in items
            ]
        known = [(run, stages, job) for run, stages, job in items if stages is not None]
        answers = iter(many.unchanged_many(known))
        return [stages is not None and next(answers) for _, stages, _ in items]

    def known_workflow_ids(self) -> Collection[str]:
        """The ids of the workflows this kernel has registered: schedule ticks only
        fire schedules of these (SPEC §19)."""
        return self.registry.workflow_ids()

    def known_versions(self) -> Collection[tuple[str, str]]:
        """The ``(workflow id, version)`` pairs this kernel has registered: claims and
        leases only choose runs and jobs of these (SPEC §16, rolling deploys)."""
        return self.registry.workflow_versions()

    def workflow_of(self, run: WorkflowRun | None) -> Workflow[Any, Any] | None:
        """The registered workflow version of ``run`` (``None`` without a run or a
        registration of its version)."""
        if run is None:
            return None
        return self.registry.get_workflow(run.workflow_id, run.workflow_version)

    def group_outputs(
        self, run_id: str, stages: Sequence[WorkflowStage], group: int
    ) -> dict[str, Json]:
        """Stored outputs of the completed stages of execution group ``group``."""
        outputs: dict[str, Json] = {}
        for stage in stages:
            if stage.execution_group == group and stage.status == Status.COMPLETED:
                key = output_key(run_id, stage.stage_id)
                if stage.output_ref == key and stage.id in self._outputs:
                    # Read with the run in this phase's transaction: the same value.
                    outputs[stage.stage_id] = self._outputs[stage.id]
                    continue
                found, value = self.tx.get_blob(key)
                if found:
                    outputs[stage.stage_id] = value
        return outputs

    def previous_outputs(
        self, run: WorkflowRun | None, stages: Sequence[WorkflowStage], stage_id: str
    ) -> dict[str, Json]:
        """Outputs of the group before ``stage_id``'s in the run's own workflow (the
        stage's input comes from them)."""
        workflow = self.workflow_of(run)
        if run is None or workflow is None or workflow.stage(stage_id) is None:
            return {}
        group = workflow.group_of(stage_id)
        return self.group_outputs(run.id, stages, group - 1) if group > 1 else {}

    def stage_state(
        self,
        run_id: str,
        *,
        group: int | None = None,
        job: Job | None = None,
        records: RunRecords | None = None,
    ) -> StageState:
        """A run as a stage's outcome (or a transition) sees it: the run, its stages
        (``records``, if already known to be current), ``job``, the stored outputs of
        ``group`` (default: of the latest group, once none of the run's stages is
        active), and the workflow."""
        if records is None:
            records = self.run_records(run_id, outputs_of=group or 0)
        run, stages = records
        if group is None:
            finished = bool(stages) and not any(stage.is_active for stage in stages)
            group = max(stage.execution_group for stage in stages) if finished else 0
        outputs = self.group_outputs(run_id, stages, group) if group else {}
        return StageState(run, stages, job, outputs, self.workflow_of(run))
