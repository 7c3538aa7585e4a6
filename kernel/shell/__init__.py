"""The kernel shell: how commands are loaded, decided, applied and carried out.

- :mod:`.steps`: the vocabulary of a handler: :class:`~.steps.Phase` (one
  transaction: load, then a pure decision), :class:`~.steps.Done`,
  :class:`~.steps.Outside` (work outside any transaction, then the next phase)
  and :class:`~.steps.Within` (more in the same transaction).
- :mod:`.reads`: what a phase may load, through the open transaction.
- :mod:`.table`: one entry per command: its result type and its first phase.
- :mod:`.outside`: carrying out work outside transactions (user code, the sink).

Only the shell imports ports; decisions (:mod:`kernel.decisions`) stay pure.
"""
