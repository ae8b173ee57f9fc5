"""The one result vocabulary, and the one function that turns spec records into a status.

Every view (`kata list`, `kata watch`, `kata next`, `kata grade`, the self-tests, .kata/results.json)
speaks these words and computes them here; none computes a status of its own.

A spec record is a dict written by the pytest plugin (`--kata-report`, .kata/results.json), with
at least `outcome` and `rules`. Its **outcome** is one of:

    passed    the spec ran and held
    failed    the spec ran and the learner's code broke its rule
    error     the spec could not run (a fixture or set-up failed, the learner file did not import)
    skipped   the spec did not run (skipped or xfailed)

A **rule's status** (`rule_status`), over the specs that carry the rule:

    passed    every spec of the rule ran and passed, in a complete run of the kata
    failing   at least one spec of the rule failed or errored
    not run   anything else: no spec of the rule ran, a spec of it was skipped, or the run was
              partial (`-k`, `file::test`) so the passes may not be the whole rule

A **kata's status** (`kata_status`), over all its spec records:

    solved      a complete run in which every spec passed
    failing     at least one spec failed or errored
    partly run  no failure, but not every spec passed in a complete run (some skipped, or `-k`)
    not run     no spec record at all

Decision on **skipped** specs: a skipped spec proves nothing about the learner's code, in either
direction. It never makes a rule "failing" (the code did not break it) and never lets a rule be
"passed" (the code did not show it holds): the rule is "not run", and a kata with a skipped spec
and no failure is "partly run", never "solved". Grading follows: a kata is solved (full points in
all-or-nothing scoring) only when every spec passed.

Grading adds two kata verdicts that do not come from spec records: `missing` (the kata folder is
gone, or a learner file could not be taken safely), `tampered` (a spec or tool file differs from
the pristine course, or the run's two records of its results disagree) and `timed out` (the
kata's process passed its time limit); see kata_tools/grading/.

This module imports only the standard library (the pytest plugin's progress writer may load it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

# Spec outcomes (the plugin's records).
PASSED, FAILED, ERROR, SKIPPED = "passed", "failed", "error", "skipped"
SPEC_OUTCOMES = (PASSED, FAILED, ERROR, SKIPPED)
BROKEN = (FAILED, ERROR)  # outcomes that make a rule and a kata "failing"

# Rule statuses.
FAILING, NOT_RUN = "failing", "not run"  # PASSED ("passed") is a rule status too
RULE_STATUSES = (PASSED, FAILING, NOT_RUN)

# Kata statuses (FAILING and NOT_RUN as above).
SOLVED, PARTIAL = "solved", "partly run"
MISSING, TAMPERED, TIMED_OUT = "missing", "tampered", "timed out"  # grading only
KATA_STATUSES = (SOLVED, FAILING, PARTIAL, NOT_RUN, MISSING, TAMPERED, TIMED_OUT)


def outcome_of(record: Mapping) -> str:
    """A record's outcome, one of SPEC_OUTCOMES; anything unknown or missing reads as an error."""
    outcome = record.get("outcome")
    return outcome if outcome in SPEC_OUTCOMES else ERROR


def rules_of(record: Mapping) -> list[str]:
    rules = record.get("rules")
    return [r for r in rules if isinstance(r, str)] if isinstance(rules, (list, tuple)) else []


def doc_of(record: Mapping) -> str:
    """The spec's first docstring line; tolerates the plugin's older 0-or-1-element list."""
    doc = record.get("doc") or ""
    if isinstance(doc, (list, tuple)):
        doc = doc[0] if doc else ""
    return doc if isinstance(doc, str) else ""


def is_broken(record: Mapping) -> bool:
    return outcome_of(record) in BROKEN


def rule_status(records: Iterable[Mapping], rule_id: str, complete: bool = True) -> str:
    """The status of rule `rule_id` over a kata's spec records (see the module's docstring)."""
    mine = [r for r in records if rule_id in rules_of(r)]
    if any(is_broken(r) for r in mine):
        return FAILING
    if mine and complete and all(outcome_of(r) == PASSED for r in mine):
        return PASSED
    return NOT_RUN


def kata_status(records: Iterable[Mapping], complete: bool = True) -> str:
    """The status of a kata over all its spec records (see the module's docstring)."""
    records = list(records)
    if not records:
        return NOT_RUN
    if any(is_broken(r) for r in records):
        return FAILING
    if complete and all(outcome_of(r) == PASSED for r in records):
        return SOLVED
    return PARTIAL


@dataclass
class Summary:
    """A kata's results at a glance: its status, counts, each rule's status, the failures."""

    status: str
    passed: int = 0
    total: int = 0
    rules: dict[str, str] = field(default_factory=dict)  # rule id -> rule status, in kata order
    failures: list[dict] = field(default_factory=list)  # broken records, in run order

    @property
    def solved(self) -> bool:
        return self.status == SOLVED


def summarize(records: Iterable[Mapping], rule_ids: Iterable[str], complete: bool = True) -> Summary:
    """Summary of one kata's spec records; `rule_ids` in the order the kata declares them."""
    records = [r for r in records if isinstance(r, Mapping)]
    return Summary(
        status=kata_status(records, complete),
        passed=sum(outcome_of(r) == PASSED for r in records),
        total=len(records),
        rules={rid: rule_status(records, rid, complete) for rid in rule_ids},
        failures=[dict(r) for r in records if is_broken(r)],
    )


def first_failure(records: Iterable[Mapping]) -> dict | None:
    return next((dict(r) for r in records if is_broken(r)), None)
