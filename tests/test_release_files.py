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


class YamlSubsetError(Exception):
    pass


def parse_yaml(text: str):
    """A strict parser for the block-style YAML subset the templates use (no PyYAML needed):
    mappings, sequences, plain/quoted scalars, `|`/`>-` block scalars, comments. Anything else
    (tabs, flow collections, anchors, bad indentation, duplicate keys) is an error."""
    lines = text.splitlines()
    pos = 0

    def indent(line: str) -> int:
        return len(line) - len(line.lstrip(" "))

    def skip() -> None:
        nonlocal pos
        while pos < len(lines) and (not lines[pos].strip() or lines[pos].lstrip().startswith("#")):
            pos += 1

    def scalar(raw: str):
        raw = raw.strip()
        if raw[:1] in "\"'":
            quote = raw[0]
            end = raw.index(quote, 1)
            rest = raw[end + 1 :].strip()
            if rest and not rest.startswith("#"):
                raise YamlSubsetError(f"line {pos}: text after a quoted scalar: {raw!r}")
            return raw[1:end]
        raw = re.split(r"\s+#", raw)[0].strip()
        if raw[:1] in "[{&*!|>" or raw.startswith("- "):
            raise YamlSubsetError(f"line {pos}: unsupported YAML here: {raw!r}")
        if raw in ("true", "false"):
            return raw == "true"
        return int(raw) if re.fullmatch(r"-?\d+", raw) else raw

    def block_scalar(parent: int, style: str) -> str:
        nonlocal pos
        body = []
        while pos < len(lines) and (not lines[pos].strip() or indent(lines[pos]) > parent):
            body.append(lines[pos])
            pos += 1
        width = min((indent(b) for b in body if b.strip()), default=0)
        body = [b[width:] for b in body]
        return (" " if style.startswith(">") else "\n").join(b for b in body if b.strip())

    def block(level: int):
        skip()
        if pos < len(lines) and lines[pos].strip().startswith("- "):
            return sequence(indent(lines[pos]))
        return mapping(level)

    def value_after_key(level: int, rest: str):
        nonlocal pos
        rest = re.split(r"\s+#", rest)[0].strip() if not rest.strip()[:1] in "\"'" else rest
        if rest in ("|", "|-", ">", ">-"):
            return block_scalar(level, rest)
        if rest:
            return scalar(rest)
        skip()
        if pos < len(lines) and indent(lines[pos]) > level:
            return block(indent(lines[pos]))
        return None

    def mapping(level: int) -> dict:
        nonlocal pos
        out = {}
        while True:
            skip()
            if pos >= len(lines) or indent(lines[pos]) < level:
                return out
            line = lines[pos]
            if "\t" in line[: indent(line) + 1]:
                raise YamlSubsetError(f"line {pos + 1}: tab in indentation")
            if indent(line) != level or line.strip().startswith("- "):
                raise YamlSubsetError(f"line {pos + 1}: bad indentation: {line!r}")
            m = re.fullmatch(r"([A-Za-z0-9_.-]+):(?:\s+(.*))?", line.strip())
            if not m:
                raise YamlSubsetError(f"line {pos + 1}: not a `key: value` line: {line!r}")
            if m.group(1) in out:
                raise YamlSubsetError(f"line {pos + 1}: duplicate key {m.group(1)!r}")
            pos += 1
            out[m.group(1)] = value_after_key(level, m.group(2) or "")

    def sequence(level: int) -> list:
        nonlocal pos
        out = []
        while True:
            skip()
            if pos >= len(lines) or indent(lines[pos]) < level:
                return out
            line = lines[pos]
            if indent(line) != level or not line.strip().startswith("- "):
                raise YamlSubsetError(f"line {pos + 1}: bad sequence item: {line!r}")
            item = line.strip()[2:]
            if re.match(r"[A-Za-z0-9_.-]+:(\s|$)", item):
                lines[pos] = " " * (level + 2) + item  # `- key: v` opens a mapping one level in
                out.append(mapping(level + 2))
            else:
                pos += 1
                out.append(scalar(item))

    result = mapping(0)
    skip()
    if pos != len(lines):
        raise YamlSubsetError(f"line {pos + 1}: unexpected text: {lines[pos]!r}")
    return result


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


def test_the_subset_parser_agrees_with_pyyaml_when_it_is_installed(workflow):
    yaml = pytest.importorskip("yaml")
    loaded = yaml.safe_load(WORKFLOW.read_text())
    loaded["on"] = loaded.pop(True)  # YAML 1.1 reads the key `on` as a boolean
    assert loaded == workflow


def test_the_subset_parser_rejects_what_it_does_not_understand():
    for bad in ("a: 1\n a: 2\n", "a:\n\t- x\n", "a: [1, 2]\n", "a: 1\na: 2\n", "- a\nb: 1\n"):
        with pytest.raises(YamlSubsetError):
            parse_yaml(bad)


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
