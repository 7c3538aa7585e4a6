"""Rewrite the conformance suite's asserts, so failures show the values compared."""

import pytest

pytest.register_assert_rewrite("testing.conformance", "testing.store_cases")
