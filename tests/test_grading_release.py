"""`kata release`: the student repository, its Classroom workflow, and the CI templates.

The release is what a learner gets: no solutions/, no mistake catalog or variants, pristine learner
files, the manifest made for it with its digest pinned in the generated Classroom workflow.
"""

from __future__ import annotations

import re
import shlex

import pytest
import typer

from grading_course import ROOT, instructor_course, run, solve
from kata_tools import cli, manifest, release
from kata_tools.grading import classroom

pytestmark = pytest.mark.timeout(300)

NODE24_MAJORS = {"actions/checkout": 6, "actions/setup-python": 6, "actions/upload-artifact": 6}


def load_yaml(text: str):
    try:
        import yaml
    except ImportError:  # the project's strict subset parser (tests/test_release_files.py)
        from test_release_files import parse_yaml

        return parse_yaml(text)
    data = yaml.safe_load(text)
    if True in data:
        data["on"] = data.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    return data


@pytest.fixture(scope="module")
def instructor(tmp_path_factory):
    return instructor_course(
        tmp_path_factory.mktemp("course") / "course", ("01_event_loop", "02_thread_pool")
    )


@pytest.fixture(scope="module")
def student(instructor, tmp_path_factory):
    # The instructor tried the solution in their own checkout: the release must not carry it.
    solve(instructor, "01_event_loop", instructor)
    try:
        return release.release(tmp_path_factory.mktemp("release") / "student", instructor)
    finally:
        stub = manifest.pristine_text("01_event_loop", "event_loop.py", manifest.load(instructor))
        (instructor / "katas/01_event_loop/event_loop.py").write_text(stub)


def test_the_release_holds_no_answers_and_the_pristine_learner_files(instructor, student):
    dest = ROOT.__class__(student["dest"])
    top = {p.name for p in dest.iterdir()}
    assert {"katas", "kata_tools", "kata_blog", "pyproject.toml", "conftest.py", "grading.toml"} <= top
    assert not top & {"solutions", "benchmarks", "CONTRIBUTING.md", ".git", ".kata"}
    assert [p.name for p in (dest / "tests").iterdir()] == ["README.md"]
    assert not list(dest.rglob("__pycache__")) and not list(dest.rglob("*.pyc"))
    assert not (dest / ".github/classroom").exists()
    pristine = manifest.load(instructor)
    assert (dest / "katas/01_event_loop/event_loop.py").read_text() == manifest.pristine_text(
        "01_event_loop", "event_loop.py", pristine
    )
    made = manifest.load(dest)
    assert student["digest"] == manifest.digest(made)
    assert made["protected"] == pristine["protected"] and manifest.check(dest, made) == []


def test_the_classroom_workflow_installs_once_and_has_one_test_per_kata(student):
    dest = ROOT.__class__(student["dest"])
    text = (dest / classroom.WORKFLOW_FILE).read_text()
    workflow = load_yaml(text)
    assert set(workflow["on"]) >= {"push", "repository_dispatch"}
    job = workflow["jobs"]["run-autograding-tests"]
    steps = job["steps"]
    installs = [s for s in steps if "pip install" in s.get("run", "")]
    assert len(installs) == 1
    grades = [s for s in steps if s.get("run", "").startswith("kata grade")]
    assert len(grades) == 1 and f"--expect-manifest {student['digest']}" in grades[0]["run"]
    graders = [
        s for s in steps if s.get("uses", "").startswith("classroom-resources/autograding-command-grader@")
    ]
    assert [s["with"]["test-name"][:2] for s in graders] == ["01", "02"]
    assert all(s["with"]["max-score"] == 10 for s in graders)
    assert all(s["with"]["command"].startswith("python -m kata_tools.grading.check ") for s in graders)
    reporter = next(
        s for s in steps if s.get("uses", "").startswith("classroom-resources/autograding-grading-reporter@")
    )
    assert reporter["with"]["runners"] == ",".join(s["id"] for s in graders)
    assert set(reporter["env"]) == {f"{s['id'].upper()}_RESULTS" for s in graders}
    check_majors(steps)
    check_kata_command(grades[0]["run"].removesuffix(" || true"))


def test_with_the_course_repository_it_grades_from_the_submission(instructor, tmp_path):
    text = classroom.workflow(instructor, "abcd" * 4, course_repo="teacher/async-katas", course_ref="v1")
    steps = load_yaml(text)["jobs"]["run-autograding-tests"]["steps"]
    checkouts = [s for s in steps if s.get("uses", "").startswith("actions/checkout@")]
    assert [c["with"]["path"] for c in checkouts] == ["submission", "course"]
    assert checkouts[1]["with"]["repository"] == "teacher/async-katas" and checkouts[1]["with"]["ref"] == "v1"
    grade = next(s for s in steps if s.get("run", "").startswith("kata grade"))
    assert grade["working-directory"] == "course" and "--from ../submission" in grade["run"]
    assert "python -m pip install -q -e course" in [s.get("run") for s in steps]


def test_the_release_refuses_to_overwrite_or_to_nest(instructor, tmp_path):
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("")
    with pytest.raises(release.ReleaseError, match="not empty"):
        release.release(tmp_path / "full", instructor)
    with pytest.raises(release.ReleaseError, match="outside"):
        release.release(instructor / "release", instructor)


def test_the_pristine_release_grades_itself_to_zero_in_place(student):
    dest = ROOT.__class__(student["dest"])
    bare = run(dest, "pytest", "-q")  # no self-tests shipped: says so, no traceback
    assert bare.returncode == 5 and "Traceback" not in bare.stdout + bare.stderr, bare.stdout + bare.stderr
    proc = run(dest, "kata_tools.cli", "grade", "1", "--out", "grade-report")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    check = run(dest, "kata_tools.grading.check", "grade-report/report.json", "01_event_loop")
    assert check.returncode == 1 and "failing" in check.stdout


def test_the_release_command_through_kata(instructor, tmp_path):
    proc = run(instructor, "kata_tools.cli", "release", str(tmp_path / "r"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no solutions/" in proc.stdout and (tmp_path / "r" / classroom.WORKFLOW_FILE).is_file()
    again = run(instructor, "kata_tools.cli", "release", str(tmp_path / "r"))
    assert again.returncode == 2 and "not empty" in again.stderr and "Traceback" not in again.stderr


def check_majors(steps) -> None:
    for step in steps:
        uses = step.get("uses")
        if not uses:
            continue
        name, _, version = uses.partition("@")
        assert re.fullmatch(r"v\d+", version), uses
        if name in NODE24_MAJORS:
            assert int(version[1:]) >= NODE24_MAJORS[name], f"{uses} runs on Node 20"


def check_kata_command(command: str) -> None:
    words = shlex.split(command)
    assert words[0] == "kata"
    group = typer.main.get_command(cli.app)
    context = group.make_context("kata", words[1:])
    sub = group.get_command(context, words[1])
    sub.make_context(words[1], words[2:], parent=context)


def test_the_plain_workflow_and_dependabot_use_current_majors():
    grade = load_yaml((ROOT / ".github/workflows/grade.yml").read_text())
    check_majors(grade["jobs"]["grade"]["steps"])
    bot = load_yaml((ROOT / ".github/dependabot.yml").read_text())
    assert bot["version"] == 2
    assert [u["package-ecosystem"] for u in bot["updates"]] == ["github-actions"]
    assert not (ROOT / ".github/classroom/autograding.json").exists()
    assert classroom.CHECKOUT.endswith("@v6") and classroom.UPLOAD_ARTIFACT.endswith("@v6")
