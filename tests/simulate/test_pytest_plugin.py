"""The pytest plugin the package ships: fixtures for the testing kit, and seeds for
users' simulation tests from ``--wfk-seeds N`` and ``--wfk-seed S`` (SPEC §17)."""

from __future__ import annotations

from importlib.metadata import entry_points
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

USER_TESTS = """
import pytest
from testing import simulate
from tests.simulate.workflows import demo_workflows, numbers

WORKFLOWS = demo_workflows()[:1]


def test_one_seed(wfk_seed):
    assert simulate(*WORKFLOWS, seed=wfk_seed, runs=2, inputs=numbers).seed == wfk_seed


@pytest.mark.wfk_seeds(3)
def test_marked(wfk_seed):
    pass


def test_all_seeds(wfk_seeds):
    print("seeds", wfk_seeds)
"""


def test_the_package_registers_the_plugin_with_pytest() -> None:
    found = [ep.value for ep in entry_points(group="pytest11") if ep.name == "wfk"]
    assert found == ["testing.pytest_plugin"]


def test_wfk_kernel_runs_workflows_on_the_fake_clock_and_collects_their_events(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(
        """
        from datetime import timedelta
        from kernel.commands import RunCreate
        from kernel.status import Status
        from tests.simulate.workflows import demo_workflows

        def test_kit(wfk_kernel, fake_clock, collected_events):
            tk = wfk_kernel(*demo_workflows())
            assert tk.clock is fake_clock and tk.sink is collected_events
            created = tk.dispatch(RunCreate(workflow_id="linear", input={"value": 1}))
            tk.run_until_idle()
            assert tk.store.get_run(created.workflow_run_id).status == Status.COMPLETED
            assert collected_events.of_type("workflow:completed")
        """
    )
    pytester.syspathinsert(str(pytester_root()))
    pytester.runpytest("-p", "no:cacheprovider").assert_outcomes(passed=1)


def test_wfk_seeds_makes_one_test_per_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USER_TESTS)
    pytester.syspathinsert(str(pytester_root()))
    result = pytester.runpytest("-p", "no:cacheprovider", "--wfk-seeds", "4", "-v", "-s")
    result.assert_outcomes(passed=9)  # 4 + 4 (the option beats the marker) + 1
    result.stdout.fnmatch_lines(["*test_one_seed?seed=3? PASSED*", "*seeds [[]0, 1, 2, 3[]]*"])


def test_without_the_option_a_marker_or_the_default_gives_the_count(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyfile(USER_TESTS)
    pytester.syspathinsert(str(pytester_root()))
    result = pytester.runpytest("-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=10 + 3 + 1)


def test_wfk_seed_replays_one_seed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USER_TESTS)
    pytester.syspathinsert(str(pytester_root()))
    result = pytester.runpytest("-p", "no:cacheprovider", "--wfk-seed", "17", "-v", "-s")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*test_one_seed?seed=17? PASSED*", "*seeds [[]17[]]*"])


def test_a_bad_seed_count_is_refused_naming_the_option(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(USER_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider", "--wfk-seeds", "none")
    assert result.ret != 0
    result.stderr.fnmatch_lines(["*--wfk-seeds*"])


def pytester_root() -> Path:
    """The project's root, so the user tests above import ``tests.simulate.workflows``."""
    return Path(__file__).resolve().parents[2]
