"""The README sections that are drawn from the declarations, so no rule or hint is written twice.

In `katas/NN_name/README.md` (English) and `README.ko.md` (Korean), the bodies of the sections
"The rules" and "Hints" sit between markers and are written from katas/rules.toml and the kata's
kata.toml:

    ## The rules
    <!-- generated: rules (from katas/rules.toml; `python -m kata_tools.readme --write`) -->
    - **EL1** ...
    <!-- end generated -->

Everything else in a README is hand-written. `python -m kata_tools.readme --write` rewrites the
generated blocks; `--check` (and the project's own tests) fail when one is stale.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from kata_tools import catalog

README_OF = {"en": "README.md", "ko": "README.ko.md"}
# The sections of a kata README, in order: key -> heading per language. The last one depends on
# the kata: "notes-differ" for katas 01-09, "beyond-notes" for 10 and on (`closing_section`).
SECTIONS = {
    "rules": {"en": "The rules", "ko": "규칙"},
    "why": {"en": "Why", "ko": "왜 그런가"},
    "task": {"en": "Your task", "ko": "과제"},
    "run": {"en": "Run", "ko": "실행"},
    "hints": {"en": "Hints", "ko": "힌트"},
    "notes-differ": {"en": "Where the notes differ", "ko": "노트와 다른 점"},
    "beyond-notes": {"en": "Beyond the notes", "ko": "노트 너머"},
}
LANGUAGE_LINK = {"en": "[한국어](README.ko.md)", "ko": "[English](README.md)"}


def closing_section(kata: catalog.Kata) -> str:
    return "notes-differ" if int(kata.number) <= 9 else "beyond-notes"


def section_keys(kata: catalog.Kata) -> list[str]:
    """The keys of the sections a kata README has, in order."""
    return ["rules", "why", "task", "run", "hints", closing_section(kata)]


def headings(text: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(r"^## (.+)$", text, re.M)]


def section(text: str, heading: str) -> str:
    """The text under `## heading`, up to the next `## `; "" if there is none."""
    match = re.search(rf"^## {re.escape(heading)}[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return match.group(1).strip() if match else ""


def problems(kata: catalog.Kata) -> list[str]:
    """What is wrong with a kata's READMEs, one line each: a missing file, a section missing or
    out of order, a missing language link, a stale generated block."""
    out = []
    for lang, name in README_OF.items():
        path = kata.path / name
        where = f"katas/{kata.name}/{name}"
        if not path.is_file():
            out.append(f"{where} is missing")
            continue
        text = path.read_text(encoding="utf-8")
        wanted = [SECTIONS[key][lang] for key in section_keys(kata)]
        found = [h for h in headings(text) if h in wanted]
        missing = [h for h in wanted if h not in found]
        if missing:
            out.append(f"{where} lacks the section(s) {', '.join('## ' + h for h in missing)}")
        elif found != wanted:
            out.append(f"{where}: sections out of order (want {', '.join(wanted)})")
        if LANGUAGE_LINK[lang] not in text[:400]:
            out.append(f"{where} does not link {LANGUAGE_LINK[lang]} at its top")
        for block in ("rules", "hints"):
            if f"<!-- generated: {block} " not in text:
                out.append(f"{where} has no <!-- generated: {block} --> block")
        if render(kata, text, lang) != text:
            out.append(f"{where}: generated blocks are stale (run `kata dev sync`)")
    return out


BLOCK = re.compile(
    r"(<!-- generated: (?P<name>[a-z]+) [^\n]*-->\n)(?P<body>.*?)(<!-- end generated -->)", re.S
)
MARKER = "<!-- generated: {name} (from {source}; `python -m kata_tools.readme --write`) -->\n"


def rules_block(kata: catalog.Kata, lang: str) -> str:
    lines = []
    for rule in kata.rules:
        text = " ".join(rule.text_in(lang).split())
        lines.append(f"- **{rule.id}** {rule.title_in(lang)}. {text}")
    return "\n".join(lines) + "\n"


def hints_block(kata: catalog.Kata, lang: str) -> str:
    lines = []
    for n, hint in enumerate(kata.hints(), 1):
        tag = f" ({', '.join(hint.rules)})" if hint.rules else ""
        lines.append(f"{n}. {hint.text_in(lang).strip()}{tag}")
    return "\n".join(lines) + "\n"


BLOCKS = {"rules": (rules_block, "katas/rules.toml"), "hints": (hints_block, "kata.toml")}


def render(kata: catalog.Kata, text: str, lang: str) -> str:
    """The README text with every generated block rewritten."""

    def replace(match: re.Match) -> str:
        name = match.group("name")
        if name not in BLOCKS:
            return match.group(0)
        make, source = BLOCKS[name]
        return MARKER.format(name=name, source=source) + make(kata, lang) + match.group(4)

    return BLOCK.sub(replace, text)


def readmes(kata: catalog.Kata) -> dict[str, Path]:
    return {lang: kata.path / name for lang, name in README_OF.items() if (kata.path / name).is_file()}


def stale(katas: list[catalog.Kata] | None = None) -> list[Path]:
    out = []
    for kata in katas or catalog.katas():
        for lang, path in readmes(kata).items():
            text = path.read_text(encoding="utf-8")
            if render(kata, text, lang) != text:
                out.append(path)
    return out


def write(katas: list[catalog.Kata] | None = None) -> list[Path]:
    written = []
    for kata in katas or catalog.katas():
        for lang, path in readmes(kata).items():
            text = path.read_text(encoding="utf-8")
            new = render(kata, text, lang)
            if new != text:
                path.write_text(new, encoding="utf-8")
                written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--write" in args:
        for path in write():
            print(f"wrote {path.relative_to(catalog.ROOT)}")
        return 0
    old = stale()
    for path in old:
        print(f"stale: {path.relative_to(catalog.ROOT)} (run python -m kata_tools.readme --write)")
    return 1 if old else 0


if __name__ == "__main__":
    raise SystemExit(main())
