"""`kata class-report`: a class's reports as one self-contained HTML page, checked in a real browser.

The browser test needs Chromium (Debian: `apt-get install -y chromium`); it is skipped, with the
reason, where there is none. It renders 30 synthetic students, measures the page's own parse and
layout time (under 1 s), and saves a phone-sized screenshot next to the page for a human to look at.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest

from kata_tools import catalog, class_report, grading

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
HOSTILE = "<script>alert(1)</script>\udcff"


def synthetic_report(n: int, rng: random.Random) -> dict:
    katas = []
    for kata in catalog.katas():
        solved = rng.random() < 0.5
        tests, rule_entries = [], []
        for rule in kata.rules:
            ok = solved or rng.random() < 0.4
            ticks = rng.randint(1, 30)
            tests.append(
                {
                    "nodeid": f"katas/{kata.name}/test_x.py::test_{rule.id.lower()}",
                    "name": f"test_{rule.id.lower()}",
                    "rules": [rule.id],
                    "status": "passed" if ok else "failed",
                    "message": "" if ok else f"{rule.id}: the loop ticked {ticks} times in 0.3 s\n  spec: x",
                    "duration": 0.1,
                }
            )
        rule_entries = grading.rule_entries(kata.rules, tests)
        status = "solved" if all(t["status"] == "passed" for t in tests) else "failing"
        if n == 3 and kata.number == "02":
            status = "timed out"
        katas.append(
            {
                "kata": kata.name,
                "number": kata.number,
                "title": kata.title,
                "status": status,
                "score": 10.0 if status == "solved" else 0.0,
                "max_score": 10.0,
                "passed": sum(t["status"] == "passed" for t in tests),
                "total": len(tests),
                "seconds": 1.0,
                "exit_code": 0,
                "message": HOSTILE if n == 5 else "",
                "rules": rule_entries,
                "tests": tests,
            }
        )
    score = sum(k["score"] for k in katas)
    return {
        "schema": grading.SCHEMA,
        "created": "2026-12-01T00:00:00+00:00",
        "score": score,
        "max_score": 10.0 * len(katas),
        "percent": round(100 * score / (10 * len(katas)), 1),
        "scoring": "all-or-nothing",
        "graded_from": None,
        "manifest": {"digest": "0" * 16, "changes": [], "changes_left_out": 0},
        "review": [
            {
                "file": "katas/01_event_loop/event_loop.py",
                "line": 3,
                "what": "atexit",
                "why": "an exit handler",
                "text": "import atexit",
            }
        ]
        if n == 7
        else [],
        "katas": katas,
    }


def write_class(folder: Path, students: int = 30) -> list[Path]:
    rng = random.Random(13)
    paths = []
    for n in range(students):
        path = folder / f"student-{n:02d}" / "report.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(synthetic_report(n, rng), ensure_ascii=True))
        paths.append(path)
    return paths


class Page(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.links, self.tags = set(), [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append(tag)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "a":
            self.links.append(attrs.get("href", ""))
        for name in ("src", "href"):
            assert not str(attrs.get(name, "")).startswith(("http:", "https:", "//")), attrs


def test_the_page_has_the_grid_the_rules_and_a_linked_row_per_student(tmp_path):
    paths = write_class(tmp_path / "reports")
    (tmp_path / "broken.json").write_text("{not json")
    out = tmp_path / "class.html"
    _path, students, katas = class_report.write([*paths, tmp_path / "broken.json"], out, lang="en")
    assert students == 30 and katas == len(catalog.katas())
    text = out.read_text()
    page = Page()
    page.feed(text)
    assert "script" not in page.tags and "<script>" not in text and "&lt;script&gt;" in text
    assert [link for link in page.links if link.startswith("#")] == [f"#s{n}" for n in range(30)]
    assert {f"s{n}" for n in range(30)} <= page.ids
    assert "student-00" in text and "broken.json" in text  # the unreadable file is named, not fatal
    mastery = class_report.rule_mastery(class_report.load(paths)[0])
    assert mastery[0]["unmet"] >= mastery[-1]["unmet"]
    top = mastery[0]
    assert top["message"].startswith(f"{top['rule']}: the loop ticked") and top["message_count"] >= 1
    assert f"<b>{top['rule']}</b>" in text and top["students"] <= 30
    korean = class_report.render(class_report.load(paths)[0], lang="ko")
    assert "반 전체 보고서" in korean and 'lang="ko"' in korean


def test_the_command_line(tmp_path):
    paths = write_class(tmp_path / "reports", 3)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kata_tools.cli",
            "class-report",
            *map(str, paths),
            "-o",
            str(tmp_path / "c.html"),
        ],
        capture_output=True,
        text=True,
        cwd=catalog.ROOT,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 students" in proc.stdout and (tmp_path / "c.html").is_file()


def chromium(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="kata-chromium-") as profile:
        return subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                "--hide-scrollbars",
                f"--user-data-dir={profile}",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
        )


@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium here (Debian: apt-get install -y chromium)")
@pytest.mark.timeout(180)
def test_thirty_students_render_in_chromium_in_under_a_second_and_fit_a_phone(tmp_path):
    paths = write_class(tmp_path / "reports")
    out = tmp_path / "class.html"
    class_report.write(paths, out, lang="en")
    # A copy with a probe at the very end: parse and layout time as the page itself measures it.
    probe = tmp_path / "probe.html"
    probe.write_text(
        out.read_text().replace(
            "</body>",
            "<script>document.body.offsetHeight;"
            "document.body.setAttribute('data-rendered-ms', String(performance.now()));"
            "document.body.setAttribute('data-width', String(document.documentElement.scrollWidth));"
            "document.body.setAttribute('data-viewport', String(window.innerWidth));"
            "</script></body>",
        )
    )
    started = time.monotonic()
    dom = chromium("--window-size=390,844", "--dump-dom", probe.as_uri())
    wall = time.monotonic() - started
    assert dom.returncode == 0, dom.stderr[-2000:]
    rendered = float(re.search(r'data-rendered-ms="([\d.]+)"', dom.stdout).group(1))
    width = int(re.search(r'data-width="(\d+)"', dom.stdout).group(1))
    viewport = int(re.search(r'data-viewport="(\d+)"', dom.stdout).group(1))
    assert rendered < 1000, f"rendering took {rendered:.0f} ms"
    assert viewport <= 500  # headless Chromium keeps windows at least 500 px wide
    assert width <= viewport, (
        f"the page is {width} px wide in a {viewport} px window (only the grid may scroll)"
    )
    assert dom.stdout.count('class="student"') == 30
    shot = out.with_suffix(".png")
    done = chromium("--window-size=390,1600", f"--screenshot={shot}", out.as_uri())
    assert done.returncode == 0 and shot.stat().st_size > 10_000, done.stderr[-2000:]
    print(f"\nclass report: {rendered:.0f} ms in Chromium (wall {wall:.1f} s), screenshot {shot}")
