"""Reports that cannot break: hostile learner text gives bounded, valid, escaped files.

One real grading run with a learner file that prints 10 MB, raises a 10 MB message full of HTML
and Markdown with a lone surrogate; the rest on synthetic reports (fast).
"""

from __future__ import annotations

import json
import os
import re
import xml.etree.ElementTree as ET

import pytest

from grading_course import instructor_course, learner_checkout, learner_file
from kata_tools import catalog, grading
from kata_tools.grading import reports

pytestmark = pytest.mark.timeout(300)

HOSTILE = """
import sys
sys.stdout.write("x" * 10_000_000 + "\\n")
sys.stdout.flush()

async def query_database(request_id, latency=0.1):
    raise RuntimeError("\\udcff <script>alert(1)</script> | **bold** [a](http://x) " + "y" * 10_000_000)

async def serve_one_at_a_time(handler, request_ids):
    raise ValueError("<img src=x onerror=alert(1)>\\x00\\x1b[31m")

serve_concurrently = serve_one_at_a_time
"""


def test_hostile_learner_text_gives_bounded_valid_reports(tmp_path, monkeypatch):
    course = instructor_course(tmp_path / "course")
    learner = learner_checkout(course, tmp_path / "learner")
    learner_file(learner).write_text(HOSTILE)
    (learner / "katas/01_event_loop" / os.fsdecode(b"bad\xff<b>.py")).write_text("")  # not UTF-8
    step_summary = tmp_path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(step_summary))
    out = tmp_path / "out"
    report = grading.grade(course, out, source=learner, gradescope=out / "results.json", allow_solutions=True)
    assert report["score"] == 0 and report["katas"][0]["status"] == "failing"

    sizes = {p.name: p.stat().st_size for p in out.iterdir()}
    assert sizes["pytest-output.txt"] < 1_000_000, sizes
    assert sizes["report.json"] < 200_000 and sizes["junit.xml"] < 200_000, sizes
    assert sizes["summary.md"] < 50_000 and step_summary.stat().st_size < reports.STEP_SUMMARY_CAP
    raw = (out / "report.json").read_bytes()
    raw.decode("utf-8")  # valid UTF-8, no lone surrogate anywhere
    assert b"\\udcff" not in raw and b"\\u0000" not in raw
    loaded = json.loads(raw)
    messages = [t["message"] for t in loaded["katas"][0]["tests"]]
    assert any("<script>" in m for m in messages)  # kept as text in JSON, only capped
    assert all(len(m) <= reports.MESSAGE_CAP + 50 for m in messages)

    summary = (out / "summary.md").read_text()
    assert "<script>" not in summary and "<img" not in summary and "\x1b" not in summary
    assert "&lt;img" in summary
    script = reports.md("<script>alert(1)</script> | **bold** [a](http://x)")
    assert (
        "<" not in script
        and "&lt;script&gt;" in script
        and "\\*\\*bold\\*\\*" in script
        and "\\[a\\]" in script
    )
    ET.parse(out / "junit.xml")  # well-formed despite NULs, escapes and surrogates
    assert [c["path"] for c in loaded["manifest"]["changes"]] == ["katas/01_event_loop/bad\ufffd<b>.py"]
    assert "bad\ufffd&lt;b&gt;\\.py" in summary
    gradescope = json.loads((out / "results.json").read_text())
    assert gradescope["score"] == 0 and gradescope["tests"][0]["status"] == "failed"


def synthetic(kata="09_capstone", passed=("CP3",), students_message="boom") -> dict:
    decl = catalog._declaration((catalog.ROOT / "katas" / kata / "kata.toml").resolve())
    tests = [
        {
            "nodeid": f"katas/{kata}/test_x.py::test_{rule.lower()}",
            "name": f"test_{rule.lower()}",
            "rules": [rule],
            "status": "passed" if rule in passed else "failed",
            "message": "" if rule in passed else students_message,
            "duration": 0.1,
        }
        for rule in decl.rules
    ]
    rules = grading.rule_entries([catalog.rules()[r] for r in decl.rules], tests)
    solved = len(passed) == len(decl.rules)
    kata_entry = {
        "kata": kata,
        "number": kata[:2],
        "title": "t",
        "status": "solved" if solved else "failing",
        "score": 10.0 if solved else 0.0,
        "max_score": 10.0,
        "passed": len(passed),
        "total": len(tests),
        "seconds": 1.0,
        "exit_code": 0 if solved else 1,
        "message": "",
        "rules": rules,
        "tests": tests,
    }
    return {
        "schema": grading.SCHEMA,
        "created": "2026-01-01T00:00:00+00:00",
        "score": kata_entry["score"],
        "max_score": 10.0,
        "percent": 100.0 if solved else 0.0,
        "scoring": "all-or-nothing",
        "graded_from": None,
        "manifest": {"digest": "0" * 16, "changes": [], "changes_left_out": 0},
        "review": [],
        "katas": [kata_entry],
    }


def test_the_capstone_counts_its_own_declared_rules():
    decl = catalog._declaration((catalog.ROOT / "katas/09_capstone/kata.toml").resolve())
    # The capstone's specs carry rules other katas teach: they count for the capstone.
    assert {"CP3", "CP7", "EL3", "TP2"} <= set(decl.rules)
    report = synthetic("09_capstone", passed=("CP3",))
    assert {r["rule"]: r["status"] for r in report["katas"][0]["rules"]} == {
        rule: "passed" if rule == "CP3" else "failing" for rule in decl.rules
    }
    test = reports.gradescope(report)["tests"][0]
    assert test["status"] == "failed" and "rules met" not in test["output"]
    assert "not met yet:" in test["output"]
    assert all(rule in test["output"] for rule in decl.rules if rule != "CP3")
    solved = reports.gradescope(synthetic("09_capstone", passed=decl.rules))["tests"][0]
    assert solved["status"] == "passed"
    assert solved["output"].startswith(f"solved: all {len(decl.rules)} rules met")


def test_gradescope_results_follow_the_documented_format():
    data = reports.gradescope(synthetic())
    assert set(data) <= {
        "score",
        "execution_time",
        "output",
        "output_format",
        "visibility",
        "stdout_visibility",
        "extra_data",
        "tests",
        "leaderboard",
    }
    for test in data["tests"]:
        assert set(test) <= {
            "score",
            "max_score",
            "status",
            "name",
            "name_format",
            "number",
            "output",
            "output_format",
            "tags",
            "visibility",
            "extra_data",
        }
        assert test["status"] in ("passed", "failed") and test["visibility"] in (
            "visible",
            "hidden",
            "after_due_date",
            "after_published",
        )
        assert isinstance(test["score"], float) and isinstance(test["max_score"], float)


def test_a_summary_of_many_changes_stays_under_githubs_limit():
    report = synthetic()
    report["manifest"]["changes"] = [
        {
            "path": f"katas/09_capstone/{'<b>' * 50}{n}.py",
            "change": "added",
            "katas": ["09_capstone"],
            "counted": True,
        }
        for n in range(grading.CHANGES_CAP)
    ]
    report["manifest"]["changes_left_out"] = 10**6
    report["review"] = [
        {"file": "katas/x.py", "line": n, "what": "atexit", "why": "", "text": "x" * 10_000}
        for n in range(5000)
    ]
    report["katas"][0]["tests"] *= 2000
    text = reports.markdown(report)
    assert len(text.encode()) < reports.STEP_SUMMARY_CAP and "<b>" not in text
    assert "1000" in text  # "... and N more" says how many are left out


def test_clean_and_md_handle_anything():
    assert reports.clean("\ud800a\x00b") == "\ufffda\ufffdb"
    assert reports.clean(None) == "" and reports.clean(12) == "12"
    assert len(reports.clean("z" * 10**7)) < reports.MESSAGE_CAP + 50
    assert reports.md("| a <b> `c` #d\n- e") == "\\| a &lt;b&gt; \\`c\\` \\#d \\- e"


def test_report_json_is_written_atomically(tmp_path, monkeypatch):
    target = tmp_path / "report.json"
    reports.atomic_write(target, "old\n")

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(reports.os, "replace", broken_replace)
    with pytest.raises(OSError):
        reports.atomic_write(target, "new\n")
    assert target.read_text() == "old\n" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_the_grading_catalog_has_both_languages_and_every_key_it_is_asked_for():
    from kata_tools import i18n

    messages = i18n.tool("grading")
    assert messages.problems() == []
    used = set()
    for path in [
        *(catalog.ROOT / "kata_tools/grading").glob("*.py"),
        catalog.ROOT / "kata_tools/release.py",
        catalog.ROOT / "kata_tools/class_report.py",
        catalog.ROOT / "kata_tools/pytest_plugin.py",
    ]:
        text = path.read_text()
        used |= set(
            re.findall(r'''(?:(?<![\w.])(?:_msg|T|t)|tool\("grading"\))\(\s*"([a-z][a-z-]+)"''', text)
        )
        used |= set(re.findall(r'''T\.text\("([a-z-]+)"''', text))

    used |= set(
        re.findall(
            r'verdict\(\w+, "[^"]+", "([a-z-]+)"\)',
            (catalog.ROOT / "kata_tools/grading/verdict.py").read_text(),
        )
    )
    assert used and used <= set(messages.entries), sorted(used - set(messages.entries))
    assert {"timed-out", "results-disagree", "ended-early", "no-session-end", "release-no-solutions"} <= used


def test_grading_manifest_and_release_import_no_circle():
    import ast

    modules = {}
    base = catalog.ROOT / "kata_tools"
    for path in [*base.glob("*.py"), *base.glob("grading/*.py")]:
        name = "kata_tools." + ".".join(path.relative_to(base).with_suffix("").parts)
        name = name.removesuffix(".__init__")
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("kata_tools"):
                deps.add(node.module)
                deps |= {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name.startswith("kata_tools")}
        modules[name] = deps
    graph = {m: {d for d in deps if d in modules and d != m} for m, deps in modules.items()}
    mine = [
        m
        for m in graph
        if m.startswith(
            ("kata_tools.grading", "kata_tools.manifest", "kata_tools.release", "kata_tools.class_report")
        )
    ]

    def reaches(start, goal, seen=()):
        return any(d == goal or (d not in seen and reaches(d, goal, (*seen, d))) for d in graph[start])

    circles = [m for m in mine if reaches(m, m)]
    assert circles == [], circles
    assert "kata_tools.grading" not in graph["kata_tools.manifest"]
    sizes = {
        m: len((base / (m.removeprefix("kata_tools.").replace(".", "/") + ".py")).read_text().splitlines())
        for m in mine
        if m != "kata_tools.grading"
    }
    assert max(sizes.values()) <= 400, sizes
