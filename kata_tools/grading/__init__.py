"""`kata grade`: each kata in its own bounded pytest process, cross-checked, scored, reported.

Two modes (docs/grading.md says what each can and cannot catch):

- `kata grade --from CHECKOUT` (the documented default for marks that count, run by the
  instructor from a copy of the course without solutions/ (the student release) and a Python
  that does not point at the full course: Gradescope, the instructor's grading copy). Only the
  learner files each kata.toml declares are copied from CHECKOUT, never through a symlink, into
  a fresh copy of this course; nothing else of the checkout is read. Its other changes are listed
  ("counted": false) and change no score. It refuses to grade when the graded code could read a
  solutions/ folder (isolation.py) unless told `allow_solutions`.
- `kata grade` in a learner's own checkout (their CI): the same isolated runs, and every change
  from the pristine tree (kata_tools/manifest.py, an allow list) scores the katas it affects 0.

Each kata runs in its own pytest process (kata_tools/grading/sandbox.py) with grading.toml's
`time_limit`: one that hangs scores 0 "timed out" and the others are graded. A kata is solved only
when every spec collected from the pristine spec files ran and passed in both pytest's live
reports and its JUnit file, and the exit code is 0 (kata_tools/grading/verdict.py). Points:
grading.toml (`all-or-nothing` by default, or `proportional`).

Files written to the output folder (default `grade-report/`):

    report.json        the report below (schema "kata-grade/2")
    summary.md         the same as Markdown; appended to $GITHUB_STEP_SUMMARY when set (< 1 MiB)
    junit.xml          one <testsuite> per kata, from the cross-checked results
    pytest-output.txt  each kata's console output, capped
    (--gradescope F)   Gradescope's results.json

report.json, schema "kata-grade/2" (every key always present; learner text capped and cleaned):

    {
      "schema": "kata-grade/2",
      "created": "2025-01-31T12:00:00+00:00",
      "score": 10.0, "max_score": 90.0, "percent": 11.1,
      "scoring": "all-or-nothing",
      "graded_from": null,                        # or the checkout given to --from
      "solutions_reachable": [],                  # solutions/ folders the graded code could read
                                                  # (kata_tools/grading/isolation.py); --from
                                                  # refuses unless allow_solutions
      "manifest": {"digest": "3f1c...", "changes": [
          {"path": "katas/01_event_loop/httpx.pyc", "change": "added",   # modified, deleted, added
           "katas": ["01_event_loop"], "counted": true}], "changes_left_out": 0},
      "review": [{"file": "katas/01_event_loop/event_loop.py", "line": 3, "what": "atexit",
                  "why": "an exit handler", "text": "import atexit"}],
      "katas": [{
          "kata": "01_event_loop", "number": "01", "title": "The event loop",
          "status": "solved",           # solved, failing, not run, missing, tampered, timed out
          "score": 10.0, "max_score": 10.0, "passed": 9, "total": 9,
          "seconds": 2.1, "exit_code": 0,  # the kata's process; null when killed at its limit
          "message": "",                # why it scored 0 despite its specs, if so
          "rules": [{"rule": "EL1", "title": "...", "status": "passed", "passed": 2, "total": 2}],
          "tests": [{"nodeid": "katas/01_event_loop/test_event_loop.py::test_...", "name": "test_...",
                     "rules": ["EL1"], "status": "passed",   # passed, failed, error, skipped, not run
                     "message": "", "duration": 0.02}]}]
    }
"""

from __future__ import annotations

import datetime as _dt
import shutil
import tempfile
from pathlib import Path
from typing import Any

from kata_tools import catalog, i18n, manifest, results
from kata_tools.grading import isolation, reports, review, sandbox, verdict
from kata_tools.grading.config import (
    CONFIG_FILE,
    DEFAULT_POINTS,
    SCORING_MODES,
    Config,
    GradingError,
    load_config,
)

SCHEMA = "kata-grade/2"
CHANGES_CAP = 500  # changes listed in report.json at most

__all__ = [
    "CONFIG_FILE",
    "DEFAULT_POINTS",
    "SCHEMA",
    "SCORING_MODES",
    "Config",
    "GradingError",
    "grade",
    "load_config",
    "manifest",
]


def _msg(key: str, **fields) -> str:
    return i18n.tool("grading")(key, **fields)


def _rules(root: Path) -> dict[str, catalog.Rule]:
    if root == catalog.ROOT:
        return catalog.rules()
    try:
        with (root / "katas" / "rules.toml").open("rb") as f:
            data = catalog.tomllib.load(f)
    except (OSError, catalog.tomllib.TOMLDecodeError) as e:
        raise GradingError(f"katas/rules.toml cannot be read: {e}") from None
    return {rid: catalog.Rule(id=rid, **entry) for rid, entry in data.get("rules", {}).items()}


def _declaration(root: Path, kata: str) -> catalog.Declaration:
    return catalog._declaration((root / "katas" / kata / "kata.toml").resolve())


def rule_entries(rules: list[catalog.Rule], tests: list[dict]) -> list[dict]:
    """Each rule the kata declares, with the specs of THIS kata that carry it (results.rule_status)."""
    records = [{"outcome": t["status"], "rules": t["rules"]} for t in tests if t["status"] != "not run"]
    complete = all(t["status"] != "not run" for t in tests)
    out = []
    for rule in rules:
        mine = [t for t in tests if rule.id in t["rules"]]
        ok = sum(t["status"] == "passed" for t in mine)
        status = results.rule_status(records, rule.id, complete) if mine else results.NOT_RUN
        out.append(
            {"rule": rule.id, "title": rule.title_in(), "status": status, "passed": ok, "total": len(mine)}
        )
    return out


def _test_entries(specs: list[dict]) -> list[dict]:
    return [
        {
            "nodeid": reports.clean(s["nodeid"], 500),
            "name": reports.clean(s["nodeid"].split("::")[-1], 300),
            "rules": s["rules"],
            "status": s["status"],
            "message": reports.clean(s["message"]),
            "duration": s["duration"],
        }
        for s in specs
    ]


def grade(
    root: Path | None = None,
    out: Path | None = None,
    only: list[str] | None = None,
    source: Path | None = None,
    expect_manifest: str | None = None,
    gradescope: Path | None = None,
    allow_solutions: bool = False,
) -> dict:
    """Grade the learner files of `source` (default: `root` itself) with root's specs; write reports.

    With `source`, grading stops (GradingError) when the graded code could read a solutions/
    folder (isolation.py), unless `allow_solutions`; the report lists such folders either way."""
    root = Path(root or catalog.ROOT).resolve()
    out = Path(out or root / "grade-report").resolve()
    config = load_config(root)
    try:
        pristine = manifest.load(root)
    except manifest.ManifestError as e:
        raise GradingError(f"cannot check for tampering: {e}") from None
    all_katas = sorted(pristine.get("katas", {}))
    if not all_katas:
        raise GradingError(f"{manifest.MANIFEST_FILE} lists no katas; run `{manifest.WRITE_COMMAND}`")
    katas = all_katas
    if only:
        unknown = [k for k in only if k not in all_katas]
        if unknown:
            raise GradingError(f"no kata {unknown[0]!r} in the course; the katas are: {', '.join(all_katas)}")
        katas = [k for k in all_katas if k in only]
    digest = manifest.digest(pristine)
    checkout = Path(source).resolve() if source is not None else root

    counted = manifest.check(root, pristine)
    if expect_manifest and not digest.startswith(expect_manifest.strip().lower()):
        counted.append(manifest.Change(manifest.MANIFEST_FILE, "modified", tuple(all_katas)))
    shown = manifest.check(checkout, pristine) if source is not None else []
    changes: list[dict[str, Any]] = [
        {"path": reports.clean(c.path, 500), "change": c.kind, "katas": list(c.katas), "counted": True}
        for c in counted
    ] + [
        {"path": reports.clean(c.path, 500), "change": c.kind, "katas": list(c.katas), "counted": False}
        for c in shown
    ]

    rules = _rules(root)
    kata_entries, outputs, review_lines = [], {}, []
    with tempfile.TemporaryDirectory(prefix="kata-grade-") as tmp_name:
        tmp = Path(tmp_name)
        base = sandbox.make_tree(root, tmp / "course")
        reachable = isolation.solutions_reachable(root, base, sandbox.child_env(tmp / "check"))
        if reachable and source is not None and not allow_solutions:
            raise GradingError(_msg("solutions-reachable", folders=", ".join(reachable[:3])))
        for k in katas:
            entry, output, found = _grade_one(
                k,
                root,
                base,
                checkout,
                tmp / "runs" / k,
                config,
                rules,
                [c for c in changes if c["counted"] and k in c["katas"]],
            )
            kata_entries.append(entry)
            review_lines += found
            if output:
                outputs[k] = output
    score = round(sum(e["score"] for e in kata_entries), 2)
    max_score = round(sum(e["max_score"] for e in kata_entries), 2)
    report = {
        "schema": SCHEMA,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "score": score,
        "max_score": max_score,
        "percent": round(100 * score / max_score, 1) if max_score else 0.0,
        "scoring": config.scoring,
        "graded_from": reports.clean(str(source), 500) if source is not None else None,
        "solutions_reachable": [reports.clean(s, 500) for s in reachable[:20]],
        "manifest": {
            "digest": digest,
            "changes": changes[:CHANGES_CAP],
            "changes_left_out": max(0, len(changes) - CHANGES_CAP),
        },
        "review": review_lines,
        "katas": kata_entries,
    }
    reports.write_all(report, out, outputs, gradescope)
    return report


def _grade_one(kata, root, base, checkout, private, config, rules, changes):
    decl = _declaration(root, kata)
    points = config.points_of(kata)
    entry = {
        "kata": kata,
        "number": kata[:2],
        "title": reports.clean(i18n.pick(decl.title), 200),
        "status": "failing",
        "score": 0.0,
        "max_score": float(points),
        "passed": 0,
        "total": 0,
        "seconds": 0.0,
        "exit_code": None,
        "message": "",
        "rules": rule_entries([rules[r] for r in decl.rules if r in rules], []),
        "tests": [],
    }
    if not (checkout / "katas" / kata).is_dir() or not (root / "katas" / kata).is_dir():
        entry.update(status="missing", message=_msg("missing-kata", kata=kata))
        return entry, "", []
    tree = private / "tree"
    private.mkdir(parents=True)
    shutil.copytree(base, tree, symlinks=True)
    try:
        taken = sandbox.copy_learner_files(checkout, tree, kata, decl.files)
    except sandbox.UnsafeFile as e:
        entry.update(status="missing", message=_msg("missing-files", problems=reports.clean(str(e), 1000)))
        return entry, "", []
    found = []
    for rel, data in taken.items():
        found += review.scan(data.decode("utf-8", "replace"), f"katas/{kata}/{rel}")
    run = sandbox.run_kata(tree, kata, config.time_limit_of(kata), private)
    v = verdict.judge(run, kata)
    tests = _test_entries(v.specs)
    passed, total = v.passed, len(tests)
    if changes:
        status, score = "tampered", 0.0
        message = _msg(
            "tampered-files", changes="; ".join(f"{c['change']} {c['path']}" for c in changes[:20])
        )
    elif v.status == "solved":
        status, score, message = "solved", float(points), ""
    else:
        status = v.status
        fields = dict(v.fields, limit=config.time_limit_of(kata))
        message = _msg(v.message, **fields) if v.message else ""
        counted_ok = v.status == "failing" and not v.message
        score = (
            round(points * passed / total, 2)
            if config.scoring == "proportional" and total and counted_ok
            else 0.0
        )
    entry.update(
        status=status,
        score=float(score),
        passed=passed,
        total=total,
        seconds=run.seconds,
        exit_code=run.returncode,
        message=reports.clean(message),
        rules=rule_entries([rules[r] for r in decl.rules if r in rules], tests),
        tests=tests,
    )
    return entry, run.output, found
