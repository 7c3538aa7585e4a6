"""Whole runs driven to the end with ``run_until_idle`` and single steps."""
