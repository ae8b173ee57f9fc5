"""The lab's timelines as pictures in the kata READMEs, drawn from one real lab run.

    python -m kata_tools.lab.pictures --run     # run the lab once (N=100, T=0.1 s), then draw
    python -m kata_tools.lab.pictures           # draw again from the recorded run
    python -m kata_tools.lab.pictures --check   # exit 1 if a picture is missing or stale

The run is recorded in docs/lab/timeline.json; each kata whose rules a mode shows gets
`timeline.svg` (English) and `timeline.ko.svg` (Korean) with the panels of those modes (`panels`:
from each mode's rules and each kata's kata.toml, no list to keep by hand). Drawing is
deterministic, so the project's own tests check that every picture exists and matches the
recorded run as the current renderer draws it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from kata_tools import catalog, i18n
from kata_tools.lab import svg
from kata_tools.lab.modes import MODES, Mode, Settings
from kata_tools.lab.results import from_json

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "docs" / "lab" / "timeline.json"


def panels() -> dict[str, list[str]]:
    """Each kata's panels: the modes showing a rule it teaches, in the lab's order of modes.

    A kata teaches the rules it is the first to list in its kata.toml (catalog.Rule.kata). A kata
    that teaches none, only checks again what earlier katas taught (the capstone), gets the modes
    of its rules that run more than one query at once: the caps it sizes, not the serial modes.
    """
    out: dict[str, list[str]] = {}
    home: dict[str, str] = {}
    katas = catalog.katas()
    for kata in katas:  # the kata that teaches a rule: the first to list it (as catalog.Rule.kata)
        for rule in kata.declaration.rules:
            home.setdefault(rule, kata.name)
    for kata in katas:
        declared = set(kata.declaration.rules)
        taught = {rule for rule in declared if home[rule] == kata.name}
        if taught:
            modes = [m.name for m in MODES.values() if taught & set(m.rules)]
        else:
            modes = [m.name for m in MODES.values() if declared & set(m.rules) and _runs_many(m)]
        if modes:
            out[kata.name] = modes
    return out


def _runs_many(mode: Mode) -> bool:
    """More than one query at once in the lab's run (its capacity is set by a pool or a limit)."""
    return mode.capacity(Settings()) > 1


FILES = {"en": "timeline.svg", "ko": "timeline.ko.svg"}


def drawings(data: dict | None = None) -> dict[Path, str]:
    """Every picture's path and the SVG text the current renderer draws for it."""
    if data is None:
        data = json.loads(DATA.read_text(encoding="utf-8"))
    results = {r.mode.name: r for r in from_json(data)}
    out = {}
    for kata, modes in panels().items():
        chosen = [results[m] for m in modes if m in results]
        for lang, name in FILES.items():
            with i18n.using(lang):
                out[ROOT / "katas" / kata / name] = svg.render(chosen)
    return out


def stale() -> list[Path]:
    """Pictures that are missing or differ from what the recorded run draws."""
    if not DATA.is_file():
        return [DATA]
    return [
        path
        for path, text in drawings().items()
        if not path.is_file() or path.read_text(encoding="utf-8") != text
    ]


def draw() -> list[Path]:
    written = []
    for path, text in drawings().items():
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            written.append(path)
    return written


def run_lab() -> None:
    """One lab run of every mode, recorded in docs/lab/timeline.json."""
    DATA.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "kata_tools.lab",
                "-n",
                "100",
                "-t",
                "0.1",
                "--lang",
                "en",
                "--json",
                str(DATA),
                "-o",
                str(Path(tmp) / "lab.svg"),
            ],
            cwd=ROOT,
            check=True,
        )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--check" in args:
        missing = stale()
        for path in missing:
            print(f"stale: {path.relative_to(ROOT)} (run python -m kata_tools.lab.pictures)")
        return 1 if missing else 0
    if "--run" in args:
        run_lab()
    for path in draw():
        print(f"wrote {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
