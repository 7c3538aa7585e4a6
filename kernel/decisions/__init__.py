"""One pure decision per command: values in, ``Result[Decision, KernelError]`` out.

Decisions never touch a port; the shell in :mod:`kernel.dispatch` loads their
inputs and applies their effects.
"""
