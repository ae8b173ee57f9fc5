"""README and hint text for the `kata` command, in the current language.

A kata's task comes from its README in the learner's language (README.ko.md for Korean, falling
back to README.md); its hints come from kata.toml, each tied to the rules it helps with, so
`kata hint` offers the ladder of the rule that fails now.
"""

from __future__ import annotations

from kata_tools import catalog, i18n, progress, readme, results


def readme_text(kata: catalog.Kata, lang: str | None = None) -> tuple[str, str]:
    """(README text, its language): the learner's language when that README exists, else English."""
    lang = lang or i18n.current()
    for choice in dict.fromkeys((lang, i18n.DEFAULT)):
        path = kata.path / readme.README_OF.get(choice, readme.README_OF[i18n.DEFAULT])
        try:
            return path.read_text(encoding="utf-8"), choice
        except OSError:
            continue
    return "", lang


def section(kata: catalog.Kata, key: str, lang: str | None = None) -> str:
    """A README section by key (readme.SECTIONS: "task", "why", ...), in the current language."""
    text, chosen = readme_text(kata, lang)
    return readme.section(text, readme.SECTIONS[key][chosen])


def readme_name(kata: catalog.Kata, lang: str | None = None) -> str:
    _, chosen = readme_text(kata, lang)
    return f"katas/{kata.name}/{readme.README_OF[chosen]}"


def failing_rules(status: progress.KataStatus | None) -> list[str]:
    if status is None:
        return []
    return [rid for rid, state in status.rules.items() if state == results.FAILING]


def ladder(kata: catalog.Kata, status: progress.KataStatus | None) -> tuple[list[str], str]:
    """(hint texts, ladder key): the ladder of the first rule failing now, else the whole one.

    The key names the ladder in .kata/progress.json: the kata's name for its whole ladder,
    "NN_name/RULE" for a rule's, so each ladder remembers how far the learner climbed.
    """
    for rule_id in failing_rules(status):
        hints = kata.hints([rule_id])
        if hints and len(hints) < len(kata.hints()):
            return [h.text_in() for h in hints], f"{kata.name}/{rule_id}"
    return [h.text_in() for h in kata.hints()], kata.name


def ladder_rule(key: str) -> str:
    return key.split("/", 1)[1] if "/" in key else ""
