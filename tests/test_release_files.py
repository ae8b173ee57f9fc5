"""The files an instructor ships: the manifest, the points, the CI templates. Fresh, parseable, runnable.

The manifest (kata_tools/manifest.json) and the Classroom config are generated from the pristine
tree; when one is stale these tests fail and name the command that regenerates both.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil

import pytest
import typer
import yaml

from kata_tools import catalog, cli, grading, manifest

ROOT = catalog.ROOT
WORKFLOW = ROOT / ".github" / "workflows" / "grade.yml"
CLASSROOM = ROOT / grading.CLASSROOM_FILE


# --- manifest -----------------------------------------------------------------------------------


def test_the_manifest_matches_the_tree():
    differences = manifest.stale(ROOT)
    assert not differences, (
        f"{manifest.MANIFEST_FILE} is stale: a spec, conftest, catalog, tooling, blog, grading.toml, "
        f"CI template or the pytest config changed since it was made. Regenerate it (and the "
        f"Classroom config) with `{manifest.WRITE_COMMAND}` and commit both:\n  "
        + "\n  ".join(differences)
    )


def test_the_pristine_tree_passes_its_own_tamper_check():
    changes = manifest.check(ROOT)
    assert not changes, "\n".join(c.describe() for c in changes)


def test_the_manifest_knows_every_kata_and_its_learner_files():
    data = manifest.load(ROOT)
    for kata in catalog.katas():
        entry = data["katas"].get(kata.name)
        assert entry, f"{kata.name} is not in the manifest: run `{manifest.WRITE_COMMAND}`"
        assert sorted(entry["learner_files"]) == kata.learner_files
        for rel in kata.learner_files:
            assert manifest.pristine_text(kata.name, rel, data) is not None
        for spec in kata.spec_files:
            assert spec.relative_to(ROOT).as_posix() in data["protected"]


def test_a_windows_checkout_is_not_a_change_but_any_edit_is(tmp_path):
    root = tmp_path / "tree"
    for folder in ("katas/01_event_loop", "solutions/01_event_loop", "kata_tools"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(ROOT / "katas" / "rules.toml", root / "katas")
    shutil.copy2(ROOT / "pyproject.toml", root)
    pristine = manifest.build(root)
    spec = root / "katas/01_event_loop/test_event_loop.py"
    spec.write_bytes(spec.read_bytes().replace(b"\n", b"\r\n"))
    assert manifest.check(root, pristine) == []

    spec.write_text(spec.read_text() + "\n# a learner was here\n")
    (root / "katas/01_event_loop/helpers.py").write_text("")
    (root / "pytest.ini").write_text("[pytest]\n")
    (root / "kata_tools/extra.py").write_text("")
    described = {c.describe() for c in manifest.check(root, pristine)}
    assert described == {
        "modified: katas/01_event_loop/test_event_loop.py (affects 01_event_loop)",
        "added: katas/01_event_loop/helpers.py (affects 01_event_loop)",
        "added: pytest.ini (affects 01_event_loop)",
        "added: kata_tools/extra.py (affects 01_event_loop)",
    }
    # The learner's own file, a README and the rest of pyproject.toml are theirs to change.
    (root / "katas/01_event_loop/event_loop.py").write_text("# solved\n")
    spec.write_bytes(spec.read_bytes())
    pyproject = root / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('version = "0.1.0"', 'version = "9"'))
    assert {c.path for c in manifest.check(root, pristine)} == {
        "katas/01_event_loop/test_event_loop.py",
        "katas/01_event_loop/helpers.py",
        "pytest.ini",
        "kata_tools/extra.py",
    }


# --- points and GitHub Classroom ----------------------------------------------------------------


def test_grading_config_gives_every_kata_points():
    config = grading.load_config(ROOT)
    assert config.scoring in grading.SCORING_MODES
    bad = [name for name in config.points if not catalog.KATA_DIR.match(name)]
    assert not bad, f"grading.toml: [points] keys are kata folder names (NN_name), not {bad}"
    assert all(config.points_of(k.name) > 0 for k in catalog.katas())


def test_the_classroom_config_has_one_test_per_kata_with_its_points():
    data = json.loads(CLASSROOM.read_text())
    assert data == grading.classroom_config(
        ROOT
    ), f"{grading.CLASSROOM_FILE} is stale; regenerate it with `{manifest.WRITE_COMMAND}`"
    config = grading.load_config(ROOT)
    assert [t["name"][:2] for t in data["tests"]] == [k.number for k in catalog.katas()]
    for test, kata in zip(data["tests"], catalog.katas()):
        assert set(test) == {
            "name",
            "setup",
            "run",
            "input",
            "output",
            "comparison",
            "timeout",
            "points",
        }
        assert test["points"] == config.points_of(kata.name)
        assert 1 <= test["timeout"] <= 60  # minutes, Classroom's limits
        assert shlex.split(test["run"])[:3] == ["kata", "grade", kata.number]


# --- the workflow -------------------------------------------------------------------------------


def parse_yaml(text: str):
    """The CI templates as data (PyYAML). YAML 1.1 reads the key `on` as a boolean: restored."""
    data = yaml.safe_load(text)
    if isinstance(data, dict) and True in data:
        data["on"] = data.pop(True)
    return data


@pytest.fixture(scope="module")
def workflow() -> dict:
    return parse_yaml(WORKFLOW.read_text())


def test_the_workflow_parses_and_grades_uploads_and_summarises(workflow):
    assert set(workflow) >= {"name", "on", "jobs"}
    job = workflow["jobs"]["grade"]
    assert job["runs-on"].startswith("ubuntu")
    steps = job["steps"]
    assert all(isinstance(s, dict) and ("uses" in s) != ("run" in s) for s in steps)
    uses = [s["uses"] for s in steps if "uses" in s]
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+@v\d+", u) for u in uses), uses
    assert {u.split("@")[0] for u in uses} == {
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
    }
    runs = [s["run"] for s in steps if "run" in s]
    assert any(r.startswith("python -m pip install") for r in runs)
    grade = next(r for r in runs if r.startswith("kata grade"))
    out = shlex.split(grade)[shlex.split(grade).index("--out") + 1]
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert upload["if"] == "always()" and upload["with"]["path"].rstrip("/") == out
    # The PostgreSQL service is offered as a commented option, via DATABASE_URL.
    text = WORKFLOW.read_text()
    assert re.search(r"^\s*#\s*services:", text, re.M) and re.search(
        r"^\s*#\s*DATABASE_URL: postgresql://", text, re.M
    )


def check_command(command: str) -> None:
    """A `kata` command line must parse (subcommand, arguments, options); others are known tools."""
    words = shlex.split(command)
    if words[0] == "python" and words[1:3] == ["-m", "pip"]:
        assert "install" in words and (ROOT / "pyproject.toml").exists()
        return
    assert words[0] == "kata", f"unexpected command in a CI template: {command}"
    group = typer.main.get_command(cli.app)
    context = group.make_context("kata", words[1:])
    name, rest = words[1], words[2:]
    sub = group.get_command(context, name)
    assert sub is not None, f"`kata {name}` does not exist ({command})"
    sub.make_context(name, list(rest), parent=context)  # raises on an unknown option or argument
    if name in ("grade", "hint", "reset", "watch"):
        for key in [w for w in rest if re.fullmatch(r"\d\d?", w)]:
            catalog.find_kata(key)


def test_every_command_of_the_ci_templates_exists(workflow):
    commands = [s["run"] for s in workflow["jobs"]["grade"]["steps"] if "run" in s]
    for test in json.loads(CLASSROOM.read_text())["tests"]:
        commands += [test["setup"], test["run"]]
    for command in commands:
        check_command(command)
    with pytest.raises(Exception):
        check_command("kata grade --no-such-option")
    with pytest.raises(AssertionError):
        check_command("kata gradee")
