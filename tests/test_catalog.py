"""The catalogs hold together: rules, specs, katas, learner files, solutions and mistakes."""

import re

import pytest

from kata_tools import catalog, i18n, readme
from kata_tools.dev import check

# These tests share session fixtures that run every kata in inner pytest processes (minutes on
# a busy machine); each inner spec still has its own timeout.
pytestmark = pytest.mark.timeout(1800)

KATAS = catalog.katas()
README_SECTIONS = ["## The rules", "## Why", "## Your task", "## Run", "## Hints"]


@pytest.mark.parametrize("kata", KATAS)
def test_every_rule_of_a_kata_has_a_spec(kata, solution_run):
    tagged = {rule for r in solution_run.specs.values() if r["kata"] == kata.name for rule in r["rules"]}
    missing = [rule.id for rule in kata.rules if rule.id not in tagged]
    assert not missing, f"rules of {kata.name} with no spec tagged @pytest.mark.rule: {missing}"


@pytest.mark.parametrize("kata", KATAS)
def test_katas_10_and_on_teach_only_rules_beyond_the_notes_and_the_first_nine_none(kata):
    """rules.toml's beyond_notes agrees with the kata: 01-09 teach the notes' rules (their README
    closes with "Where the notes differ"), 10 and on teach only rules the notes never state
    (their README closes with "Beyond the notes"; readme.closing_section)."""
    beyond = readme.closing_section(kata) == "beyond-notes"
    taught = [rule for rule in catalog.rules().values() if rule.kata == kata.name]
    wrong = [rule.id for rule in taught if rule.beyond_notes != beyond]
    assert not wrong, (
        f"{kata.name} teaches {wrong}, whose beyond_notes in katas/rules.toml is not {str(beyond).lower()}: "
        + (
            "a kata from 10 on teaches only rules the notes never state"
            if beyond
            else "katas 01-09 teach the notes' own rules"
        )
    )


def test_every_rule_is_taught_by_a_kata_and_every_kata_names_known_rules():
    orphans = [r.id for r in catalog.rules().values() if not r.kata]
    assert not orphans, f"no katas/NN_name/kata.toml lists these rules of katas/rules.toml: {orphans}"
    for kata in KATAS:
        unknown = [r for r in kata.declaration.rules if r not in catalog.rules()]
        assert not unknown, f"{kata.name}/kata.toml lists unknown rule ids {unknown}"


@pytest.mark.parametrize("kata", KATAS)
def test_every_hint_helps_with_rules_of_its_kata(kata):
    assert len(kata.hints()) >= 3, f"{kata.name}/kata.toml: a hint ladder has at least 3 steps"
    for hint in kata.hints():
        stray = [r for r in hint.rules if r not in kata.declaration.rules]
        assert not stray, f"{kata.name}/kata.toml: a hint names rules the kata does not list: {stray}"


def test_the_readme_sections_drawn_from_the_declarations_are_current():
    stale = [p.relative_to(catalog.ROOT).as_posix() for p in readme.stale()]
    assert not stale, f"stale generated README blocks in {stale}: run python -m kata_tools.readme --write"


def assert_no_problems(kata, problems):
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kata", KATAS)
def test_kata_toml_is_valid_and_learner_files_mirror_the_solution(kata):
    """kata dev check's declaration judge: rules known, hints tied to them, learner files
    declared, mirrored in solutions/, each pristine stub marks a TODO."""
    assert_no_problems(kata, check.declaration_problems(kata))


@pytest.mark.parametrize("kata", KATAS)
def test_both_readmes_have_their_sections_in_order_and_current_generated_blocks(kata):
    assert_no_problems(kata, readme.problems(kata))


@pytest.mark.parametrize("kata", KATAS)
def test_every_message_key_is_in_both_languages_with_the_same_placeholders(kata):
    assert_no_problems(kata, check.message_problems(kata))


def test_the_tool_catalogs_are_complete_in_both_languages():
    problems = [p for name in ("cli",) for p in i18n.tool(name).problems()]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("kata", KATAS)
def test_every_kata_readme_has_rule_why_task_and_a_hint_ladder(kata):
    text = kata.readme.read_text()
    missing = [s for s in README_SECTIONS if s not in text]
    assert not missing, f"{kata.readme.name} of {kata.name} lacks sections {missing}"
    hints = text.split("## Hints", 1)[1].split("\n## ", 1)[0]
    assert len(re.findall(r"^\d+\. ", hints, re.M)) >= 3, "a hint ladder has at least 3 steps"
    for rule in kata.rules:
        assert rule.id in text, f"the README of {kata.name} never names its rule {rule.id}"


@pytest.mark.parametrize("kata", KATAS)
def test_learner_files_and_solutions_mirror_each_other(kata):
    solved = set(kata.learner_files)
    assert solved, f"solutions/{kata.name}/ holds no .py file"
    learner = {
        p.relative_to(kata.path).as_posix()
        for p in kata.path.rglob("*.py")
        if not p.name.startswith(("test_", "conftest")) and "__pycache__" not in p.parts
    }
    assert learner == solved, (
        f"katas/{kata.name} and solutions/{kata.name} must hold the same learner files: "
        f"only in katas: {sorted(learner - solved)}, only in solutions: {sorted(solved - learner)}"
    )
    for name in solved:
        stub, origin = check.pristine_stub(kata, name)  # as shipped, not as a learner edited it
        assert "TODO" in stub, f"katas/{kata.name}/{name} ({origin}) marks no TODO where the learner writes"


@pytest.mark.parametrize("mistake", catalog.mistakes())
def test_every_mistake_names_a_known_rule_and_edits_its_solution_once(mistake):
    assert mistake.rule in catalog.rules(), f"{mistake.kata}/{mistake.id}: unknown rule {mistake.rule}"
    solution = catalog.Kata(mistake.kata).solution_path / mistake.file
    edited = mistake.apply(solution.read_text())  # raises CatalogError unless exactly once
    assert edited != solution.read_text()
    assert mistake.why.strip(), f"{mistake.kata}/{mistake.id}: say why a learner writes this"


@pytest.mark.parametrize("kata", KATAS)
def test_every_kata_declares_at_least_one_mistake(kata):
    assert catalog.mistakes(kata.name), f"declare common mistakes in tests/mistakes/{kata.name}.toml"


def test_find_kata_accepts_numbers_and_names_and_rejects_unknown_ones():
    assert catalog.find_kata("1").name == "01_event_loop"
    assert catalog.find_kata("01_event_loop").name == "01_event_loop"
    assert catalog.find_kata("event_loop").name == "01_event_loop"
    with pytest.raises(catalog.CatalogError, match="no kata '42'"):
        catalog.find_kata("42")


@pytest.mark.parametrize("kata", KATAS)
def test_the_root_readmes_list_every_kata_with_its_rules(kata):
    """The tables of README.md and README.ko.md are hand-written; this keeps them whole."""
    for name, kata_readme in (("README.md", "README.md"), ("README.ko.md", "README.ko.md")):
        rows = [
            line
            for line in (catalog.ROOT / name).read_text(encoding="utf-8").splitlines()
            if line.startswith(f"| [{kata.name}](katas/{kata.name}/{kata_readme})")
        ]
        assert rows, f"{name} has no table row for {kata.name} linking katas/{kata.name}/{readme}"
        named = set(re.findall(r"\b[A-Z]{2}\d\b", rows[0].split("|")[2]))
        ranges = re.findall(r"\b([A-Z]{2})(\d)-[A-Z]{0,2}(\d)\b", rows[0].split("|")[2])
        for prefix, first, last in ranges:
            named |= {f"{prefix}{n}" for n in range(int(first), int(last) + 1)}
        assert named & set(kata.declaration.rules), (
            f"{name}: the row of {kata.name} names none of its rules {list(kata.declaration.rules)}"
        )
