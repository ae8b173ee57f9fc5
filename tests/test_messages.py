"""Every message in both languages, the same placeholders in each, and short enough to read.

- every catalog (kata_tools.i18n.all_catalogs(): the katas' messages.toml and the tooling's) has
  both languages for every key and the same placeholders in each (Catalog.problems());
- a message's default part (before its first blank line) is at most 3 lines: the plugin adds
  line 3 (spec and rule), and a default-run failure is at most 4 lines;
- over every declared mistake, no failure message of the run is longer than 4 lines, and no run
  prints INTERNALERROR or a Python traceback (the mistake runs are shared, in one session, with
  tests/test_specs_are_real.py through the `mistake_runs` fixture of tests/conftest.py).
"""

from __future__ import annotations

import os
import types

import pytest

from conftest import run_specs, solution_copy_with
from kata_tools import catalog, i18n
from kata_tools.dev import check
from kata_tools.plugin import failures

pytestmark = pytest.mark.timeout(1800)

CATALOGS = i18n.all_catalogs()
KEYS = [(c, key) for c in CATALOGS for key in c.entries]


def test_every_catalog_has_both_languages_and_the_same_placeholders():
    problems = [p for c in CATALOGS for p in c.problems()]
    counted = sum(len(c.entries) for c in CATALOGS)
    assert counted and i18n.tool("plugin").entries, "no message catalog found"
    assert not problems, f"{len(problems)} of {counted} messages:\n" + "\n".join(problems)


@pytest.mark.parametrize("lang", i18n.LANGS)
def test_every_message_shows_at_most_three_lines_by_default(lang):
    long = []
    for c, key in KEYS:
        head = c.text(key, lang).strip("\n").partition("\n\n")[0]
        if len(head.splitlines()) > failures.MAX_LINES - 1:
            long.append(f"{c.path}: [{key}] {len(head.splitlines())} lines")
    assert not long, "\n".join(long)


def fake_item(verbose=0, rules=("EL1",), nodeid="katas/01_event_loop/test_event_loop.py::test_x"):
    marks = [types.SimpleNamespace(args=rules)]
    return types.SimpleNamespace(
        nodeid=nodeid,
        config=types.SimpleNamespace(option=types.SimpleNamespace(verbose=verbose)),
        iter_markers=lambda name: iter(marks),
    )


def test_render_adds_the_spec_line_and_hides_details_without_v():
    body = "did this\nchange that\n\nthe long story\nof why"
    shown = failures.render(fake_item(), body)
    title = catalog.rules()["EL1"].title_in("en")
    assert shown.splitlines() == [
        "did this",
        "change that",
        f"spec: katas/01_event_loop/test_event_loop.py::test_x  rule: EL1 {title}",
    ]
    verbose = failures.render(fake_item(verbose=1), body)
    assert "the long story\nof why" in verbose and verbose.endswith(f"EL1 {title}")


def test_the_spec_line_is_in_the_current_language(monkeypatch):
    monkeypatch.setattr(i18n, "_override", "ko")
    shown = failures.render(fake_item(rules=("EL1", "EL2")), "a\nb")
    rules = catalog.rules()
    assert shown.splitlines()[-1] == (
        f"스펙: katas/01_event_loop/test_event_loop.py::test_x  규칙: "
        f"EL1 {rules['EL1'].title_in('ko')}; EL2 {rules['EL2'].title_in('ko')}"
    )


def test_long_messages_counts_the_lines_of_failed_records():
    records = [
        {"nodeid": "a", "outcome": "failed", "message": "1\n2\n3\n4"},
        {"nodeid": "b", "outcome": "failed", "message": "1\n2\n3\n4\n5"},
        {"nodeid": "c", "outcome": "passed", "message": ""},
    ]
    assert failures.long_messages(records) == ["b: 5 lines"]


def test_lang_ko_gives_the_plugin_messages_in_korean(tmp_path):
    kata = catalog.Kata("01_event_loop")
    source = solution_copy_with(kata, tmp_path / "src")
    learner = source / kata.name / "event_loop.py"
    learner.write_text(learner.read_text() + "\nraise RuntimeError('boom')\n")
    path = kata.path.relative_to(catalog.ROOT).as_posix()
    run = run_specs([path], tmp_path, "--kata-source", str(source), "--lang", "ko", "-k", "one_at_a_time")
    messages = [r["message"] for r in run.specs.values()]
    assert messages and all(
        "파일을 import하다가 오류가 발생했다: RuntimeError: boom" in m for m in messages
    ), messages
    assert all("규칙: EL1" in m for m in messages), messages
    assert "importing the file" not in run.output


@pytest.mark.parametrize("mistake", catalog.mistakes())
def test_no_failure_message_of_a_mistake_run_is_over_four_lines(mistake, mistake_runs):
    run = mistake_runs.result(mistake)
    assert run.specs, f"the specs did not run on mistake {mistake.id}:\n{run.output[-3000:]}"
    assert "INTERNALERROR" not in run.output, run.output[-3000:]
    assert "Traceback (most recent call last)" not in run.output, run.output[-3000:]
    long = failures.long_messages(run.specs.values())
    assert not long, "\n".join(long)


COUNT_TRACEBACKS = """
import _pytest._code.code as code

built = []
_getrepr = code.ExceptionInfo.getrepr


def getrepr(self, *args, **kwargs):
    built.append(1)
    return _getrepr(self, *args, **kwargs)


code.ExceptionInfo.getrepr = getrepr


def pytest_unconfigure(config):
    print(f"tracebacks built: {len(built)}")
"""


@pytest.mark.parametrize(("tb", "built"), [((), False), (("--tb=short",), True)], ids=["default", "tb-short"])
def test_a_failing_spec_shows_its_message_without_building_a_traceback_unless_tb_is_asked(
    tmp_path, tb, built
):
    # pytest builds a failure's traceback (the source of every frame) before the plugin puts the
    # teaching message in its place: 0.03 s a failure, a quarter of a stub's re-run in kata watch.
    (tmp_path / "count_tracebacks.py").write_text(COUNT_TRACEBACKS)
    path = catalog.Kata("01_event_loop").path.relative_to(catalog.ROOT).as_posix()
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), str(catalog.ROOT)])}
    run = run_specs([path], tmp_path, "-p", "count_tracebacks", *tb, env=env)
    failed = [r for r in run.specs.values() if r["outcome"] == "failed"]
    assert failed and all(r["message"].count("\n") <= 3 for r in failed), run.output
    assert ("tracebacks built: 0" not in run.output) == built, run.output
    assert "tracebacks built:" in run.output, run.output


TIMEOUTS = "katas/11_timeouts/test_timeouts.py::"
SAME_PROBLEM = [  # kata 11's stub: (spec, the problem it meets)
    ("test_a_slow_report_answers_504_once_its_time_is_up[0.05]", "no-answer"),
    ("test_after_giving_up_the_connection_is_back_and_the_query_is_gone[the-app-gives-up]", "no-answer"),
    ("test_a_report_the_database_stopped_answers_504_too", "guard-off"),
    ("test_the_database_stops_a_runaway_query_by_itself", "guard-off"),
]


@pytest.mark.parametrize("order", ["as-written", "reversed"])
def test_a_problem_two_specs_meet_is_told_once_in_either_order(tmp_path, inner_env, order):
    # The 504 spec and TO2's app-gives-up spec send the same request, which the stub never gives
    # up on; two guard specs meet the same engine without a guard. The first spec to meet each
    # problem tells it; the other points to it in one line (and does not wait 5x the budget again).
    kata = catalog.Kata("11_timeouts")
    source = check.write_stubs([kata], tmp_path / "stubs")
    specs = SAME_PROBLEM if order == "as-written" else SAME_PROBLEM[::-1]
    run = run_specs(
        [TIMEOUTS + name for name, _ in specs], tmp_path, "--kata-source", str(source), env=inner_env
    )
    first: dict[str, str] = {}
    for name, problem in specs:
        record = run.specs[TIMEOUTS + name]
        assert record["outcome"] == "failed", run.output
        if problem not in first:  # the full message: what the code did, what to change
            first[problem] = name
            assert "see its message above" not in record["message"], record["message"]
        else:
            assert first[problem] in record["message"], record["message"]
            assert "see its message above" in record["message"], record["message"]
