"""``job.execute`` (SPEC §5.6): start (one transaction), the stage's user code (outside
any transaction, carried out by the shell), finish (one transaction).

- :mod:`.start`: mark the stage RUNNING, or settle a job with nothing to do;
  lease-and-start for workers that take the next job from the queue.
- :mod:`.outcome`: what user code returned, read as an outcome.
- :mod:`.finish`: record the outcome, settle the job, transition the run.
"""

from kernel.commands import JobExecuteResult

SKIPPED = JobExecuteResult(outcome="skipped")
"""The result of a job that had nothing to do (its run or stage was already finished)."""
