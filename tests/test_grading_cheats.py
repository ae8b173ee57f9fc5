"""Every cheat of issue 13, re-run against the documented instructor flow: what honest work earns.

The flow (docs/grading.md): the instructor publishes `kata release`, the learner works in that
checkout, the instructor grades it with `kata grade --from CHECKOUT` from a grading copy without
solutions/ and with its own venv. Each cheat below got full marks from an older grader; here it
earns what the honest part of the work earns (0 for all of them: all-or-nothing, and none solves
every rule) and the report says why. Most run in this process, from an instructor's course with
solutions/ (`allow_solutions`: none of them needs the answers); the one that reads the answers
from disk is also graded the documented way, from a clean copy and venv in a subprocess.
The symlink cheat and the hanging submission are in test_grading.py.
"""

from __future__ import annotations

import json
import py_compile
import subprocess
import sys
from pathlib import Path

import pytest

from grading_course import (
    ROOT,
    clean_python,
    env_for,
    instructor_course,
    learner_checkout,
    learner_file,
    run,
    solve,
)
from kata_tools import grading, manifest
from kata_tools.grading import sandbox

pytestmark = pytest.mark.timeout(300)

STUB_WITH_EL1 = (
    (ROOT / "katas/01_event_loop/event_loop.py")
    .read_text()
    .replace(
        """    # TODO: handle the requests one after another.
    raise NotImplementedError("serve_one_at_a_time")""",
        """    return [await handler(request_id) for request_id in request_ids]""",
    )
)
assert (ROOT / "katas/01_event_loop/event_loop.py").read_text() != STUB_WITH_EL1


@pytest.fixture(scope="module")
def instructor(tmp_path_factory):
    return instructor_course(tmp_path_factory.mktemp("course") / "course")


@pytest.fixture
def learner(instructor, tmp_path):
    return learner_checkout(instructor, tmp_path / "learner")


def grade_01(instructor, checkout, tmp_path) -> dict:
    report = grading.grade(
        instructor, tmp_path / "out", source=checkout, only=["01_event_loop"], allow_solutions=True
    )
    return report["katas"][0] | {"report": report}


def reviewed(kata: dict) -> set[str]:
    return {r["what"] for r in kata["report"]["review"]}


def test_honest_work_on_one_rule_scores_zero(instructor, learner, tmp_path):
    """The baseline every cheat below is compared with: EL1 solved, EL2 and EL3 not."""
    learner_file(learner).write_text(STUB_WITH_EL1)
    kata = grade_01(instructor, learner, tmp_path)
    assert kata["status"] == "failing" and kata["score"] == 0
    assert {r["rule"]: r["status"] for r in kata["rules"]} == {
        "EL1": "passed",
        "EL2": "failing",
        "EL3": "failing",
    }


RUNS_THE_REFERENCE_SOLUTION = """import runpy
import sys
from pathlib import Path

_answer = Path(sys.executable).parents[2] / "solutions/01_event_loop/event_loop.py"
globals().update({k: v for k, v in runpy.run_path(str(_answer)).items() if not k.startswith("__")})
"""


def test_cheat_running_the_reference_solution_from_the_graders_disk(instructor, learner, tmp_path):
    """The grading tree has no solutions/, but a Python whose venv lives in the full course does."""
    learner_file(learner).write_text(RUNS_THE_REFERENCE_SOLUTION)
    assert (Path(sys.executable).parents[2] / "solutions/01_event_loop/event_loop.py").is_file()
    # Graded from inside the full course (this venv is in one too): --from refuses.
    with pytest.raises(grading.GradingError, match="solutions") as refused:
        grading.grade(instructor, tmp_path / "refused", source=learner, only=["01_event_loop"])
    assert str(Path(sys.executable).parents[2] / "solutions") in str(refused.value)
    assert not (tmp_path / "refused").exists()
    # Forced, the answer is on disk and earns the marks; the report says why they do not count.
    forced = grade_01(instructor, learner, tmp_path)
    assert forced["status"] == "solved", forced["message"]
    assert str(instructor / "solutions") in forced["report"]["solutions_reachable"]
    assert {"runpy", "solutions"} <= reviewed(forced)
    assert "Not marks to record" in (tmp_path / "out" / "summary.md").read_text()

    # The documented flow: a grading copy without solutions/ (the release) and its own venv.
    grader = learner_checkout(instructor, tmp_path / "grader")
    venv = tmp_path / "venv"
    python = clean_python(venv)
    env = env_for(grader, PWD=str(grader), VIRTUAL_ENV=str(venv))
    out = tmp_path / "clean"
    argv = [str(python), "-m", "kata_tools.cli", "grade", "1", "--from", str(learner), "-o", str(out)]
    proc = subprocess.run(argv, cwd=grader, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["solutions_reachable"] == [] and report["score"] == 0
    kata = report["katas"][0]
    assert kata["status"] == "failing" and kata["passed"] == 0 and kata["total"] == 9
    assert "FileNotFoundError" in kata["tests"][0]["message"], kata["tests"][0]
    assert {"runpy", "solutions"} <= {r["what"] for r in report["review"]}


def test_cheat_copying_solutions_is_impossible_in_the_student_release(instructor, learner):
    assert not (learner / "solutions").exists() and not (learner / "tests" / "mistakes").exists()
    assert [p.name for p in (learner / "tests").iterdir()] == ["README.md"]
    solution = (instructor / "solutions/01_event_loop/event_loop.py").read_text()
    telltale = "return await asyncio.gather(*(handler(request_id) for request_id in request_ids))"
    assert telltale in solution
    for path in learner.rglob("*"):
        if path.is_file():
            assert telltale not in path.read_text(errors="replace"), path
    proc = run(learner, "pytest", "katas/01_event_loop", "--solutions", "-q")
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "has no solutions/" in proc.stderr and "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr


RECORDER_FORGES_OUTCOMES = (
    STUB_WITH_EL1
    + """
import kata_tools.pytest_plugin as _plugin
_record = _plugin._record
def _forged(item, report, message):
    report.outcome = "passed"          # what pytest, JUnit and the exit code will now believe
    report.longrepr = None
    _record(item, report, "")
_plugin._record = _forged
"""
)

RECORDER_FORGES_RECORDS = (
    STUB_WITH_EL1
    + """
import kata_tools.pytest_plugin as _plugin
def _forged(item, report, message):
    item.config.stash[_plugin.RESULTS][item.nodeid] = {
        "nodeid": item.nodeid, "kata": "01_event_loop", "name": item.name, "rules": ["EL1"],
        "doc": [], "outcome": "passed", "message": "", "duration": 0.0,
    }
_plugin._record = _forged
"""
)


@pytest.mark.parametrize(
    "code, status",
    [(RECORDER_FORGES_OUTCOMES, "tampered"), (RECORDER_FORGES_RECORDS, "failing")],
    ids=["forges-report-objects", "forges-records"],
)
def test_cheat_replacing_the_plugins_result_recorder(instructor, learner, tmp_path, code, status):
    learner_file(learner).write_text(code)
    kata = grade_01(instructor, learner, tmp_path)
    assert kata["score"] == 0 and kata["status"] == status, kata["message"]
    if status == "tampered":
        assert "JUnit" in kata["message"] and "disagree" in kata["message"]
    assert "kata_tools" in reviewed(kata)


EXIT_HANDLER_REWRITES_RESULTS = (
    STUB_WITH_EL1
    + """
import atexit, re, sys
def _rewrite():
    for arg in sys.argv:
        if arg.endswith((".xml", ".json")):
            try:
                text = open(arg).read()
            except OSError:
                continue
            text = re.sub(r"<(failure|error)[^>]*>.*?</\\1>|<(failure|error)[^>]*/>", "", text, flags=re.S)
            text = re.sub(r'(failures|errors)="\\d+"', r'\\1="0"', text)
            open(arg, "w").write(text)
atexit.register(_rewrite)
"""
)


def test_cheat_an_exit_handler_rewriting_the_results_file(instructor, learner, tmp_path):
    learner_file(learner).write_text(EXIT_HANDLER_REWRITES_RESULTS)
    kata = grade_01(instructor, learner, tmp_path)
    assert kata["status"] == "tampered" and kata["score"] == 0
    assert "disagree" in kata["message"]
    assert "atexit" in reviewed(kata)


def test_cheat_a_compiled_module_beside_the_spec(instructor, learner, tmp_path):
    source = tmp_path / "httpx.py"
    source.write_text("raise SystemExit('shadowed')\n")
    py_compile.compile(str(source), cfile=str(learner / "katas/01_event_loop/httpx.pyc"))
    learner_file(learner).write_text(STUB_WITH_EL1)
    kata = grade_01(instructor, learner, tmp_path)
    assert kata["status"] == "failing" and kata["score"] == 0 and kata["passed"] > 0
    changes = kata["report"]["manifest"]["changes"]
    assert changes == [
        {
            "path": "katas/01_event_loop/httpx.pyc",
            "change": "added",
            "katas": ["01_event_loop"],
            "counted": False,
        }
    ]
    # Graded in place (the learner's own CI), the same file scores the kata 0 as tampering.
    solve(learner, "01_event_loop", instructor)
    in_place = grading.grade(learner, tmp_path / "in-place", only=["01_event_loop"])["katas"][0]
    assert in_place["status"] == "tampered" and "httpx.pyc" in in_place["message"]


def test_cheat_a_packaging_change_that_loads_a_learner_file_as_a_plugin(instructor, learner, tmp_path):
    (learner / "kata_cheat.py").write_text(
        "def pytest_collection_modifyitems(items):\n"
        "    for item in items:\n"
        "        item.runtest = lambda: None\n"
    )
    pyproject = learner / "pyproject.toml"
    pyproject.write_text(
        pyproject.read_text() + '\n[project.entry-points.pytest11]\nkata_cheat = "kata_cheat"\n'
    )
    learner_file(learner).write_text(STUB_WITH_EL1)
    kata = grade_01(instructor, learner, tmp_path)
    assert kata["status"] == "failing" and kata["score"] == 0
    paths = {c["path"]: c["counted"] for c in kata["report"]["manifest"]["changes"]}
    assert paths == {manifest.PYTEST_CONFIG: False, "kata_cheat.py": False}
    # In place, the changed pyproject table counts; and no grading child autoloads plugins.
    in_place = grading.grade(learner, tmp_path / "in-place", only=["01_event_loop"])["katas"][0]
    assert in_place["status"] == "tampered" and manifest.PYTEST_CONFIG in in_place["message"]
    env = sandbox.child_env(tmp_path)
    assert env["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] == "1"
    cmd = sandbox.command("01_event_loop", tmp_path, tmp_path / "j.xml", tmp_path / "pyc")
    assert "--import-mode=importlib" in cmd and cmd[1:3] == ["-E", "-s"]
    assert [cmd[i + 1] for i, w in enumerate(cmd) if w == "-p"][-3:] == list(sandbox.PLUGINS)


PYTEST_EXIT_AFTER_ONE_RULE = STUB_WITH_EL1.replace(
    """    # TODO: start every request, then wait for all of them together.
    raise NotImplementedError("serve_concurrently")""",
    """    import pytest
    pytest.exit("that will do", returncode=0)""",
)


def test_cheat_pytest_exit_with_returncode_zero_after_one_rule(instructor, learner, tmp_path):
    assert PYTEST_EXIT_AFTER_ONE_RULE != STUB_WITH_EL1
    learner_file(learner).write_text(PYTEST_EXIT_AFTER_ONE_RULE)
    kata = grade_01(instructor, learner, tmp_path)
    assert kata["status"] == "failing" and kata["score"] == 0 and kata["exit_code"] == 0
    assert kata["passed"] < kata["total"] == 9
    assert f"of {kata['total']} specs ran" in kata["message"]
    assert "_pytest" in reviewed(kata)


OS_EXIT = STUB_WITH_EL1.replace(
    """    # TODO: start every request, then wait for all of them together.
    raise NotImplementedError("serve_concurrently")""",
    """    import os
    os._exit(0)""",
)


def test_cheat_a_hard_exit_with_code_zero(instructor, learner, tmp_path):
    learner_file(learner).write_text(OS_EXIT)
    kata = grade_01(instructor, learner, tmp_path)
    assert kata["status"] == "failing" and kata["score"] == 0 and kata["exit_code"] == 0
    assert "os._exit" in kata["message"]
    assert "os._exit" in reviewed(kata)


WRITES_TO_THE_RESULT_PIPE = (
    STUB_WITH_EL1
    + """
import json, os, stat
_forged = b"".join(
    (json.dumps(m) + "\\n").encode()
    for m in [{"type": "report", "nodeid": "katas/01_event_loop/test_event_loop.py::x", "when": "call",
               "outcome": "passed"}, {"type": "finish", "exitstatus": 0}]
)
for _fd in range(3, 64):
    try:
        if stat.S_ISFIFO(os.fstat(_fd).st_mode):
            os.write(_fd, _forged)
    except OSError:
        pass
"""
)


def test_cheat_writing_forged_results_into_the_graders_pipe(instructor, learner, tmp_path):
    learner_file(learner).write_text(WRITES_TO_THE_RESULT_PIPE)
    kata = grade_01(instructor, learner, tmp_path)
    assert kata["status"] == "tampered" and kata["score"] == 0
    assert "pipe" in kata["message"]
    assert "fd" in reviewed(kata)


REPORT_FACTORY_FORCES_PASSED = (
    STUB_WITH_EL1
    + """
import pytest
_make = pytest.TestReport.from_item_and_call
def _passed(item, call):
    report = _make(item, call)
    report.outcome, report.longrepr = "passed", None
    return report
pytest.TestReport.from_item_and_call = _passed
"""
)


def test_cheat_replacing_pytests_report_factory(instructor, learner, tmp_path):
    """Both records are made from the report object, so forging it at its source fooled both."""
    learner_file(learner).write_text(REPORT_FACTORY_FORCES_PASSED)
    kata = grade_01(instructor, learner, tmp_path)
    assert kata["status"] == "tampered" and kata["score"] == 0, kata
    assert "TestReport.from_item_and_call" in kata["message"]
    assert {"pytest", "patch"} <= reviewed(kata)
