"""`kata grade`: every kata's specs in one pytest process, scored, checked for tampering, reported.

Points come from `grading.toml` at the project root (see that file): points per kata and the
scoring mode, `all-or-nothing` (the default: a kata scores its points when every spec passes) or
`proportional` (points x passed specs / specs). All-or-nothing is the default because some specs
can pass on an untouched stub (a spec may exist to reject a declared mistake), so a proportional
score of a learner who did nothing would not be zero, and because GitHub Classroom's config has
one pass/fail test per kata: both then give the same points.

A kata whose specs, conftest files or shared tooling differ from the pristine tree (see
kata_tools/manifest.py) scores 0, and the report names each changed file. With `--from DIR`
the learner files of the checkout DIR are graded with this tree's specs instead: there the
learner's other changes are reported but cannot change a score.

Files written to the output folder (default `grade-report/`):

    report.json     the report below (schema "kata-grade/1")
    summary.md      the same as Markdown; also appended to $GITHUB_STEP_SUMMARY when that is set
    junit.xml       pytest's JUnit XML of the run
    pytest-output.txt  the run's console output
    gradescope.json with --gradescope: Gradescope's results.json format, one test per kata

report.json, schema "kata-grade/1" (every key always present):

    {
      "schema": "kata-grade/1",
      "created": "2025-01-31T12:00:00+00:00",     # UTC, ISO 8601
      "score": 10.0, "max_score": 90.0,           # points, summed over katas
      "percent": 11.1,
      "scoring": "all-or-nothing",                # or "proportional" (grading.toml)
      "graded_from": null,                        # or the folder given to --from
      "pytest_exit_code": 1,                      # the pytest run's exit code
      "manifest": {
        "digest": "3f1c...",                      # fingerprint of kata_tools/manifest.json
        "changes": [                              # files that differ from the pristine tree
          {"path": "katas/01_event_loop/test_event_loop.py",
           "change": "modified",                  # modified, deleted or added
           "katas": ["01_event_loop"],            # katas it can affect ([]: CI templates only)
           "counted": true}                       # true: those katas score 0 for it
        ]
      },
      "katas": [
        {
          "kata": "01_event_loop", "number": "01", "title": "event loop",
          "status": "solved",                     # solved, failing, not run, missing, tampered
          "score": 10.0, "max_score": 10.0,
          "passed": 9, "total": 9,                # specs
          "message": "",                          # why a kata scored 0 despite its specs, if so
          "rules": [
            {"rule": "EL1", "title": "...", "status": "passed",   # passed, failing, not run
             "passed": 2, "total": 2}
          ],
          "tests": [
            {"nodeid": "katas/01_event_loop/test_event_loop.py::test_...", "name": "test_...",
             "rules": ["EL1"], "status": "passed",   # passed, failed, error, skipped
             "message": "",                           # the teaching message of a failure
             "duration": 0.02}
          ]
        }
      ]
    }
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from kata_tools import catalog, manifest
from kata_tools.catalog import tomllib

SCHEMA = "kata-grade/1"
CONFIG_FILE = "grading.toml"
CLASSROOM_FILE = ".github/classroom/autograding.json"
SCORING_MODES = ("all-or-nothing", "proportional")
DEFAULT_POINTS = 10.0


class GradingError(Exception):
    """Grading cannot start (bad config, no manifest, no katas); one line says why."""


@dataclass
class Config:
    scoring: str = "all-or-nothing"
    default_points: float = DEFAULT_POINTS
    points: dict[str, float] = field(default_factory=dict)

    def points_of(self, kata: str) -> float:
        """grading.toml's [points] override, else the kata's own `points` in its kata.toml."""
        if kata in self.points:
            return float(self.points[kata])
        decl = catalog.KATAS / kata / "kata.toml"
        return catalog._declaration(decl).points if decl.is_file() else self.default_points


def load_config(root: Path) -> Config:
    path = Path(root) / CONFIG_FILE
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return Config()
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise GradingError(f"{CONFIG_FILE} is not valid TOML: {e}") from None
    grading = data.get("grading", {})
    scoring = grading.get("scoring", "all-or-nothing")
    if scoring not in SCORING_MODES:
        raise GradingError(
            f"{CONFIG_FILE}: scoring must be one of {', '.join(SCORING_MODES)}, not {scoring!r}"
        )
    points = data.get("points", {})
    numbers = {k: v for k, v in points.items() if isinstance(v, (int, float)) and v >= 0}
    default = grading.get("default_points", DEFAULT_POINTS)
    if len(numbers) != len(points) or not isinstance(default, (int, float)) or default < 0:
        raise GradingError(f"{CONFIG_FILE}: points must be numbers >= 0")
    return Config(scoring, float(default), {k: float(v) for k, v in numbers.items()})


# --- running -----------------------------------------------------------------------------------


@dataclass
class Run:
    exit_code: int
    output: str
    records: list[dict]


def run_specs(root: Path, katas: list[str], out: Path, source: Path | None = None) -> Run:
    """One pytest process over the katas' spec folders, from `root`; learner files from `source`."""
    with tempfile.TemporaryDirectory(prefix="kata-grade-") as tmp:
        raw = Path(tmp) / "specs.json"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            *[f"katas/{k}" for k in katas],
            "-q",
            "--kata-report",
            str(raw),
            "--junitxml",
            str(out / "junit.xml"),
            "-o",
            "junit_suite_name=katas",
            "--continue-on-collection-errors",
        ]
        if source is not None:
            cmd += ["--kata-source", str(source / "katas")]
        env = {k: v for k, v in os.environ.items() if k not in ("KATA_SOLUTIONS", "KATA_SOURCE")}
        # Bytecode (Python's and pytest's rewritten specs) goes to a fresh folder: a __pycache__
        # shipped with the learner's tree is never loaded in place of a spec's source.
        env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        proc = subprocess.run(
            cmd,
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        records = []
        if raw.exists():
            try:
                records = json.loads(raw.read_text())["specs"]
            except (ValueError, KeyError, TypeError):
                records = []
    return Run(proc.returncode, proc.stdout, records)


# --- scoring -----------------------------------------------------------------------------------


def _test_entry(r: dict) -> dict:
    return {
        "nodeid": r.get("nodeid", ""),
        "name": r.get("name", ""),
        "rules": list(r.get("rules") or []),
        "status": r.get("outcome", "error"),
        "message": r.get("message") or "",
        "duration": r.get("duration", 0.0),
    }


def score_kata(
    kata: str,
    tests: list[dict],
    points: float,
    scoring: str,
    exists: bool,
    changes: list[dict],
    rules: list[catalog.Rule],
) -> dict:
    passed = sum(t["status"] == "passed" for t in tests)
    total = len(tests)
    rule_entries = []
    for rule in rules:
        mine = [t for t in tests if rule.id in t["rules"]]
        ok = sum(t["status"] == "passed" for t in mine)
        status = "not run" if not mine else "passed" if ok == len(mine) else "failing"
        rule_entries.append(
            {
                "rule": rule.id,
                "title": rule.title_in(),
                "status": status,
                "passed": ok,
                "total": len(mine),
            }
        )
    message = ""
    if not exists:
        status, score = "missing", 0.0
        message = (
            f"katas/{kata} is missing: restore it from the course (git checkout -- katas/{kata})"
        )
    elif changes:
        status, score = "tampered", 0.0
        message = "scored 0: " + "; ".join(f"{c['change']} {c['path']}" for c in changes)
    elif total == 0:
        status, score = "not run", 0.0
        message = "no spec of this kata ran (a collection error? see pytest-output.txt)"
    else:
        status = "solved" if passed == total else "failing"
        if scoring == "proportional":
            score = round(points * passed / total, 2)
        else:
            score = points if passed == total else 0.0
    return {
        "kata": kata,
        "number": kata[:2],
        "title": kata[3:].replace("_", " "),
        "status": status,
        "score": float(score),
        "max_score": float(points),
        "passed": passed,
        "total": total,
        "message": message,
        "rules": rule_entries,
        "tests": tests,
    }


def grade(
    root: Path | None = None,
    out: Path | None = None,
    only: list[str] | None = None,
    source: Path | None = None,
    expect_manifest: str | None = None,
    gradescope: Path | None = None,
) -> dict:
    """Grade the tree at `root` (or the learner files of `source` with root's specs); write reports."""
    root = Path(root or catalog.ROOT).resolve()
    out = Path(out or root / "grade-report").resolve()
    config = load_config(root)
    try:
        pristine = manifest.load(root)
    except manifest.ManifestError as e:
        raise GradingError(f"cannot check for tampering: {e}") from None
    all_katas = sorted(pristine.get("katas", {}))
    if not all_katas:
        raise GradingError(
            f"{manifest.MANIFEST_FILE} lists no katas; run `{manifest.WRITE_COMMAND}`"
        )
    katas = all_katas
    if only:
        unknown = [k for k in only if k not in all_katas]
        if unknown:
            raise GradingError(
                f"no kata {unknown[0]!r} in the course; the katas are: {', '.join(all_katas)}"
            )
        katas = [k for k in all_katas if k in only]
    digest = manifest.digest(pristine)

    # Changes in the tree whose specs run always count; with --from, the learner tree's only show.
    counted = manifest.check(root, pristine)
    if expect_manifest and not digest.startswith(expect_manifest.strip().lower()):
        counted.append(manifest.Change(manifest.MANIFEST_FILE, "modified", tuple(all_katas)))
    shown = manifest.check(source, pristine) if source is not None else []
    change_entries = [
        {"path": c.path, "change": c.kind, "katas": list(c.katas), "counted": True} for c in counted
    ] + [
        {"path": c.path, "change": c.kind, "katas": list(c.katas), "counted": False} for c in shown
    ]

    out.mkdir(parents=True, exist_ok=True)
    learner_root = source.resolve() if source is not None else root
    present = [
        k for k in katas if (root / "katas" / k).is_dir() and (learner_root / "katas" / k).is_dir()
    ]
    run = run_specs(root, present, out, source) if present else Run(0, "no kata folder found\n", [])
    (out / "pytest-output.txt").write_text(run.output, encoding="utf-8")

    spec_files = {p for p in pristine["protected"] if p.startswith("katas/") and "/test_" in p}
    by_kata: dict[str, list[dict]] = {k: [] for k in katas}
    for r in run.records:
        if r.get("kata") in by_kata and r.get("nodeid", "").split("::")[0] in spec_files:
            by_kata[r["kata"]].append(_test_entry(r))
    rules = catalog.rules() if root == catalog.ROOT else _rules_of(root)
    kata_entries = []
    for k in katas:
        changes = [c for c in change_entries if c["counted"] and k in c["katas"]]
        kata_entries.append(
            score_kata(
                k,
                by_kata[k],
                config.points_of(k),
                config.scoring,
                k in present,
                changes,
                [rules[r] for r in _declared_rules(root, k) if r in rules],
            )
        )
    score = round(sum(e["score"] for e in kata_entries), 2)
    max_score = round(sum(e["max_score"] for e in kata_entries), 2)
    report = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "score": score,
        "max_score": max_score,
        "percent": round(100 * score / max_score, 1) if max_score else 0.0,
        "scoring": config.scoring,
        "graded_from": str(source) if source is not None else None,
        "pytest_exit_code": run.exit_code,
        "manifest": {"digest": digest, "changes": change_entries},
        "katas": kata_entries,
    }
    if not run.records and present:
        for e in kata_entries:
            if e["status"] == "not run":
                e["message"] = (
                    f"the test run ended without results (pytest exit code {run.exit_code}); "
                    f"see pytest-output.txt"
                )
    write_reports(report, out, gradescope)
    return report


def _rules_of(root: Path) -> dict[str, catalog.Rule]:
    with (root / "katas" / "rules.toml").open("rb") as f:
        data = tomllib.load(f)
    return {rid: catalog.Rule(id=rid, **entry) for rid, entry in data.get("rules", {}).items()}


def _declared_rules(root: Path, kata: str) -> tuple[str, ...]:
    """The rule ids a kata's kata.toml lists (the rules its own specs carry)."""
    return catalog._declaration(Path(root) / "katas" / kata / "kata.toml").rules


# --- reports -----------------------------------------------------------------------------------

STATUS_MARK = {"solved": "✅", "failing": "❌", "not run": "⚪", "missing": "⛔", "tampered": "⛔"}


def _points(x: float) -> str:
    return f"{x:g}"


def markdown(report: dict) -> str:
    lines = [
        f"## Kata grade: {_points(report['score'])} / {_points(report['max_score'])} points "
        f"({report['percent']:g}%)",
        "",
        f"Scoring: {report['scoring']}. Manifest {report['manifest']['digest']}."
        + (f" Learner files from `{report['graded_from']}`." if report["graded_from"] else ""),
        "",
        "| Kata | Points | Status | Specs passed | Rules not met yet |",
        "| --- | ---: | --- | ---: | --- |",
    ]
    for k in report["katas"]:
        unmet = ", ".join(r["rule"] for r in k["rules"] if r["status"] != "passed") or "-"
        lines.append(
            f"| {k['number']} {k['title']} | {_points(k['score'])} / {_points(k['max_score'])} | "
            f"{STATUS_MARK.get(k['status'], '')} {k['status']} | {k['passed']} / {k['total']} | {unmet} |"
        )
    changes = report["manifest"]["changes"]
    if changes:
        lines += ["", "### Changed files", ""]
        counted = [c for c in changes if c["counted"]]
        if counted:
            lines.append(
                "These files differ from the pristine course; the katas they affect score 0:"
            )
            lines += [
                f"- {c['change']}: `{c['path']}` ({', '.join(c['katas']) or 'CI templates only'})"
                for c in counted
            ]
        ignored = [c for c in changes if not c["counted"]]
        if ignored:
            lines.append(
                "Changed in the learner's checkout, ignored (graded with the pristine specs):"
            )
            lines += [f"- {c['change']}: `{c['path']}`" for c in ignored]
    failures = [
        (k, t) for k in report["katas"] for t in k["tests"][:] if t["status"] in ("failed", "error")
    ]
    firsts = {}
    for k, t in failures:
        firsts.setdefault(k["kata"], (k, t))
    notes = [k for k in report["katas"] if k["message"]]
    if firsts or notes:
        lines += ["", "### First failure per kata", ""]
        for k in notes:
            lines.append(f"- **{k['number']} {k['title']}**: {k['message']}")
        for k, t in firsts.values():
            message = t["message"].split("\n  spec:")[0].strip().replace("\n", " ")
            lines.append(
                f"- **{k['number']} {k['title']}** `{t['name']}` ({', '.join(t['rules'])}): {message}"
            )
    return "\n".join(lines) + "\n"


def gradescope(report: dict) -> dict:
    """Gradescope's results.json: one test per kata, with the failing rules as its output."""
    tests = []
    for k in report["katas"]:
        failing = [f"{r['rule']} {r['title']}" for r in k["rules"] if r["status"] != "passed"]
        output = k["message"] or (
            "not met yet: " + "; ".join(failing) if failing else "all rules met"
        )
        tests.append(
            {
                "name": f"{k['number']} {k['title']}",
                "score": k["score"],
                "max_score": k["max_score"],
                "status": "passed" if k["score"] == k["max_score"] else "failed",
                "output": output,
            }
        )
    changes = [c for c in report["manifest"]["changes"] if c["counted"]]
    output = "Changed course files: " + ", ".join(c["path"] for c in changes) if changes else ""
    return {
        "score": report["score"],
        "max_score": report["max_score"],
        "output": output,
        "tests": tests,
    }


def write_reports(report: dict, out: Path, gradescope_path: Path | None = None) -> None:
    (out / "report.json").write_text(
        json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    summary = markdown(report)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as f:
                f.write(summary + "\n")
        except OSError:
            pass  # a summary that cannot be written must not lose the grade
    if gradescope_path is not None:
        gradescope_path.parent.mkdir(parents=True, exist_ok=True)
        gradescope_path.write_text(
            json.dumps(gradescope(report), indent=2) + "\n", encoding="utf-8"
        )


# --- GitHub Classroom --------------------------------------------------------------------------


def classroom_config(root: Path) -> dict:
    """GitHub Classroom's autograding.json: one test per kata, `kata grade NN`, with its points."""
    config = load_config(root)
    tests = []
    for kata_dir in sorted((Path(root) / "katas").iterdir()):
        if kata_dir.is_dir() and catalog.KATA_DIR.match(kata_dir.name):
            name = kata_dir.name
            tests.append(
                {
                    "name": f"{name[:2]} {name[3:].replace('_', ' ')}",
                    "setup": "python -m pip install -q -e .",
                    "run": f"kata grade {name[:2]} --out grade-report/{name}",
                    "input": "",
                    "output": "",
                    "comparison": "included",
                    "timeout": 10,
                    "points": config.points_of(name),
                }
            )
    for t in tests:
        if t["points"] == int(t["points"]):
            t["points"] = int(t["points"])
    return {"tests": tests}


def write_classroom_config(root: Path) -> Path:
    path = Path(root) / CLASSROOM_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(classroom_config(root), indent=2) + "\n", encoding="utf-8")
    return path
