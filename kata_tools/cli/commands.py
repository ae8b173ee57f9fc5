"""The learner's commands: `kata list`, `kata next`, `kata hint`, `kata lang`."""

from __future__ import annotations

import typer
from rich.table import Table
from rich.text import Text

from kata_tools import catalog, i18n, progress, results
from kata_tools.cli import course, texts
from kata_tools.cli.ui import (
    all_solved,
    fail,
    line,
    markdown,
    out,
    rule_line,
    say,
    show_failure,
    show_run,
    state_label,
    state_word,
    warn,
)


def list_katas() -> None:
    """Every kata with its rules and state, from the last results (runs no spec)."""
    from rich.progress_bar import ProgressBar

    katas = course.all_katas()
    status = course.statuses()
    manifest = course.pristine_manifest() or {}
    missing = sorted(set(manifest.get("katas", {})) - {k.name for k in katas})
    n_katas = len(katas) + len(missing)
    solved = sum(s.solved for s in status.values())
    all_rules = [r for k in katas for r in k.rules]
    met = sum(status[k.name].rules.get(r.id) == results.PASSED for k in katas for r in k.rules)

    bars = Table.grid(padding=(0, 2))
    for label, done, total, word in (
        ("list-katas", solved, n_katas, "list-solved"),
        ("list-rules", met, len(all_rules), "list-met"),
    ):
        filled = round(30 * done / max(total, 1))
        bar = (
            ProgressBar(
                total=max(total, 1),
                completed=done,
                width=30,
                complete_style="green",
                finished_style="green",
            )
            if out.color_system
            else "#" * filled + "-" * (30 - filled)
        )
        bars.add_row(say(label), bar, say(word, done=done, total=total))
    out.print(bars)
    out.print()

    table = Table(box=None, pad_edge=False, header_style="bold")
    for key in ("col-number", "col-kata", "col-state", "col-specs", "col-rules"):
        table.add_column(say(key), no_wrap=key != "col-rules")
    stale = False
    for kata in katas:
        s = status[kata.name]
        label, style = state_label(s.state)
        if s.stale and s.state != results.NOT_RUN:
            label += " *"
            stale = True
        specs = f"{s.passed}/{s.total}" if s.total else "-"
        table.add_row(kata.number, kata.title, Text(label, style=style), specs, rule_line(kata, s.rules))
    for name in missing:
        table.add_row(
            name[:2],
            name[3:].replace("_", " "),
            Text(say("state-folder-missing"), style="red"),
            "-",
            say("restore-hint", name=name),
        )
    out.print(table)
    if stale:
        line("stale-note", style="dim")
    nxt = course.first_unsolved(status) if katas else None
    if nxt is not None:
        line("list-next", number=nxt.number, title=nxt.title)
    elif katas:
        all_solved()


def next_kata(
    run: bool = typer.Option(True, "--run/--no-run"),
) -> None:
    """The first unsolved kata: its task and its current failures."""
    status = course.statuses()
    kata = course.first_unsolved(status)
    if kata is None:
        all_solved()
        return
    s = status[kata.name]
    line("next-header", style="bold", number=kata.number, title=kata.title, state=state_word(s.state))
    line(
        "next-rules",
        style="dim",
        rules=", ".join(r.id for r in kata.rules),
        readme=texts.readme_name(kata),
    )
    out.print()
    task = texts.section(kata, "task")
    out.print(markdown(task) if task else Text(say("no-task", readme=texts.readme_name(kata))))
    out.print()
    other_lang = not s.messages_in(i18n.current())  # stored messages cannot be translated: re-run
    if run and (s.state in (results.NOT_RUN, results.PARTIAL) or s.stale or other_lang):
        line("next-running", style="dim", number=kata.number)
        records, output = course.run_kata(kata)
        show_run(kata, records, output)
    elif s.failures:
        line("next-failures", style="bold", failing=len(s.failures), total=s.total)
        if other_lang:
            line("next-other-lang", style="dim", number=kata.number)
        out.print()
        show_failure(s.failures[0])
        if len(s.failures) > 1:
            line("and-more", style="dim", more=len(s.failures) - 1)
    out.print()
    line("next-footer", number=kata.number)


def hint(
    kata: str | None = typer.Argument(None, metavar="[NN]"),
    all_: bool = typer.Option(False, "--all"),
) -> None:
    """The next hint of the ladder of the rule that fails now (it remembers how far you went)."""
    target = course.current(kata)
    if target is None:
        all_solved()
        return
    status = course.statuses().get(target.name)
    hints, key = texts.ladder(target, status)
    if not hints:
        raise fail("no-hints", 1, number=target.number, name=target.name)
    rule = texts.ladder_rule(key)
    root = catalog.ROOT
    seen = min(progress.hints_seen(root, key, warn=warn), len(hints))
    if all_:
        if not seen:
            line("no-hint-seen", number=target.number)
        for i in range(seen):
            line("hint-header-short", style="bold", n=i + 1, total=len(hints))
            out.print(markdown(hints[i]))
        return
    if seen >= len(hints):
        line("no-more-hints", number=target.number, total=len(hints), name=target.name)
        return
    line(
        "hint-header-rule" if rule else "hint-header",
        style="bold",
        n=seen + 1,
        total=len(hints),
        number=target.number,
        title=target.title,
        rule=rule,
    )
    out.print(markdown(hints[seen]))
    try:
        progress.set_hints_seen(root, key, seen + 1)
    except OSError as e:
        warn(say("hint-not-saved", why=e.strerror))


def lang(
    choice: str | None = typer.Argument(None, metavar="[ko|en]"),
) -> None:
    """Show or set the language of the course (remembered in .kata/lang)."""
    if choice is None:
        line("lang-current", lang=i18n.current())
        return
    chosen = i18n.normalize(choice)
    if chosen is None:
        raise fail("lang-unknown", 2, lang=choice, langs=", ".join(i18n.LANGS))
    path = i18n.save_lang(chosen, catalog.ROOT)
    i18n.set_lang(chosen)
    line("lang-saved", lang=chosen, path=path.relative_to(catalog.ROOT).as_posix())
