"""Rendering: the consoles, the words (kata_tools/messages/cli.toml), and how a run is shown.

Every line the `kata` command prints comes from the `cli` message catalog, in the current
language (`say(key, **fields)`); only code, paths and identifiers are printed as they are.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.text import Text

from kata_tools import catalog, i18n, results

out = Console(highlight=False)
out.soft_wrap = not out.is_terminal  # piped or CI: one long line per message, not wrapped at 80
err = Console(stderr=True, highlight=False, soft_wrap=True)

MARK = {
    results.PASSED: ("✔", "green"),
    results.FAILING: ("✘", "red"),
    results.NOT_RUN: ("·", "dim"),
}
STATE_STYLE = {  # kata status -> (mark, message key of its word, style)
    results.SOLVED: ("✔", "state-solved", "green"),
    results.FAILING: ("✘", "state-failing", "red"),
    results.PARTIAL: ("◐", "state-partial", "yellow"),
    results.NOT_RUN: ("·", "state-not-run", "dim"),
}


def say(key: str, /, **fields) -> str:
    """The message `key` of kata_tools/messages/cli.toml, in the current language."""
    return i18n.tool("cli")(key, **fields)


class Fail(Exception):
    """A one-line error for the learner, with an exit code (2: usage, 1: anything else)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def fail(key: str, code: int = 2, /, **fields) -> Fail:
    return Fail(say(key, **fields), code)


def warn(message: str) -> None:
    err.print(say("warning", message=message), style="yellow", soft_wrap=True)


def line(key: str, /, style: str = "", **fields) -> None:
    out.print(Text(say(key, **fields), style=style))


def markdown(text: str):
    from rich.markdown import Markdown  # only here: it costs a tenth of a second to import

    return Markdown(text)


def state_word(state: str) -> str:
    return say(STATE_STYLE.get(state, STATE_STYLE[results.NOT_RUN])[1])


def state_label(state: str) -> tuple[str, str]:
    """(mark and word, style) of a kata status, e.g. ("✔ solved", "green")."""
    mark, key, style = STATE_STYLE.get(state, STATE_STYLE[results.NOT_RUN])
    return f"{mark} {say(key)}", style


def all_solved() -> None:
    line("all-solved", style="bold green")


def rule_line(kata: catalog.Kata, rules: dict[str, str]) -> Text:
    shown = Text()
    for rule in kata.rules:
        mark, style = MARK.get(rules.get(rule.id, results.NOT_RUN), MARK[results.NOT_RUN])
        shown.append(f"{rule.id}{mark} ", style=style)  # id and mark never wrap apart
    return shown


def show_failure(record: dict) -> None:
    rules = catalog.rules()
    ids = results.rules_of(record)
    titles = "; ".join(f"{r} {rules[r].title_in()}" for r in ids if r in rules)
    line("failure-rule", style="bold", titles=titles)
    doc = results.doc_of(record)
    if doc and i18n.current() == i18n.DEFAULT:  # docstrings are English: in Korean the message says it
        line("failure-spec", style="italic", doc=doc)
    out.print(Text(record.get("message") or say("no-message")))


def show_run(kata: catalog.Kata, records: list[dict], output: str, clear: bool = False) -> bool:
    """Show a run as `kata watch` does; True when the kata is solved."""
    if clear and out.is_terminal:
        out.clear()
    summary = results.summarize(records, [r.id for r in kata.rules])
    line(
        "run-header",
        style="bold",
        number=kata.number,
        title=kata.title,
        passed=summary.passed,
        total=summary.total,
        stamp=time.strftime("%H:%M:%S"),
    )
    out.print(rule_line(kata, summary.rules))
    out.print()
    if not records:
        tail = "\n".join(output.strip().splitlines()[-15:])
        line("did-not-run", style="red")
        out.print(Text(tail))
        return False
    failure = results.first_failure(records)
    if failure is None:
        line("kata-solved", style="bold green", number=kata.number)
        return True
    show_failure(failure)
    return False
