"""What one kata's run earned: the pipe, pytest's JUnit file and the exit code must agree.

A spec counts as passed only when the probe's live report (kata_tools/grading/probe.py) AND
pytest's JUnit file both say it passed. A kata is solved only when every spec collected from the
pristine spec files ran and passed, pytest reported the end of the session, and both the session's
exit status and the process exit code are 0. Any disagreement between the two records is reported
as tampering: learner code in the process rewrote one of them; so is a "tampered" message of the
probe (pytest's machinery replaced, or a report that contradicts its call).
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from kata_tools.grading.sandbox import KataRun

JUNIT_CAP = 50_000_000  # bytes; a larger JUnit file is not parsed


def junit_key(nodeid: str) -> tuple[str, str]:
    """(classname, name) pytest's JUnit writer gives the test `nodeid`."""
    parts = nodeid.split("::")
    module = parts[0][:-3] if parts[0].endswith(".py") else parts[0]
    classname = ".".join([module.replace("/", "."), *parts[1:-1]])
    return classname, parts[-1]


def read_junit(path: Path | None) -> dict[tuple[str, str], str] | None:
    """{(classname, name): passed|failed|error|skipped}, or None when absent or unreadable."""
    if path is None or not path.is_file() or path.stat().st_size > JUNIT_CAP:
        return None
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError):
        return None
    rank = {"passed": 0, "skipped": 1, "failed": 2, "error": 3}
    out: dict[tuple[str, str], str] = {}
    for case in root.iter("testcase"):
        tags = {child.tag for child in case}
        status = (
            "error"
            if "error" in tags
            else "failed"
            if "failure" in tags
            else "skipped"
            if "skipped" in tags
            else "passed"
        )
        key = (case.get("classname", ""), case.get("name", ""))
        if key not in out or rank[status] > rank[out[key]]:
            out[key] = status
    return out


def live_status(reports: list[dict]) -> tuple[str, float]:
    """(status, duration) of one spec from its setup/call/teardown reports."""
    status, duration = "not run", 0.0
    for r in reports:
        when, outcome = r.get("when"), r.get("outcome")
        duration += float(r.get("duration") or 0.0) if isinstance(r.get("duration"), (int, float)) else 0.0
        if outcome == "failed":
            failed = "failed" if when == "call" else "error"
            if status not in ("failed", "error"):
                status = failed
        elif outcome == "skipped" and status == "not run":
            status = "skipped"
        elif outcome == "passed" and when == "call" and status == "not run":
            status = "passed"
    if status == "passed" and not any(r.get("when") == "teardown" for r in reports):
        status = "not run"  # the run stopped inside the spec: it never finished
    return status, round(duration, 3)


@dataclass
class Verdict:
    solved: bool
    status: str  # solved, failing, not run, tampered, timed out
    message: str
    specs: list[dict] = field(default_factory=list)  # nodeid, rules, status, message, duration
    passed: int = 0
    fields: dict = field(default_factory=dict)  # the numbers the message (grading.toml) names


def judge(run: KataRun, kata: str) -> Verdict:
    collected = next((m for m in run.messages if m.get("type") == "collected"), None)
    finish = [m for m in run.messages if m.get("type") == "finish"]
    garbage = any(m.get("type") == "garbage" for m in run.messages)
    reports: dict[str, list[dict]] = {}
    texts: dict[str, str] = {}
    for m in run.messages:
        if m.get("type") == "report" and isinstance(m.get("nodeid"), str):
            reports.setdefault(m["nodeid"], []).append(m)
        elif m.get("type") == "message" and isinstance(m.get("nodeid"), str):
            texts.setdefault(m["nodeid"], str(m.get("message") or ""))
    junit = read_junit(run.junit)
    prefix = f"katas/{kata}/"

    specs = []
    disagree = []
    for entry in (collected or {}).get("specs", []):
        nodeid = entry.get("nodeid") if isinstance(entry, dict) else None
        if not isinstance(nodeid, str) or not nodeid.startswith(prefix):
            continue
        live, duration = live_status(reports.get(nodeid, []))
        message = texts.get(nodeid, "") if live != "passed" else ""
        recorded = junit.get(junit_key(nodeid), "not run") if junit is not None else None
        status = live
        if recorded is not None and recorded != live:
            disagree.append(nodeid)
            status = "error" if "passed" in (live, recorded) else live
        rules = [r for r in entry.get("rules", []) if isinstance(r, str)]
        specs.append(
            {"nodeid": nodeid, "rules": rules, "status": status, "message": message, "duration": duration}
        )
    passed = sum(s["status"] == "passed" for s in specs)
    ran = sum(s["status"] != "not run" for s in specs)
    collect_errors = [m for m in run.messages if m.get("type") == "collect-error"]
    patched = [str(m.get("what") or "?") for m in run.messages if m.get("type") == "tampered"]

    exitstatus = finish[0].get("exitstatus") if finish else None
    fields = {
        "ran": ran,
        "total": len(specs),
        "disagree": len(disagree),
        "first": disagree[0] if disagree else "",
        "exitstatus": exitstatus,
        "returncode": run.returncode,
        "seconds": run.seconds,
        "where": (collect_errors[0].get("nodeid") or kata) if collect_errors else kata,
        "patched": "; ".join(patched[:3]) + (f" (+{len(patched) - 3})" if len(patched) > 3 else ""),
    }

    def verdict(solved, status, code):
        return Verdict(solved, status, code, specs, passed if status != "tampered" else 0, fields)

    if run.timed_out:
        return verdict(False, "timed out", "timed-out")
    if collected is None or not specs:
        return verdict(False, "not run", "collect-error" if collect_errors else "nothing-collected")
    if garbage or len(finish) > 1 or len([m for m in run.messages if m.get("type") == "collected"]) > 1:
        return verdict(False, "tampered", "result-pipe-garbled")
    if patched:
        return verdict(False, "tampered", "pytest-patched")
    if disagree:
        return verdict(False, "tampered", "results-disagree")
    if not finish or junit is None:
        return verdict(False, "failing", "no-session-end")
    if ran < len(specs):
        return verdict(False, "failing", "ended-early")
    if passed == len(specs):
        if exitstatus == 0 and run.returncode == 0:
            return verdict(True, "solved", "")
        return verdict(False, "failing", "exit-code-disagrees")
    return verdict(False, "failing", "")
