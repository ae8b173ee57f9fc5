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
