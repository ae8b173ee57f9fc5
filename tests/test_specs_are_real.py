"""The specs are real: they pass on the reference solutions, and each one can fail.

A spec that passes on everything teaches nothing. Every spec must fail on the pristine stub or
reject at least one declared mistake, and every declared mistake must be rejected by a spec
tagged with the rule the mistake breaks.
"""

import pytest

from kata_tools import catalog

# These tests share session fixtures that run every kata in inner pytest processes (minutes on
# a busy machine); each inner spec still has its own timeout.
pytestmark = pytest.mark.timeout(1800)

KATAS = catalog.katas()
MISTAKES = catalog.mistakes()


def describe(records) -> str:
    return "\n".join(f"  {r['outcome']}: {r['nodeid']}\n    {r['message'][:400]}" for r in records)


@pytest.mark.parametrize("kata", KATAS)
def test_every_spec_passes_on_the_reference_solution(kata, solution_run):
    outcomes = solution_run.outcomes(kata.name)
    assert outcomes, f"no spec of {kata.name} ran:\n{solution_run.output[-3000:]}"
    assert not solution_run.failed(kata.name), (
        f"specs of {kata.name} fail on solutions/{kata.name}:\n"
        + describe(solution_run.failed(kata.name))
    )


@pytest.mark.parametrize("kata", KATAS)
def test_the_stubs_import_and_fail_without_errors(kata, stub_run):
    """Stubs collect and run: their specs FAIL (teaching), never ERROR at set-up or collection."""
    outcomes = stub_run.outcomes(kata.name)
    assert outcomes, f"no spec of {kata.name} ran on the stubs:\n{stub_run.output[-3000:]}"
    errors = [r for r in stub_run.specs.values() if r["kata"] == kata.name and r["outcome"] == "error"]
    assert not errors, "specs error instead of failing on the stubs:\n" + describe(errors)
    assert "passed" not in set(outcomes.values()) or "failed" in set(outcomes.values())


@pytest.mark.parametrize("kata", KATAS)
def test_every_spec_fails_on_the_stub_or_rejects_a_declared_mistake(
    kata, solution_run, stub_run, mistake_runs
):
    specs = set(solution_run.outcomes(kata.name))
    caught = {r["nodeid"] for r in stub_run.failed(kata.name)}
    for mistake in catalog.mistakes(kata.name):
        caught |= {r["nodeid"] for r in mistake_runs.result(mistake).failed(kata.name)}
    never_fails = sorted(specs - caught)
    assert not never_fails, (
        f"these specs of {kata.name} pass on the stub and on every declared mistake, so nothing "
        f"shows they can fail; declare the mistake they catch in tests/mistakes/{kata.name}.toml:\n  "
        + "\n  ".join(never_fails)
    )


@pytest.mark.parametrize("mistake", MISTAKES)
def test_the_mistake_is_rejected_by_a_spec_of_its_rule(mistake, mistake_runs):
    run = mistake_runs.result(mistake)
    failed = run.failed(mistake.kata)
    assert run.specs, f"the specs did not run on mistake {mistake.id}:\n{run.output[-3000:]}"
    by_rule = [r for r in failed if mistake.rule in r["rules"]]
    assert by_rule, (
        f"mistake {mistake.kata}/{mistake.id} ({mistake.why}) is not rejected by any spec tagged "
        f"{mistake.rule}; failing specs: {[r['nodeid'] for r in failed] or 'none'}"
    )
