"""What ``run.claimPending`` loads: pending runs of the versions this kernel holds,
within each workflow's ``max_running_runs`` (SPEC §15, §16)."""

from __future__ import annotations

from kernel.decisions import run_claim_pending
from kernel.records import WorkflowRun
from kernel.shell.reads import Reads


def claimable(reads: Reads, max_claims: int) -> run_claim_pending.Claimable:
    """Up to ``max_claims`` pending runs, locked for this claim.

    Runs of workflow versions this kernel does not know stay PENDING for one that
    does. For workflows with ``max_running_runs``, their RUNNING runs are counted
    under a per-workflow lock held to commit, and a workflow with no room left is
    left out of the read: its waiting runs never take the claim's places from
    other workflows' runs (each round leaves out one more full workflow).
    """
    versions = list(reads.known_versions())
    caps = run_claim_pending.run_caps(reads.registry.get_workflow, versions)
    running = reads.tx.running_runs(sorted(caps)) if caps else {}
    full = {wid for wid, cap in caps.items() if running.get(wid, 0) >= cap}
    runs: dict[str, WorkflowRun] = {}
    for _ in range(len(caps) + 1):
        allowed = [pair for pair in versions if pair[0] not in full]
        for run in reads.tx.pending_runs(max_claims, versions=allowed):
            runs.setdefault(run.id, run)
        taken, now_full = run_claim_pending.within_caps(list(runs.values()), caps, running)
        if len(taken) >= max_claims or now_full <= full:
            break
        full |= now_full
    ordered = sorted(runs.values(), key=lambda run: (-run.priority, run.created_at))
    taken = run_claim_pending.within_caps(ordered, caps, running)[0][:max_claims]
    workflows = {run.id: reads.workflow_of(run) for run in taken}
    return run_claim_pending.Claimable(taken, workflows, caps, running)
