"""The specs are real: they pass on the reference solutions, and each one can fail.

A spec that passes on everything teaches nothing. Every spec must fail on the pristine stub or
reject at least one declared mistake, and every declared mistake must be rejected by a spec
tagged with the rule the mistake breaks. The judges are those of `kata dev check`
(kata_tools/dev/check.py); they test the course as shipped (pristine stubs, not a learner's katas/).
"""

import pytest

from kata_tools import catalog
from kata_tools.dev import check

# These tests share session fixtures that run every kata in inner pytest processes (minutes on
# a busy machine); each inner spec still has its own timeout.
pytestmark = pytest.mark.timeout(1800)

KATAS = catalog.katas()
MISTAKES = catalog.mistakes()


def no_problems(problems: list[str]) -> None:
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kata", KATAS)
def test_every_spec_passes_on_the_reference_solution(kata, solution_run):
    no_problems(check.solution_problems(kata, solution_run))


@pytest.mark.parametrize("kata", KATAS)
def test_the_stubs_import_and_fail_without_errors(kata, stub_run):
    """Stubs collect and run: their specs FAIL (teaching), never ERROR at set-up or collection."""
    no_problems(check.stub_problems(kata, stub_run))


@pytest.mark.parametrize("kata", KATAS)
def test_every_spec_fails_on_the_stub_or_rejects_a_declared_mistake(
    kata, solution_run, stub_run, mistake_runs
):
    runs = [mistake_runs.result(m) for m in catalog.mistakes(kata.name)]
    no_problems(check.never_failing_problems(kata, solution_run, stub_run, runs))


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_mistake_is_rejected_by_a_spec_of_its_rule(mistake, mistake_runs):
    no_problems(check.mistake_problems(mistake, mistake_runs.result(mistake)))
