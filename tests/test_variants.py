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


@pytest.mark.skipif(not VARIANTS, reason="no tests/variants/NN_name/variants.toml yet")
@pytest.mark.parametrize("variant", VARIANTS)
def test_the_variant_gets_its_verdict(variant, variant_runs):
    if not variant.runs_here:
        pytest.skip(f"{variant.kata}/{variant.id} is written for Python {variant.python} or newer")
    problems = check.variant_problems(variant, variant_runs.result(variant))
    assert not problems, "\n".join(problems)
