"""Grading as an instructor does it: `kata grade --from` a learner's checkout of the student release.

Each test makes an instructor's course (only the katas without a database, to stay fast), the
student release of it (`kata release`) as the learner's checkout, and grades it. The cheats of
issue 13 have their own file (test_grading_cheats.py); the reports' robustness too
(test_grading_reports.py).
"""

from __future__ import annotations

import json
import os
import re
import time

import pytest

from grading_course import ROOT, instructor_course, learner_checkout, learner_file, run, solve
from kata_tools import grading, manifest
from kata_tools.grading import sandbox, verdict

pytestmark = pytest.mark.timeout(300)

KATA_KEYS = {
    "kata",
    "number",
    "title",
    "status",
    "score",
    "max_score",
    "passed",
    "total",
    "seconds",
    "exit_code",
    "message",
    "rules",
    "tests",
}
REPORT_KEYS = {
    "schema",
    "created",
    "score",
    "max_score",
    "percent",
    "scoring",
    "graded_from",
    "solutions_reachable",
    "manifest",
    "review",
    "katas",
}
STATUSES = {"solved", "failing", "not run", "missing", "tampered", "timed out"}


def check_schema(report: dict) -> dict:
    """report.json against the schema documented in kata_tools/grading/__init__.py."""
    assert set(report) == REPORT_KEYS and report["schema"] == "kata-grade/2"
    assert set(report["manifest"]) == {"digest", "changes", "changes_left_out"}
    for change in report["manifest"]["changes"]:
        assert set(change) == {"path", "change", "katas", "counted"}
    for k in report["katas"]:
        assert set(k) == KATA_KEYS and k["status"] in STATUSES
        for t in k["tests"]:
            assert set(t) == {"nodeid", "name", "rules", "status", "message", "duration"}
            assert t["status"] in ("passed", "failed", "error", "skipped", "not run")
    assert report["score"] == pytest.approx(sum(k["score"] for k in report["katas"]))
    return report


@pytest.fixture(scope="module")
def instructor(tmp_path_factory):
    return instructor_course(
        tmp_path_factory.mktemp("course") / "course", ("01_event_loop", "02_thread_pool")
    )


@pytest.fixture
def learner(instructor, tmp_path):
    return learner_checkout(instructor, tmp_path / "learner")


def grade_from(instructor, learner, tmp_path, **kw) -> dict:
    """--from, graded inside the instructor's course (which holds solutions/, as does the venv
    these tests run with): allowed here; test_grading_cheats.py grades from a clean copy."""
    report = grading.grade(instructor, tmp_path / "out", source=learner, allow_solutions=True, **kw)
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(report))
    return check_schema(on_disk)


def test_a_pristine_release_scores_zero_and_says_why_per_kata(instructor, learner, tmp_path):
    report = grade_from(instructor, learner, tmp_path)
    assert report["score"] == 0 and report["max_score"] == 20
    assert {k["status"] for k in report["katas"]} == {"failing"}
    assert report["manifest"]["changes"] == [] and report["review"] == []
    for k in report["katas"]:
        assert k["total"] > 0 and k["exit_code"] == 1
        assert all(t["message"] for t in k["tests"] if t["status"] == "failed")
        assert {r["status"] for r in k["rules"]} <= {"failing", "passed"}


def test_the_learners_correct_files_earn_full_marks(instructor, learner, tmp_path):
    for kata in ("01_event_loop", "02_thread_pool"):
        solve(learner, kata, instructor)
    report = grade_from(instructor, learner, tmp_path)
    assert report["score"] == report["max_score"] == 20 and report["percent"] == 100
    for k in report["katas"]:
        assert k["status"] == "solved" and k["passed"] == k["total"] > 0 and k["exit_code"] == 0
        assert all(r["status"] == "passed" and r["total"] > 0 for r in k["rules"])
    assert report["review"] == []  # the reference solutions reach into nothing


def test_a_hanging_kata_costs_only_its_own_points_and_at_most_its_limit(tmp_path):
    course = instructor_course(
        tmp_path / "course",
        ("01_event_loop", "02_thread_pool"),
        grading_toml="[grading]\ntime_limit = 120\n[time_limits]\n01_event_loop = 6\n",
    )
    learner = learner_checkout(course, tmp_path / "learner")
    solve(learner, "02_thread_pool", course)
    # A file that hangs the process for good: it ignores SIGALRM (pytest-timeout) and SIGTERM,
    # and leaves a non-daemon thread that would keep the interpreter from ever exiting.
    learner_file(learner).write_text(
        "import signal, threading, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGALRM])\n"
        "threading.Thread(target=time.sleep, args=(3600,)).start()\n"
        "while True:\n    pass\n"
    )
    started = time.monotonic()
    report = grade_from(course, learner, tmp_path)
    elapsed = time.monotonic() - started
    hung, other = report["katas"]
    assert hung["status"] == "timed out" and hung["score"] == 0 and hung["exit_code"] is None
    assert "timed out" in hung["message"] and 6 <= hung["seconds"] < 6 + 5
    assert other["status"] == "solved" and other["score"] == 10
    assert elapsed < 6 + other["seconds"] + 30
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "timed out" in summary


def test_learner_files_are_never_followed_through_a_symlink(instructor, learner, tmp_path):
    target = learner_file(learner)
    target.unlink()
    target.symlink_to(instructor / "solutions" / "01_event_loop" / target.name)
    outside = tmp_path / "outside"
    solve(outside, "02_thread_pool", instructor)
    folder = learner / "katas" / "02_thread_pool"
    for path in folder.iterdir():
        if path.name != "kata.toml" and not path.name.startswith(("test_", "README")):
            path.unlink()
            path.symlink_to(outside / "katas" / "02_thread_pool" / path.name)
    report = grade_from(instructor, learner, tmp_path)
    assert report["score"] == 0
    for k in report["katas"]:
        assert k["status"] == "missing" and "symbolic link" in k["message"], k


def test_a_symlinked_folder_on_the_way_is_refused_too(tmp_path):
    (tmp_path / "real" / "katas" / "01_event_loop").mkdir(parents=True)
    (tmp_path / "real" / "katas" / "01_event_loop" / "event_loop.py").write_text("x = 1\n")
    (tmp_path / "checkout").mkdir()
    (tmp_path / "checkout" / "katas").symlink_to(tmp_path / "real" / "katas")
    with pytest.raises(sandbox.UnsafeFile, match="symbolic link"):
        sandbox.read_learner_file(tmp_path / "checkout", "katas/01_event_loop/event_loop.py")
    with pytest.raises(sandbox.UnsafeFile, match="relative"):
        sandbox.read_learner_file(tmp_path / "real", "katas/../../etc/passwd")
    assert sandbox.read_learner_file(tmp_path / "real", "katas/01_event_loop/event_loop.py") == b"x = 1\n"


def test_only_the_declared_learner_files_are_taken_from_the_checkout(instructor, learner, tmp_path):
    solve(learner, "01_event_loop", instructor)
    spec = learner / "katas/01_event_loop/test_event_loop.py"
    spec.write_text("import pytest\n\n@pytest.mark.rule('EL1')\ndef test_nothing():\n    pass\n")
    (learner / "katas/01_event_loop/conftest.py").write_text("raise SystemExit(0)\n")
    (learner / "conftest.py").write_text("raise SystemExit(0)\n")
    report = grade_from(instructor, learner, tmp_path, only=["01_event_loop"])
    kata = report["katas"][0]
    assert kata["status"] == "solved" and kata["total"] == 9  # the pristine specs ran
    shown = {(c["path"], c["change"], c["counted"]) for c in report["manifest"]["changes"]}
    assert shown == {
        ("katas/01_event_loop/test_event_loop.py", "modified", False),
        ("katas/01_event_loop/conftest.py", "added", False),
        ("conftest.py", "modified", False),
    }


def test_in_place_every_file_outside_the_allow_list_counts(instructor, learner, tmp_path):
    """A learner's own CI grades their tree in place: then any added or changed file scores 0."""
    solve(learner, "01_event_loop", instructor)
    pristine = manifest.load(learner)
    assert manifest.check(learner, pristine) == []
    (learner / "katas/01_event_loop/notes.txt").write_text("")
    (learner / "katas/01_event_loop/httpx.pyc").write_bytes(b"\0")
    (learner / "katas/01_event_loop/_x.cpython-311-x86_64-linux-gnu.so").write_bytes(b"\0")
    (learner / "katas/01_event_loop/evil.pth").write_text("import os\n")
    (learner / "kata_tools/extra.txt").write_text("")
    (learner / "katas/01_event_loop/README.md").write_text("my notes\n")  # prose: allowed
    (learner / "katas/01_event_loop/__pycache__").mkdir()  # never read by the grader: skipped
    (learner / "katas/01_event_loop/__pycache__/x.pyc").write_bytes(b"\0")
    found = {(c.path, c.kind) for c in manifest.check(learner, pristine)}
    assert found == {
        ("katas/01_event_loop/notes.txt", "added"),
        ("katas/01_event_loop/httpx.pyc", "added"),
        ("katas/01_event_loop/_x.cpython-311-x86_64-linux-gnu.so", "added"),
        ("katas/01_event_loop/evil.pth", "added"),
        ("kata_tools/extra.txt", "added"),
    }
    report = check_schema(grading.grade(learner, tmp_path / "out", only=["01_event_loop"]))
    kata = report["katas"][0]
    assert kata["status"] == "tampered" and kata["score"] == 0 and kata["passed"] == 9
    assert "httpx.pyc" in kata["message"]


def test_the_listing_never_follows_a_symlinked_folder(instructor, learner, tmp_path):
    """A `kata_blog -> /usr` link once listed 105,989 changes: a link is one entry, never entered."""
    pristine = manifest.load(learner)
    blog = learner / "kata_blog"
    copy = tmp_path / "kata_blog_copy"
    blog.rename(copy)
    big = tmp_path / "big"  # stands for /usr: many files, none of them the course's
    for i in range(300):
        (big / f"d{i % 10}").mkdir(parents=True, exist_ok=True)
        (big / f"d{i % 10}" / f"f{i}.py").write_text("")
    for target in (big, copy):  # elsewhere, or an identical copy: a link either way
        if blog.is_symlink():
            blog.unlink()
        blog.symlink_to(target, target_is_directory=True)
        changes = manifest.check(learner, pristine)
        kinds = {(c.path, c.kind) for c in changes}
        assert ("kata_blog", "added") in kinds
        assert {c.kind for c in changes if c.path != "kata_blog"} == {"deleted"}
        assert {c.path for c in changes if c.path != "kata_blog"} == {
            rel for rel in pristine["protected"] if rel.startswith("kata_blog/")
        }
    (learner / "katas/01_event_loop/helpers").symlink_to(big, target_is_directory=True)
    changes = {(c.path, c.kind) for c in manifest.check(learner, pristine)}
    assert ("katas/01_event_loop/helpers", "added") in changes
    assert not any(path.startswith("katas/01_event_loop/helpers/") for path, _ in changes)


def test_in_place_every_pyproject_table_that_can_load_code_counts(instructor, learner):
    pristine = manifest.load(learner)
    pyproject = learner / "pyproject.toml"
    text = pyproject.read_text()
    harmless = text.replace('version = "0.1.0"', 'version = "9"').replace(
        'description = "', 'description = "mine: '
    )
    pyproject.write_text(harmless + "\n[tool.black]\nline-length = 100\n")
    assert manifest.check(learner, pristine) == []
    for edit in (
        harmless + '\n[project.entry-points.pytest11]\ncheat = "kata_cheat"\n',
        re.sub(r'("pytest>=[^"]+",)', r'\1 "pytest-cheat",', harmless, count=1),
        re.sub(r"(include = \[[^\]]*)\]", r'\1, "katas*"]', harmless, count=1),
        harmless.replace('requires = ["setuptools>=68"]', 'requires = ["setuptools>=68", "cheat"]'),
        harmless + '\n[tool.coverage.run]\nplugins = ["cheat"]\n',
    ):
        assert edit != harmless
        pyproject.write_text(edit)
        assert [c.path for c in manifest.check(learner, pristine)] == [manifest.PYTEST_CONFIG], edit


def test_the_verdict_needs_every_spec_pytests_end_and_a_zero_exit():
    def run_with(messages, returncode=0, junit=None):
        return sandbox.KataRun("01_x", returncode, False, 1.0, messages, junit)

    collected = {"type": "collected", "specs": [{"nodeid": "katas/01_x/test_a.py::test_a", "rules": ["EL1"]}]}
    passed = [
        {"type": "report", "nodeid": "katas/01_x/test_a.py::test_a", "when": w, "outcome": "passed"}
        for w in ("setup", "call", "teardown")
    ]
    finish = {"type": "finish", "exitstatus": 0}
    assert verdict.judge(run_with([collected, *passed, finish]), "01_x").message == "no-session-end"
    assert verdict.junit_key("katas/01_x/test_a.py::TestC::test_a[1]") == (
        "katas.01_x.test_a.TestC",
        "test_a[1]",
    )


def test_grade_through_the_command_line_with_a_pinned_digest(instructor, learner, tmp_path):
    solve(learner, "01_event_loop", instructor)
    digest = manifest.digest(manifest.load(instructor))
    proc = run(
        instructor,
        "kata_tools.cli",
        "grade",
        "1",
        "--from",
        str(learner),
        "--out",
        str(tmp_path / "o"),
        "--expect-manifest",
        digest,
        "--gradescope",
        str(tmp_path / "gs.json"),
        "--allow-solutions",
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads((tmp_path / "o/report.json").read_text())["score"] == 10
    other = run(
        instructor,
        "kata_tools.cli",
        "grade",
        "1",
        "--from",
        str(learner),
        "--out",
        str(tmp_path / "o"),
        "--allow-solutions",
        KATA_MANIFEST_DIGEST="0000",
    )
    assert other.returncode == 1
    report = json.loads((tmp_path / "o/report.json").read_text())
    assert report["score"] == 0 and report["manifest"]["changes"][0]["path"] == manifest.MANIFEST_FILE
    check = run(instructor, "kata_tools.grading.check", str(tmp_path / "o/report.json"), "01_event_loop")
    assert check.returncode == 1 and "tampered" in check.stdout
    assert os.path.getsize(tmp_path / "gs.json") > 0


def test_proportional_scoring_counts_agreeing_passes_and_nothing_for_an_early_end(tmp_path):
    from test_grading_cheats import PYTEST_EXIT_AFTER_ONE_RULE, STUB_WITH_EL1

    course = instructor_course(tmp_path / "course", grading_toml='[grading]\nscoring = "proportional"\n')
    learner = learner_checkout(course, tmp_path / "learner")
    learner_file(learner).write_text(STUB_WITH_EL1)
    honest = grade_from(course, learner, tmp_path)["katas"][0]
    assert honest["status"] == "failing" and 0 < honest["score"] < 10
    assert honest["score"] == round(10 * honest["passed"] / honest["total"], 2)
    learner_file(learner).write_text(PYTEST_EXIT_AFTER_ONE_RULE)
    cheat = grade_from(course, learner, tmp_path)["katas"][0]
    assert cheat["score"] == 0 and "specs ran" in cheat["message"]


def test_the_review_judges_code_not_docstrings():
    """Every reference solution and stub is clean; a docstring naming pytest or solutions/ is not code."""
    from kata_tools.grading import review

    for base in ("solutions", "katas"):
        for path in sorted((ROOT / base).rglob("*.py")):
            if "__pycache__" in path.parts or path.name.startswith(("test_", "conftest")):
                continue
            assert review.scan(path.read_text(), str(path)) == [], path
    prose = '"""Run it with pytest; compare with solutions/01_event_loop (runpy is not needed)."""\n'
    assert review.scan(prose + "x = 1\n", "a.py") == []
    code = prose + (
        "import runpy\n"
        "from pytest import TestReport\n"
        "TestReport.from_item_and_call = None\n"
        "p = base / 'solutions' / name\n"
        "limiter().total_tokens = 4\n"
    )
    assert [(r["line"], r["what"]) for r in review.scan(code, "a.py")] == [
        (2, "runpy"),
        (3, "pytest"),
        (4, "patch"),
        (5, "solutions"),
    ]


def test_solutions_next_to_or_above_the_course_are_found(tmp_path):
    from kata_tools.grading import isolation

    course, tree = tmp_path / "outer" / "course", tmp_path / "tree"
    course.mkdir(parents=True)
    tree.mkdir()
    env = sandbox.child_env(tmp_path)
    (tmp_path / "outer" / "solutions" / "notes").mkdir(parents=True)  # no kata in it
    assert str(tmp_path / "outer" / "solutions") not in isolation.solutions_reachable(course, tree, env)
    (tmp_path / "outer" / "solutions" / "01_event_loop").mkdir()
    assert str(tmp_path / "outer" / "solutions") in isolation.solutions_reachable(course, tree, env)
