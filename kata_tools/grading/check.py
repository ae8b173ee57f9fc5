"""`python -m kata_tools.grading.check REPORT KATA`: one kata's line of a grade report, as an exit code.

Each Classroom test of the generated workflow (kata_tools/grading/classroom.py) runs this after
the single grading run: it prints the kata's status (and why it scored 0) and exits 0 only when
the kata is solved, so autograding-command-grader gives it its points. A missing or unreadable
report, or a report of another schema, exits 1 with one line saying so.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from kata_tools import i18n


def say(key: str, **fields) -> str:
    return i18n.tool("grading")(key, **fields)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 2:
        print("usage: python -m kata_tools.grading.check REPORT.json NN_name", file=sys.stderr)
        return 2
    path, kata = Path(args[0]), args[1]
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
        entry = next(k for k in report["katas"] if k["kata"] == kata or k["number"] == kata)
    except (OSError, ValueError, KeyError, TypeError):
        print(say("check-no-report", path=path))
        return 1
    except StopIteration:
        print(say("check-not-graded", path=path, kata=kata))
        return 1
    if not str(report.get("schema", "")).startswith("kata-grade/"):
        print(say("check-not-a-report", path=path))
        return 1
    status = entry["status"]
    key = f"status-{status.replace(' ', '-')}"
    line = say(
        "check-line",
        number=entry["number"],
        title=entry["title"],
        status=say(key) if key in i18n.tool("grading") else status,
        score=f"{entry['score']:g}",
        max_score=f"{entry['max_score']:g}",
        passed=entry["passed"],
        total=entry["total"],
    )
    print(line + (f"\n{entry['message']}" if entry.get("message") else ""))
    return 0 if entry["status"] == "solved" else 1


if __name__ == "__main__":
    sys.exit(main())
