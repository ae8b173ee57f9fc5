"""The grade's files: report.json, summary.md, junit.xml, Gradescope's results.json.

Every text a learner can influence (failure messages, output, file names) goes through `clean`:
lone surrogates and control characters replaced, capped in length. Markdown gets `md` on top
(escaped, one line), XML only characters XML allows. Each file is written atomically (a temporary
file in the same folder, then a rename): a crash leaves the old file or the new one, never half.
The step summary stays under GitHub's 1 MiB limit.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from kata_tools import i18n

MESSAGE_CAP = 2000  # characters of one failure message kept in report.json
SUMMARY_MESSAGE_CAP = 300  # ... and in the Markdown summary
STEP_SUMMARY_CAP = 1_000_000  # bytes; GitHub rejects a step summary over 1 MiB
LIST_CAP = 50  # changed files / review lines shown in the summary

_BAD_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff\ufffe\uffff]")
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~>])")


def clean(text, cap: int = MESSAGE_CAP) -> str:
    """Any value as safe text: no lone surrogates or control characters, at most `cap` characters."""
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    if len(text) > cap:
        text = text[:cap] + f" [... {len(text) - cap} more characters]"
    return _BAD_CHARS.sub("\ufffd", text)


def md(text, cap: int = SUMMARY_MESSAGE_CAP) -> str:
    """Learner text as one line of inert Markdown (no HTML, links, tables or emphasis)."""
    text = " ".join(clean(text, cap).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _MD_SPECIAL.sub(r"\\\1", text)


def atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="replace", newline="\n") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def to_json(data) -> str:
    # ensure_ascii: whatever slipped past `clean` is written as an escape, never as a bad byte
    return json.dumps(data, indent=2, ensure_ascii=True) + "\n"


# --- Markdown ----------------------------------------------------------------------------------

STATUS_MARK = {
    "solved": "✅",
    "failing": "❌",
    "not run": "⚪",
    "missing": "⛔",
    "tampered": "⛔",
    "timed out": "⏱️",
}


def _g(x: float) -> str:
    return f"{x:g}"


def _texts(lang: str | None):
    """t(key, **fields) in `lang`, and word(kind, value): a status or change word ("failing")."""
    catalog = i18n.tool("grading")

    def t(key, **fields):
        return catalog.text(key, lang).format(**fields)

    def word(kind: str, value: str) -> str:
        key = f"{kind}-{value.replace(' ', '-')}"
        return t(key) if key in catalog else value

    return t, word


def markdown(report: dict, lang: str | None = None) -> str:
    t, word = _texts(lang)

    lines = [
        t(
            "summary-title",
            score=_g(report["score"]),
            max_score=_g(report["max_score"]),
            percent=f"{report['percent']:g}",
        ),
        "",
        t("summary-scoring", scoring=report["scoring"], digest=md(report["manifest"]["digest"], 64)),
    ]
    if report["graded_from"]:
        lines.append(t("summary-from", source=md(report["graded_from"], 200)))
    if report.get("solutions_reachable"):
        folders = ", ".join(md(s, 200) for s in report["solutions_reachable"][:3])
        lines += ["", "**" + t("solutions-warning", folders=folders) + "**"]
    lines += ["", t("summary-header"), "| --- | ---: | --- | ---: | --- |"]
    for k in report["katas"]:
        unmet = ", ".join(r["rule"] for r in k["rules"] if r["status"] != "passed") or "-"
        lines.append(
            f"| {k['number']} {md(k['title'], 80)} | {_g(k['score'])} / {_g(k['max_score'])} | "
            f"{STATUS_MARK.get(k['status'], '')} {word('status', k['status'])} | {k['passed']} / {k['total']} | {unmet} |"
        )
    changes = report["manifest"]["changes"]
    if changes:
        lines += ["", t("summary-changes-title"), ""]
        counted = [c for c in changes if c["counted"]]
        ignored = [c for c in changes if not c["counted"]]
        if counted:
            lines.append(t("summary-changes-counted"))
            lines += [
                f"- {word('change', c['change'])}: {md(c['path'], 200)} ({', '.join(c['katas']) or '-'})"
                for c in counted[:LIST_CAP]
            ]
        if ignored:
            lines.append(t("summary-changes-ignored"))
            lines += [f"- {word('change', c['change'])}: {md(c['path'], 200)}" for c in ignored[:LIST_CAP]]
        more = max(0, len(counted) - LIST_CAP) + max(0, len(ignored) - LIST_CAP)
        more += report["manifest"].get("changes_left_out", 0)
        if more:
            lines.append(t("summary-more", count=more))
    notes = [k for k in report["katas"] if k["message"]]
    firsts: dict[str, tuple[dict, dict]] = {}  # kata -> (its entry, its first failed test)
    for k in report["katas"]:
        for test in k["tests"]:
            if test["status"] in ("failed", "error") and test["message"]:
                firsts.setdefault(k["kata"], (k, test))
    if notes or firsts:
        lines += ["", t("summary-failures-title"), ""]
        for k in notes:
            lines.append(f"- **{k['number']} {md(k['title'], 80)}**: {md(k['message'])}")
        for k, test in firsts.values():
            message = test["message"].split("\n  spec:")[0]
            lines.append(
                f"- **{k['number']}** {md(test['name'], 120)} ({', '.join(test['rules'])}): {md(message)}"
            )
    review = report.get("review", [])
    if review:
        lines += ["", t("summary-review-title"), ""]
        lines += [
            f"- {md(r['file'], 200)}:{r['line']} ({r['what']}): {md(r['text'], 120)}"
            for r in review[:LIST_CAP]
        ]
        if len(review) > LIST_CAP:
            lines.append(t("summary-more", count=len(review) - LIST_CAP))
    text = "\n".join(lines) + "\n"
    if len(text.encode("utf-8")) > STEP_SUMMARY_CAP:
        cut = text.encode("utf-8")[: STEP_SUMMARY_CAP - 200].decode("utf-8", "ignore")
        text = cut.rsplit("\n", 1)[0] + "\n\n" + t("summary-cut") + "\n"
    return text


# --- Gradescope --------------------------------------------------------------------------------


def gradescope(report: dict, lang: str | None = None) -> dict:
    """Gradescope's results.json: one test per kata, with the rules not met yet as its output."""
    t, word = _texts(lang)
    tests = []
    for k in report["katas"]:
        failing = [f"{r['rule']} {clean(r['title'], 200)}" for r in k["rules"] if r["status"] != "passed"]
        if k["status"] == "solved":
            rules = ", ".join(r["rule"] for r in k["rules"])
            output = t("gradescope-solved", count=len(k["rules"]), rules=rules)
        else:
            status = word("status", k["status"])
            parts = [t("gradescope-progress", status=status, passed=k["passed"], total=k["total"])]
            if k["message"]:
                parts.append(clean(k["message"], 500))
            if failing:
                parts.append(t("gradescope-not-met", rules="; ".join(failing)))
            output = "\n".join(parts)
        tests.append(
            {
                "name": f"{k['number']} {clean(k['title'], 200)}",
                "number": k["number"],
                "score": k["score"],
                "max_score": k["max_score"],
                "status": "passed" if k["status"] == "solved" else "failed",
                "output": output,
                "tags": [r["rule"] for r in k["rules"]],
                "visibility": "visible",
            }
        )
    counted = [c for c in report["manifest"]["changes"] if c["counted"]]
    output = ""
    if counted:
        output = t("gradescope-changed", paths=", ".join(clean(c["path"], 200) for c in counted[:LIST_CAP]))
    return {
        "score": report["score"],
        "output": output,
        "visibility": "visible",
        "stdout_visibility": "hidden",
        "tests": tests,
    }


# --- JUnit -------------------------------------------------------------------------------------


def junit(report: dict) -> str:
    """One <testsuite> per kata, one <testcase> per spec, from the cross-checked results."""
    suites = ET.Element("testsuites", name="katas")
    for k in report["katas"]:
        tests = k["tests"]
        suite = ET.SubElement(
            suites,
            "testsuite",
            name=k["kata"],
            tests=str(len(tests)),
            failures=str(sum(t["status"] == "failed" for t in tests)),
            errors=str(sum(t["status"] in ("error", "not run") for t in tests)),
            skipped=str(sum(t["status"] == "skipped" for t in tests)),
        )
        if k["message"]:
            ET.SubElement(suite, "properties").append(
                ET.Element("property", name="kata-status", value=clean(f"{k['status']}: {k['message']}", 500))
            )
        for test in tests:
            path, _, name = test["nodeid"].partition("::")
            case = ET.SubElement(
                suite,
                "testcase",
                classname=path.removesuffix(".py").replace("/", "."),
                name=clean(name, 300),
                time=f"{float(test['duration']):.3f}",
            )
            message = clean(test["message"], MESSAGE_CAP)
            if test["status"] == "failed":
                ET.SubElement(case, "failure", message=message.split("\n")[0][:300]).text = message
            elif test["status"] in ("error", "not run"):
                ET.SubElement(case, "error", message=test["status"]).text = message
            elif test["status"] == "skipped":
                ET.SubElement(case, "skipped")
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write_all(report: dict, out: Path, outputs: dict[str, str], gradescope_path: Path | None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "report.json", to_json(report))
    summary = markdown(report)
    atomic_write(out / "summary.md", summary)
    atomic_write(out / "junit.xml", junit(report))
    atomic_write(
        out / "pytest-output.txt",
        "".join(f"===== {kata} =====\n{clean(text, 400_000)}\n" for kata, text in outputs.items()),
    )
    step_summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if step_summary:
        try:
            with open(step_summary, "a", encoding="utf-8") as f:
                f.write(summary + "\n")
        except OSError:
            pass  # a summary that cannot be written must not lose the grade
    if gradescope_path is not None:
        atomic_write(Path(gradescope_path), to_json(gradescope(report)))
