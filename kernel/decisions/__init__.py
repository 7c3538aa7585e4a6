"""One pure decision per command: values in, ``Result[Decision, KernelError]`` out.

Decisions never touch a port (an import-linter contract checks it): the shell
(:mod:`kernel.shell`, :mod:`kernel.dispatch`) loads their inputs and applies
their effects. Rules several commands share live in :mod:`.lifecycle` and
:mod:`.changes`.
"""
