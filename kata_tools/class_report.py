"""`kata class-report REPORTS... -o class.html`: a class's grade reports as one HTML page.

One self-contained file (inline CSS, no script, no server, nothing fetched): a student x kata
grid, the rules most students have not met yet with the most common failure message of each, and
per student the details their row links to. Readable on a phone: the grid scrolls sideways with the
names fixed, everything else is one column.

A student's name is the folder of their report.json (`reports/alice/report.json` -> alice), or the
file name without .json (`reports/alice.json` -> alice). Reports of schema kata-grade/1 and /2 are
read; a file that cannot be read is listed at the top, not fatal.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
from collections import Counter
from pathlib import Path

from kata_tools import i18n

MESSAGE_CAP = 300
STATUS_CLASS = {
    "solved": "ok",
    "failing": "bad",
    "tampered": "bad",
    "missing": "bad",
    "timed out": "bad",
    "not run": "none",
}
STATUS_MARK = {
    "solved": "✓",
    "failing": "✗",
    "tampered": "!",
    "missing": "–",
    "timed out": "◷",
    "not run": "·",
}

CSS = """
:root{--ok:#1a7f37;--okbg:#dafbe1;--bad:#b42318;--badbg:#fee4e2;--none:#667085;--nonebg:#f2f4f7;
--line:#d0d5dd;font-family:system-ui,-apple-system,"Segoe UI","Noto Sans KR",sans-serif}
body{margin:0;padding:12px;color:#101828;background:#fff;line-height:1.4}
h1{font-size:1.4rem;margin:.2rem 0}h2{font-size:1.1rem;margin:1.4rem 0 .5rem}
.meta{color:#475467;margin:.2rem 0 .8rem}
.scroll{overflow-x:auto;-webkit-overflow-scrolling:touch;border:1px solid var(--line);border-radius:8px}
table{border-collapse:collapse;font-size:.9rem}
th,td{padding:6px 8px;border-bottom:1px solid var(--line);text-align:center;white-space:nowrap}
th{background:#f9fafb;font-weight:600}
.grid th:first-child,.grid td:first-child{position:sticky;left:0;background:#fff;text-align:left;
z-index:1;border-right:1px solid var(--line)}
.grid thead th:first-child{background:#f9fafb}
td.ok{background:var(--okbg);color:var(--ok)}td.bad{background:var(--badbg);color:var(--bad)}
td.none{background:var(--nonebg);color:var(--none)}
a{color:#175cd3}
.rule{border:1px solid var(--line);border-radius:8px;padding:8px 10px;margin:6px 0}
.rule .n{color:#475467;font-size:.88rem;margin:2px 0}
.bar{display:inline-block;height:.6rem;background:var(--bad);border-radius:3px;vertical-align:middle}
.msg{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:.82rem;word-break:break-word}
section.student{border-top:1px solid var(--line);padding:.4rem 0}
section.student h3{font-size:1rem;margin:.6rem 0 .3rem}
ul{padding-left:1.2rem;margin:.3rem 0}li{margin:.2rem 0;word-break:break-word}
.warn{color:var(--bad)}
@media (max-width:600px){body{padding:8px}th,td{padding:5px 6px}.hide-s{display:none}}
"""


def _e(text, cap: int = MESSAGE_CAP) -> str:
    text = "" if text is None else str(text)
    if len(text) > cap:
        text = text[:cap] + " …"
    text = re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]", "\ufffd", text)
    return html.escape(text, quote=True)


def student_name(path: Path) -> str:
    return path.parent.name if path.name == "report.json" else path.stem


def load(paths: list[Path]) -> tuple[list[tuple[str, dict]], list[str]]:
    students, problems = [], []
    for path in paths:
        path = Path(path)
        try:
            report = json.loads(path.read_text(encoding="utf-8", errors="replace"))
            if not str(report.get("schema", "")).startswith("kata-grade/") or not isinstance(
                report.get("katas"), list
            ):
                raise ValueError("not a kata grade report")
        except (OSError, ValueError, AttributeError) as e:
            problems.append(f"{path}: {e}")
            continue
        students.append((student_name(path), report))
    students.sort(key=lambda s: s[0].lower())
    return students, problems


def _score(report: dict) -> str:
    try:
        return f"{float(report.get('score', 0)):g} / {float(report.get('max_score', 0)):g}"
    except (TypeError, ValueError):
        return "?"


def _first_line(message: str) -> str:
    return (message or "").split("\n  spec:")[0].strip().split("\n")[0]


def rule_mastery(students: list[tuple[str, dict]]) -> list[dict]:
    """Per rule: how many students have not met it yet (in any kata whose specs carry it), and
    the most common failure message among them (numbers folded: "12 ticks" ~ "9 ticks")."""
    rules: dict[str, dict] = {}
    for _, report in students:
        seen: dict[str, bool] = {}  # rule -> met in every kata of this student that carries it
        first_message: dict[str, str] = {}
        for k in sorted(report["katas"], key=lambda k: k["kata"]):
            for r in k.get("rules", []):
                rule = r["rule"]
                rules.setdefault(
                    rule,
                    {
                        "rule": rule,
                        "title": r.get("title", ""),
                        "kata": k["kata"],
                        "unmet": 0,
                        "students": 0,
                        "messages": Counter(),
                        "example": {},
                    },
                )
                met = r.get("status") == "passed"
                seen[rule] = seen.get(rule, True) and met
                if not met and rule not in first_message:
                    for t in k.get("tests", []):
                        if rule in t.get("rules", []) and t.get("status") in ("failed", "error"):
                            first_message[rule] = _first_line(t.get("message", ""))
                            break
        for rule, met in seen.items():
            entry = rules[rule]
            entry["students"] += 1
            if not met:
                entry["unmet"] += 1
                line = first_message.get(rule, "")
                if line:
                    shape = re.sub(r"\d+(\.\d+)?", "#", line)
                    entry["messages"][shape] += 1
                    entry["example"].setdefault(shape, line)
    out = []
    for entry in rules.values():
        common = entry["messages"].most_common(1)
        entry["message"] = entry["example"][common[0][0]] if common else ""
        entry["message_count"] = common[0][1] if common else 0
        out.append(entry)
    out.sort(key=lambda e: (-e["unmet"], e["kata"], e["rule"]))
    return out


def render(
    students: list[tuple[str, dict]], problems: list[str] | None = None, lang: str | None = None
) -> str:
    T = i18n.tool("grading")

    def t(key, **fields):
        return T.text(key, lang).format(**fields)

    katas: dict[str, str] = {}
    for _, report in students:
        for k in report["katas"]:
            katas.setdefault(k["kata"], k.get("title", k["kata"]))
    kata_names = sorted(katas)
    average = round(sum(r.get("percent", 0) for _, r in students) / len(students), 1) if students else 0
    out = [
        "<!doctype html>",
        f'<html lang="{lang or i18n.current()}"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_e(t('class-title'))}</title><style>{CSS}</style></head><body>",
        f"<h1>{_e(t('class-title'))}</h1>",
        f'<p class="meta">{_e(t("class-summary", students=len(students), katas=len(kata_names), average=average))}</p>',
    ]
    if problems:
        out.append('<ul class="warn">' + "".join(f"<li>{_e(p)}</li>" for p in problems) + "</ul>")
    out += [f"<h2>{_e(t('class-grid'))}</h2>", '<div class="scroll"><table class="grid"><thead><tr>']
    out.append(f"<th>{_e(t('class-student'))}</th><th>{_e(t('class-score'))}</th>")
    out += [f'<th title="{_e(katas[k])}">{_e(k[:2])}</th>' for k in kata_names]
    out.append("</tr></thead><tbody>")
    for n, (name, report) in enumerate(students):
        by_kata = {k["kata"]: k for k in report["katas"]}
        score = _score(report)
        out.append(f'<tr><td><a href="#s{n}">{_e(name, 80)}</a></td><td>{_e(score)}</td>')
        for kata in kata_names:
            k = by_kata.get(kata)
            if k is None:
                out.append('<td class="none">·</td>')
                continue
            status = k.get("status", "not run")
            out.append(
                f'<td class="{STATUS_CLASS.get(status, "none")}" title="{_e(kata)}: {_e(status)}">'
                f"{STATUS_MARK.get(status, '?')}</td>"
            )
        out.append("</tr>")
    out.append("</tbody></table></div>")

    mastery = rule_mastery(students)
    head = t("class-rule-header").split("|")
    out += [f"<h2>{_e(t('class-rules'))}</h2>", '<div class="rules">']
    for m in mastery:
        width = int(80 * m["unmet"] / max(1, m["students"]))
        out.append(
            f'<div class="rule"><div><b>{_e(m["rule"])}</b> {_e(m["title"], 120)} '
            f"<small>({_e(m['kata'])})</small></div>"
            f'<div class="n">{_e(head[1])}: {m["unmet"]} / {m["students"]} '
            f'<span class="bar" style="width:{width}px"></span></div>'
        )
        if m["message"]:
            out.append(
                f'<div class="msg" title="{_e(head[2])}">{_e(m["message"])} <small>(×{m["message_count"]})</small></div>'
            )
        out.append("</div>")
    out.append("</div>")

    out.append(f"<h2>{_e(t('class-details'))}</h2>")
    for n, (name, report) in enumerate(students):
        out.append(f'<section class="student" id="s{n}"><h3>{_e(name, 80)}: {_e(_score(report))}</h3><ul>')
        for k in report["katas"]:
            status = k.get("status", "")
            line = f"<li><b>{_e(k['kata'])}</b> {_e(status)} ({k.get('passed', 0)}/{k.get('total', 0)})"
            unmet = [r["rule"] for r in k.get("rules", []) if r.get("status") != "passed"]
            if unmet:
                line += f" · {_e(', '.join(unmet))}"
            if k.get("message"):
                line += f'<br><span class="msg">{_e(k["message"])}</span>'
            first = next((x for x in k.get("tests", []) if x.get("status") in ("failed", "error")), None)
            if first and not k.get("message"):
                line += f'<br><span class="msg">{_e(_first_line(first.get("message", "")))}</span>'
            out.append(line + "</li>")
        out.append("</ul>")
        changes = [c for c in report.get("manifest", {}).get("changes", []) if c.get("counted")]
        review = report.get("review", [])
        if changes or review:
            out.append('<ul class="warn">')
            out += [f"<li>{_e(c['change'])}: {_e(c['path'], 200)}</li>" for c in changes[:20]]
            out += [f"<li>{_e(r['file'], 200)}:{r['line']} {_e(r['what'])}</li>" for r in review[:20]]
            out.append("</ul>")
        out.append("</section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def write(paths: list[Path], dest: Path, lang: str | None = None) -> tuple[Path, int, int]:
    students, problems = load(paths)
    text = render(students, problems, lang)
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    from kata_tools.grading.reports import atomic_write

    atomic_write(dest, text)
    katas = {k["kata"] for _, r in students for k in r["katas"]}
    return dest, len(students), len(katas)


def main(argv: list[str] | None = None, prog: str = "kata class-report") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("reports", nargs="+", type=Path, help="report.json files of `kata grade`")
    parser.add_argument("-o", "--out", type=Path, default=Path("class.html"), help="the HTML file to write")
    parser.add_argument("--lang", choices=i18n.LANGS, default=None, help="language of the page")
    args = parser.parse_args(argv)
    try:
        path, students, katas = write(args.reports, args.out, args.lang)
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(i18n.tool("grading")("class-written", path=path, students=students, katas=katas))
    return 0 if students else 1


if __name__ == "__main__":
    sys.exit(main())
