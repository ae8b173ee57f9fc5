"""Held-out checks: every variant (tests/variants/NN_name/) gets its verdict from the specs.

A variant is a learner's solution written independently of the reference, as full learner files.
`expect = "fail"`: a spec tagged with its rule rejects it; `expect = "pass"`: every spec passes.
The judge is `kata dev check`'s (kata_tools/dev/check.py).
"""

import pytest

from kata_tools import catalog
from kata_tools.dev import check

pytestmark = pytest.mark.timeout(1800)

VARIANTS = catalog.variants()


@pytest.mark.parametrize("kata", catalog.katas())
def test_every_variant_is_declared_and_complete(kata):
    problems = check.variant_problems_static(kata)
    assert not problems, "\n".join(problems)


def oldest_python() -> tuple[int, int]:
    """The oldest Python the course installs on: pyproject.toml's requires-python (">=3.10")."""
    with open(catalog.ROOT / "pyproject.toml", "rb") as f:
        spec = catalog.tomllib.load(f)["project"]["requires-python"]
    major, minor = spec.removeprefix(">=").split(".")[:2]
    return int(major), int(minor)


@pytest.mark.parametrize("kata", catalog.katas())
def test_every_kata_has_two_right_variants_on_the_oldest_python(kata):
    """A variant marked python = "3.11" is skipped on 3.10: the others must still show two ways."""
    oldest = oldest_python()
    right = [
        v.id
        for v in catalog.variants(kata.name)
        if v.expect == "pass" and (not v.python or tuple(int(p) for p in v.python.split(".")) <= oldest)
    ]
    assert len(right) >= 2, (
        f"{kata.name}: only {right} of its right variants run on Python {oldest[0]}.{oldest[1]}; "
        "add one written for it (asyncio.wait_for, gather, no TaskGroup or asyncio.timeout)"
    )


@pytest.mark.skipif(not VARIANTS, reason="no tests/variants/NN_name/variants.toml yet")
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_variant_gets_its_verdict(variant, variant_runs):
    if not variant.runs_here:
        pytest.skip(f"{variant.kata}/{variant.id} is written for Python {variant.python} or newer")
    problems = check.variant_problems(variant, variant_runs.result(variant))
    assert not problems, "\n".join(problems)
