"""The one inner pytest run (kata_tools.runner) and the one result vocabulary (kata_tools.results)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from kata_tools import bytecode, catalog, results, runner

pytestmark = pytest.mark.timeout(120)


def rec(outcome, *rules, **more):
    return {"nodeid": f"t::{outcome}-{'-'.join(rules)}", "outcome": outcome, "rules": list(rules), **more}


def test_a_skipped_spec_is_not_run_never_failing_nor_passed():
    records = [rec("passed", "A"), rec("skipped", "A"), rec("passed", "B")]
    assert results.rule_status(records, "A") == results.NOT_RUN
    assert results.rule_status(records, "B") == results.PASSED
    assert results.kata_status(records) == results.PARTIAL


def test_rule_and_kata_statuses():
    assert results.rule_status([rec("error", "A"), rec("passed", "A")], "A") == results.FAILING
    assert results.rule_status([rec("passed", "B")], "A") == results.NOT_RUN
    assert results.rule_status([rec("passed", "A")], "A", complete=False) == results.NOT_RUN
    assert results.kata_status([]) == results.NOT_RUN
    assert results.kata_status([rec("passed", "A")]) == results.SOLVED
    assert results.kata_status([rec("passed", "A")], complete=False) == results.PARTIAL
    assert results.kata_status([rec("failed", "A"), rec("skipped", "A")]) == results.FAILING
    assert results.kata_status([{"outcome": "weird"}]) == results.FAILING  # unknown: an error
    summary = results.summarize([rec("passed", "A"), rec("failed", "B")], ["A", "B", "C"])
    assert summary.rules == {"A": "passed", "B": "failing", "C": "not run"}
    assert (summary.status, summary.passed, summary.total, len(summary.failures)) == ("failing", 1, 2, 1)


def test_doc_is_a_string_whether_the_plugin_wrote_a_list_or_not():
    assert results.doc_of({"doc": ["first line"]}) == "first line"
    assert results.doc_of({"doc": []}) == ""
    assert results.doc_of({"doc": "plain"}) == "plain"
    assert results.doc_of({}) == ""


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "no report"),
        ("{not json", "not valid JSON"),
        (json.dumps({"specs": "nope"}), "no list of specs"),
        (json.dumps([1, 2]), "no list of specs"),
    ],
)
def test_a_bad_report_reads_as_no_records_and_one_line(tmp_path, content, problem):
    path = tmp_path / "r.json"
    if content is not None:
        path.write_text(content)
    records, why = runner.read_report(path)
    assert records == [] and problem in why and "\n" not in why


def test_report_records_are_normalised(tmp_path):
    path = tmp_path / "r.json"
    path.write_text(json.dumps({"specs": [{"nodeid": "a", "doc": ["d"]}, "junk"]}))
    records, why = runner.read_report(path)
    assert why == "" and records == [{"nodeid": "a", "doc": "d", "rules": [], "outcome": "error"}]


def test_the_inner_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("KATA_SOLUTIONS", "1")
    monkeypatch.setenv("KATA_SOURCE", "/x")
    env = runner.inner_env({"EXTRA": "1"}, lang="ko", pycache=tmp_path)
    assert "KATA_SOLUTIONS" not in env and "KATA_SOURCE" not in env
    assert env["EXTRA"] == "1" and env["KATA_LANG"] == "ko" and env["KATA_NO_PROGRESS"] == "1"
    assert env["PYTHONPYCACHEPREFIX"] == str(tmp_path)
    assert "KATA_NO_PROGRESS" not in runner.inner_env(progress=True)
    cmd = runner.command(["katas/01_event_loop"], tmp_path / "r", solutions=True, args=["-x"])
    assert cmd[-3:] == ["--kata-report", str(tmp_path / "r"), "-x"] and "--solutions" in cmd
    assert f"cache_dir={tmp_path / 'pytest-cache'}" in cmd  # not the learner's .kata/pytest-cache
    assert not any("cache_dir" in c for c in runner.command([], tmp_path / "r", progress=True))


def test_a_run_of_the_reference_solution_of_kata_01(tmp_path):
    kata = catalog.find_kata("01")
    run = runner.run(runner.targets([kata]), solutions=True, pycache=tmp_path)
    assert run.exit_code == 0 and not run.timed_out and run.report_problem == "", run.output
    assert run.summary(kata).solved and run.records and not run.failed(kata.name)
    assert all(isinstance(r["doc"], str) for r in run.records)


def test_a_run_past_its_time_limit_is_stopped_and_says_so(tmp_path):
    run = runner.run(runner.targets(["01_event_loop"]), timeout=0.3, pycache=tmp_path)
    assert run.timed_out and run.exit_code != 0 and run.records == []
    assert "timed out after 0.3 s" in run.output


def needs_links(tmp_path: Path) -> None:
    """Windows without the symlink right: bytecode.py makes no links, by design (runs compile)."""
    try:
        (tmp_path / "probe-link").symlink_to(tmp_path, target_is_directory=True)
    except OSError:
        pytest.skip("no symbolic links here: each run compiles the libraries itself")


def test_a_run_compiles_the_libraries_once_and_the_course_files_fresh(tmp_path, monkeypatch):
    """The libraries' bytecode goes to the shared folder and is reused; a spec's stays in the run's."""
    needs_links(tmp_path)
    (tmp_path / "temp").mkdir()
    monkeypatch.setattr(bytecode.tempfile, "gettempdir", lambda: str(tmp_path / "temp"))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")  # dropped: the prefix keeps sources clean
    kata = catalog.find_kata("01")
    runs = [tmp_path / "run-1", tmp_path / "run-2"]
    for folder in runs:
        run = runner.run(runner.targets([kata]), solutions=True, pycache=folder)
        assert run.exit_code == 0, run.output
    shared = bytecode.shared_dir()
    assert shared is not None and shared.parent == tmp_path / "temp"
    assert len(list(shared.rglob("_pytest/main.cpython-*.pyc"))) == 1, "pytest's, in the shared folder"
    for folder in runs:
        own = [Path(d, f) for d, _, files in os.walk(folder) for f in files]  # links not followed
        assert any(p.name.startswith("test_event_loop") for p in own), "the spec's bytecode: the run's own"
        assert not any("_pytest" in p.parts for p in own), "no library compiled into a run's folder"


def test_no_library_folder_that_holds_the_course_is_shared(tmp_path):
    course = Path(sys.prefix) / "course-inside-the-environment"
    chosen = bytecode.library_dirs([course])
    assert all(not (course == c or c in course.parents) for c in chosen)
    assert all(not any(p in chosen for p in c.parents) for c in chosen), "outermost folders only"


def test_a_shared_folder_that_is_a_link_is_never_used(tmp_path, monkeypatch):
    needs_links(tmp_path)
    monkeypatch.setattr(bytecode.tempfile, "gettempdir", lambda: str(tmp_path))
    elsewhere = tmp_path / "planted"
    elsewhere.mkdir()
    bytecode.shared_path().symlink_to(elsewhere)
    assert bytecode.shared_dir() is None
    bytecode.share_libraries(tmp_path / "run")
    assert not (tmp_path / "run").exists(), "nothing linked, the run compiles on its own"


def test_the_cache_of_a_library_folder_that_is_gone_is_dropped(tmp_path, monkeypatch):
    needs_links(tmp_path)
    monkeypatch.setattr(bytecode.tempfile, "gettempdir", lambda: str(tmp_path))
    monkeypatch.setattr(bytecode, "_pruned", False)
    shared = bytecode.shared_dir()
    assert shared is not None
    gone = shared / "0123456789abcdef"
    gone.mkdir()
    (gone / bytecode.MARKER).write_text(str(tmp_path / "a-deleted-virtualenv"))
    bytecode.share_libraries(tmp_path / "run")
    assert not gone.exists()
    kept = {(c / bytecode.MARKER).read_text() for c in shared.iterdir()}
    assert kept == {str(p) for p in bytecode.library_dirs([])}, "one cache per library folder"
    assert all(bytecode._mirrored(tmp_path / "run", p).is_symlink() for p in bytecode.library_dirs([]))
