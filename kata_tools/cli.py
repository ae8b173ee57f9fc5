"""The `kata` command: where you stand, one kata at a time, hints, a fresh start, and grading.

    kata list            every kata, its rules and state, from the last results (runs nothing)
    kata next            the first unsolved kata: its task and current failures
    kata watch [NN]      re-run a kata's specs on every save; moves on when it is solved
    kata hint NN         the next hint of the kata's ladder
    kata reset NN        put the kata's learner files back as they were given
    kata grade           score every kata (instructors, CI); see kata_tools/grading/
    kata release DIR     the student release for GitHub Classroom (no solutions/)
    kata class-report    a class's grade reports as one HTML page

Exit codes: 0 ok, 1 specs failing or a grade below the maximum, 2 a usage error.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from kata_tools import catalog, progress, results

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help="Katas on concurrency in FastAPI and async SQLAlchemy: `kata next` to start.",
)
out = Console(highlight=False)
out.soft_wrap = not out.is_terminal  # piped or CI: one long line per message, not wrapped at 80
err = Console(stderr=True, highlight=False, soft_wrap=True)

MARK = {"passed": ("✔", "green"), "failing": ("✘", "red"), "not run": ("·", "dim")}
STATE_STYLE = {
    progress.SOLVED: ("✔ solved", "green"),
    progress.FAILING: ("✘ failing", "red"),
    progress.PARTIAL: ("◐ partly run", "yellow"),
    progress.NOT_STARTED: ("· not started", "dim"),
}


class Fail(Exception):
    """A one-line error for the learner, with an exit code (2: usage, 1: anything else)."""

    def __init__(self, message: str, code: int = 2):
        super().__init__(message)
        self.code = code


def warn(message: str) -> None:
    err.print(f"warning: {message}", style="yellow", soft_wrap=True)


# --- the course's katas ------------------------------------------------------------------------


def all_katas() -> list[catalog.Kata]:
    if not catalog.KATAS.is_dir():
        raise Fail(f"no katas/ folder in {catalog.ROOT}: run `kata` inside the course folder", 2)
    return catalog.katas()


def pristine_manifest() -> dict | None:
    from kata_tools import manifest

    try:
        return manifest.load(catalog.ROOT)
    except manifest.ManifestError:
        return None


def find(key: str) -> catalog.Kata:
    """The kata for NN or a name; a one-line error for an unknown or deleted one."""
    try:
        return catalog.find_kata(key)
    except catalog.CatalogError:
        pass
    known = pristine_manifest() or {}
    for name in known.get("katas", {}):
        if key.strip().rstrip("/").split("/")[-1] in (name, name[:2], name[3:]) or (
            key.isdigit() and int(key) == int(name[:2])
        ):
            raise Fail(
                f"katas/{name} is missing (deleted?); restore it with "
                f"`git checkout -- katas/{name}` or from a fresh copy of the course",
                1,
            )
    names = ", ".join(k.number for k in all_katas()) or "none"
    raise Fail(f"no kata {key!r}; the katas are numbered {names}", 2)


def statuses() -> dict[str, progress.KataStatus]:
    return progress.statuses(catalog.ROOT, all_katas(), warn=warn)


def first_unsolved(status: dict[str, progress.KataStatus], after: str = "") -> catalog.Kata | None:
    """The first kata not solved yet; with `after`, the first one after that kata (wrapping round)."""
    katas = all_katas()
    if after:
        katas = [k for k in katas if k.name > after] + [k for k in katas if k.name < after]
    return next((k for k in katas if not status[k.name].solved), None)


def section(readme: Path, heading: str) -> str:
    """The text under `## heading` of a README, up to the next `## `; "" if there is none."""
    try:
        text = readme.read_text(encoding="utf-8")
    except OSError:
        return ""
    match = re.search(rf"^## {re.escape(heading)}[ \t]*\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    return match.group(1).strip() if match else ""


def hints_of(kata: catalog.Kata) -> list[str]:
    """The hint ladder: the numbered list under `## Hints`, one string per item."""
    hints: list[str] = []
    for line in section(kata.readme, "Hints").splitlines():
        item = re.match(r"^\d+\.\s+(.*)", line)
        if item:
            hints.append(item.group(1))
        elif hints and line.strip():
            hints[-1] += "\n" + line.strip()
    return hints


def markdown(text: str):
    from rich.markdown import Markdown  # only here: it costs a tenth of a second to import

    return Markdown(text)


# --- running a kata's specs --------------------------------------------------------------------


def run_kata(kata: catalog.Kata) -> tuple[list[dict], str]:
    """Run the kata's specs in a pytest subprocess; (records in run order, console output).

    The pytest plugin merges the results into .kata/results.json, as for any run of katas/.
    """
    from kata_tools import i18n, runner

    run = runner.run(
        runner.targets([kata]),
        progress=True,
        lang=i18n.current(),
        pycache=catalog.ROOT / progress.STATE_DIR / "pycache",
    )
    return run.records, run.output


def first_failure(records: list[dict]) -> dict | None:
    return results.first_failure(records)


def rule_line(kata: catalog.Kata, rules: dict[str, str]) -> Text:
    line = Text()
    for rule in kata.rules:
        mark, style = MARK.get(rules.get(rule.id, "not run"), MARK["not run"])
        line.append(f"{rule.id} {mark}  ", style=style)
    return line


def rules_from_records(kata: catalog.Kata, records: list[dict]) -> dict[str, str]:
    return results.summarize(records, [r.id for r in kata.rules]).rules


def show_failure(record: dict) -> None:
    rules = catalog.rules()
    ids = record.get("rules", [])
    titles = "; ".join(f"{r} {rules[r].title_in()}" for r in ids if r in rules)
    out.print(Text(f"Rule {titles}", style="bold"))
    doc = results.doc_of(record)
    if doc:
        out.print(Text(f"Spec: {doc}", style="italic"))
    out.print(Text(record.get("message") or "(no message)"))


def show_run(kata: catalog.Kata, records: list[dict], output: str, clear: bool = False) -> bool:
    """Show a run as `kata watch` does; True when the kata is solved."""
    if clear and out.is_terminal:
        out.clear()
    passed = sum(r["outcome"] == "passed" for r in records)
    stamp = time.strftime("%H:%M:%S")
    out.print(
        Text(
            f"Kata {kata.number} · {kata.title}   {passed} of {len(records)} specs pass   ({stamp})",
            style="bold",
        )
    )
    out.print(rule_line(kata, rules_from_records(kata, records)))
    out.print()
    if not records:
        tail = "\n".join(output.strip().splitlines()[-15:])
        out.print(Text("The specs did not run. pytest said:", style="red"))
        out.print(Text(tail))
        return False
    failure = first_failure(records)
    if failure is None:
        out.print(Text(f"Kata {kata.number} solved: every spec passes.", style="bold green"))
        return True
    show_failure(failure)
    return False


# --- commands ----------------------------------------------------------------------------------


@app.command("list")
def list_katas() -> None:
    """Every kata with its rules and state, from the last results (runs no spec)."""
    from rich.progress_bar import ProgressBar

    katas = all_katas()
    status = statuses()
    manifest = pristine_manifest() or {}
    missing = sorted(set(manifest.get("katas", {})) - {k.name for k in katas})
    n_katas = len(katas) + len(missing)
    solved = sum(s.solved for s in status.values())
    all_rules = [r for k in katas for r in k.rules]
    met = sum(
        s.rules.get(r.id) == "passed" for k in katas for r in k.rules for s in [status[k.name]]
    )

    bars = Table.grid(padding=(0, 2))
    for label, done, total, word in (
        ("Katas", solved, n_katas, "solved"),
        ("Rules", met, len(all_rules), "met"),
    ):
        bar = (
            ProgressBar(
                total=max(total, 1),
                completed=done,
                width=30,
                complete_style="green",
                finished_style="green",
            )
            if out.color_system
            else "#" * round(30 * done / max(total, 1))
            + "-" * (30 - round(30 * done / max(total, 1)))
        )
        bars.add_row(label, bar, f"{done} of {total} {word}")
    out.print(bars)
    out.print()

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("#", "Kata", "State", "Specs", "Rules"):
        table.add_column(column, no_wrap=column != "Rules")
    stale = False
    for kata in katas:
        s = status[kata.name]
        label, style = STATE_STYLE[s.state]
        if s.stale and s.state != progress.NOT_STARTED:
            label += " *"
            stale = True
        specs = f"{s.passed}/{s.total}" if s.total else "-"
        table.add_row(
            kata.number, kata.title, Text(label, style=style), specs, rule_line(kata, s.rules)
        )
    for name in missing:
        table.add_row(
            name[:2],
            name[3:].replace("_", " "),
            Text("⛔ folder missing", style="red"),
            "-",
            f"restore: git checkout -- katas/{name}",
        )
    out.print(table)
    if stale:
        out.print(
            Text(
                "* a learner file changed since these results: `kata watch NN` re-runs it",
                style="dim",
            )
        )
    nxt = first_unsolved(status) if katas else None
    if nxt is not None:
        out.print(
            Text(
                f"Next: kata {nxt.number} · {nxt.title}   (`kata next`, `kata watch {nxt.number}`)"
            )
        )
    elif katas:
        out.print(Text("Every kata is solved. `kata grade` shows the score.", style="bold green"))


@app.command("next")
def next_kata(
    run: bool = typer.Option(
        True,
        "--run/--no-run",
        help="run the kata's specs when its results are missing or out of date",
    ),
) -> None:
    """The first unsolved kata: its task and its current failures."""
    status = statuses()
    kata = first_unsolved(status)
    if kata is None:
        out.print(Text("Every kata is solved. `kata grade` shows the score.", style="bold green"))
        return
    s = status[kata.name]
    out.print(Text(f"Kata {kata.number} · {kata.title}   ({s.state})", style="bold"))
    out.print(
        Text(
            f"Rules: {', '.join(r.id for r in kata.rules)} · read katas/{kata.name}/README.md",
            style="dim",
        )
    )
    out.print()
    task = section(kata.readme, "Your task")
    out.print(
        markdown(task)
        if task
        else Text(f"(katas/{kata.name}/README.md has no '## Your task' section)")
    )
    out.print()
    if run and (s.state == progress.NOT_STARTED or s.stale or s.state == progress.PARTIAL):
        out.print(Text(f"Running the specs of kata {kata.number} ...", style="dim"))
        records, output = run_kata(kata)
        show_run(kata, records, output)
    elif s.failures:
        out.print(
            Text(
                f"Current failures ({len(s.failures)} of {s.total} specs, from your last run):",
                style="bold",
            )
        )
        out.print()
        show_failure(s.failures[0])
        if len(s.failures) > 1:
            out.print(Text(f"... and {len(s.failures) - 1} more", style="dim"))
    out.print()
    out.print(
        Text(
            f"`kata watch {kata.number}` re-runs the specs on every save · `kata hint {kata.number}` for a hint"
        )
    )


def watch_loop(
    kata: catalog.Kata,
    changes: Iterable[set] | None,
    run: Callable[[catalog.Kata], tuple[list[dict], str]] = run_kata,
    clear: bool = True,
    move_on: bool = True,
) -> int:
    """Run the kata, show the first failure, re-run on each batch of changes that touches one of
    its learner files; when it is solved, go on to the next unsolved kata (unless `move_on` is
    false). 0 when all are solved (or, without `move_on`, this one), 1 when the changes run out
    first. `changes` yields sets of (change, path), as watchfiles.watch does; None: run once.
    """
    while True:
        records, output = run(kata)
        solved = show_run(kata, records, output, clear=clear)
        if solved and not move_on:
            return 0
        if solved:
            nxt = first_unsolved(statuses(), after=kata.name)
            if nxt is None:
                out.print(
                    Text("Every kata is solved. `kata grade` shows the score.", style="bold green")
                )
                return 0
            out.print(Text(f"On to kata {nxt.number} · {nxt.title}.", style="bold"))
            kata = nxt
            clear = False  # keep the "solved" line on screen above the next kata
            continue
        if changes is None:
            return 1
        learner = {(kata.path / rel).resolve() for rel in kata.learner_files}
        out.print()
        out.print(
            Text(
                f"Save {', '.join(kata.learner_files)} to re-run · `kata hint {kata.number}` for a hint · Ctrl-C stops",
                style="dim",
            )
        )
        for batch in changes:
            if any(Path(path).resolve() in learner for _, path in batch):
                clear = True
                break
        else:
            return 1


@app.command("watch")
def watch(
    kata: Optional[str] = typer.Argument(
        None, metavar="[NN]", help="kata number (default: the first unsolved one)"
    ),
    poll: bool = typer.Option(
        False,
        "--poll",
        help="poll for changes (WSL, network or container mounts where events do not arrive)",
    ),
    once: bool = typer.Option(
        False, "--once", help="run the specs once, show the first failure and stop"
    ),
) -> None:
    """Re-run a kata's specs each time you save one of its files."""
    if kata is not None:
        target = find(kata)
    else:
        target = first_unsolved(statuses())
        if target is None:
            out.print(
                Text("Every kata is solved. `kata grade` shows the score.", style="bold green")
            )
            return
    if once:
        raise typer.Exit(watch_loop(target, None, clear=False, move_on=False))

    changes = BackgroundChanges(catalog.KATAS, poll)  # watching from now: no save is missed
    try:
        code = watch_loop(target, changes)
    except KeyboardInterrupt:
        out.print()
        out.print(Text("Stopped watching.", style="dim"))
        code = 0
    finally:
        changes.stop()
    raise typer.Exit(code)


class BackgroundChanges:
    """watchfiles.watch in a thread, started at once, so a file saved while the specs run (or
    before the first wait) is queued and triggers a run, never lost. Iterate it like watch()."""

    def __init__(self, path: Path, poll: bool):
        import queue
        import threading

        import watchfiles

        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self._empty = queue.Empty

        def pump() -> None:
            try:
                for batch in watchfiles.watch(
                    path, force_polling=poll or None, stop_event=self._stop, raise_interrupt=False
                ):
                    self._queue.put(batch)
            except Exception as e:  # e.g. the katas/ folder vanished: reported by the main thread
                self._queue.put(e)
            self._queue.put(None)

        threading.Thread(target=pump, name="kata-watch", daemon=True).start()

    def __iter__(self):
        while True:
            try:
                item = self._queue.get(timeout=0.5)  # a timeout keeps Ctrl-C working everywhere
            except self._empty:
                continue
            if item is None:
                return
            if isinstance(item, Exception):
                raise item
            yield item

    def stop(self) -> None:
        self._stop.set()


@app.command("hint")
def hint(
    kata: str = typer.Argument(..., metavar="NN", help="kata number, e.g. 01"),
    all_: bool = typer.Option(False, "--all", help="show again every hint seen so far"),
) -> None:
    """The next hint of the kata's ladder (it remembers how far you went)."""
    target = find(kata)
    hints = hints_of(target)
    if not hints:
        raise Fail(
            f"kata {target.number} has no hints (its README.md has no numbered list under '## Hints')",
            1,
        )
    root = catalog.ROOT
    seen = min(progress.hints_seen(root, target.name, warn=warn), len(hints))
    if all_:
        if not seen:
            out.print(
                Text(f"No hint of kata {target.number} seen yet: `kata hint {target.number}`.")
            )
        for i in range(seen):
            out.print(Text(f"Hint {i + 1} of {len(hints)}", style="bold"))
            out.print(markdown(hints[i]))
        return
    if seen >= len(hints):
        out.print(
            Text(
                f"No more hints for kata {target.number}: you have seen all {len(hints)}. "
                f"`kata hint {target.number} --all` shows them again; the reference solution is in "
                f"solutions/{target.name}/."
            )
        )
        return
    out.print(
        Text(f"Hint {seen + 1} of {len(hints)} · kata {target.number} {target.title}", style="bold")
    )
    out.print(markdown(hints[seen]))
    try:
        progress.set_hints_seen(root, target.name, seen + 1)
    except OSError as e:
        warn(f"could not remember this hint in .kata/ ({e.strerror})")


def pristine_source(kata: catalog.Kata, rel: str, manifest: dict | None) -> tuple[str | None, str]:
    """(pristine text, where from): the manifest's copy first, else git's HEAD, else None."""
    from kata_tools import manifest as manifest_module

    if manifest is not None:
        text = manifest_module.pristine_text(kata.name, rel, manifest)
        if text is not None:
            return text, manifest_module.MANIFEST_FILE
    path = f"katas/{kata.name}/{rel}"
    try:
        proc = subprocess.run(
            ["git", "show", f"HEAD:{path}"], cwd=catalog.ROOT, capture_output=True, timeout=20
        )
    except (OSError, subprocess.SubprocessError):
        return None, ""
    if proc.returncode == 0:
        return proc.stdout.decode("utf-8", errors="replace"), "git HEAD"
    return None, ""


@app.command("reset")
def reset(
    kata: str = typer.Argument(..., metavar="NN", help="kata number, e.g. 01"),
    yes: bool = typer.Option(False, "--yes", "-y", help="do not ask"),
) -> None:
    """Put the kata's learner files back as they were given (your version is kept in .kata/backup/)."""
    target = find(kata)
    manifest = pristine_manifest()
    files = (
        sorted(manifest["katas"][target.name]["learner_files"])
        if manifest and target.name in manifest.get("katas", {})
        else target.learner_files
    )
    if not files:
        raise Fail(
            f"kata {target.number} has no learner files to reset (no solutions/{target.name}/ and no manifest entry)",
            1,
        )
    todo, impossible = [], []
    for rel in files:
        text, origin = pristine_source(target, rel, manifest)
        if text is None:
            impossible.append(f"katas/{target.name}/{rel}")
            continue
        path = target.path / rel
        current = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
        if current != text:
            todo.append((rel, path, text, origin))
    if impossible:
        raise Fail(
            f"cannot reset {', '.join(impossible)}: no pristine copy (not in kata_tools/manifest.json, "
            f"and not in git); copy it from a fresh copy of the course",
            1,
        )
    if not todo:
        out.print(Text(f"Kata {target.number}'s files are already as given: nothing to reset."))
        return
    names = ", ".join(f"katas/{target.name}/{rel}" for rel, *_ in todo)
    if not yes:
        if not sys.stdin.isatty():
            raise Fail(f"kata reset overwrites {names}; with no terminal to ask, add --yes", 2)
        if not typer.confirm(
            f"Overwrite {names} with the file(s) as given? Your version goes to .kata/backup/",
            default=False,
        ):
            out.print(Text("Nothing changed."))
            raise typer.Exit(1)
    backup = (
        catalog.ROOT / progress.STATE_DIR / "backup" / target.name / time.strftime("%Y%m%d-%H%M%S")
    )
    for rel, path, text, origin in todo:
        if path.is_file():
            (backup / rel).parent.mkdir(parents=True, exist_ok=True)
            (backup / rel).write_bytes(path.read_bytes())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        out.print(Text(f"restored katas/{target.name}/{rel} (from {origin})"))
    if backup.exists():
        out.print(
            Text(f"your version: {backup.relative_to(catalog.ROOT).as_posix()}/", style="dim")
        )
    progress.forget(catalog.ROOT, target.name)


def _kata_names(keys: list[str], names: list[str]) -> list[str]:
    chosen = []
    for key in keys:
        key = key.strip().rstrip("/").split("/")[-1]
        match = [
            n
            for n in names
            if key in (n, n[:2], n[3:]) or (key.isdigit() and int(key) == int(n[:2]))
        ]
        if not match:
            raise Fail(
                f"no kata {key!r} in the course; the katas are: {', '.join(n[:2] for n in names)}",
                2,
            )
        chosen.append(match[0])
    return chosen


@app.command("grade")
def grade(
    katas: Optional[list[str]] = typer.Argument(
        None, metavar="[NN]...", help="grade only these katas (default: all)"
    ),
    out_dir: Path = typer.Option(
        Path("grade-report"), "--out", "-o", help="folder for report.json, summary.md, junit.xml"
    ),
    source: Optional[Path] = typer.Option(
        None,
        "--from",
        help="grade the learner files of this course checkout with this tree's pristine specs",
    ),
    gradescope: Optional[Path] = typer.Option(
        None, "--gradescope", help="also write Gradescope's results.json here"
    ),
    expect_manifest: Optional[str] = typer.Option(
        None,
        "--expect-manifest",
        envvar="KATA_MANIFEST_DIGEST",
        help="the manifest digest of your pristine course: any other scores 0",
    ),
) -> None:
    """Grade each kata in its own bounded pytest process (exit 1 below full marks)."""
    from kata_tools import grading

    try:
        names = sorted(grading.manifest.load(catalog.ROOT).get("katas", {}))
    except grading.manifest.ManifestError as e:
        raise Fail(f"cannot grade: {e}", 2) from None
    only = _kata_names(katas, names) if katas else None
    if source is not None and not (source / "katas").is_dir():
        raise Fail(f"--from {source}: no katas/ folder there", 2)
    out_path = out_dir if out_dir.is_absolute() else Path.cwd() / out_dir
    try:
        report = grading.grade(
            catalog.ROOT,
            out_path,
            only,
            source.resolve() if source else None,
            expect_manifest,
            gradescope,
        )
    except grading.GradingError as e:
        raise Fail(str(e), 2) from None

    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("#", "Kata", "Points", "Status", "Specs", "Rules not met yet"):
        table.add_column(column)
    for k in report["katas"]:
        style = {"solved": "green", "failing": "red", "tampered": "red", "missing": "red"}.get(
            k["status"], "dim"
        )
        unmet = " ".join(r["rule"] for r in k["rules"] if r["status"] != "passed") or "-"
        table.add_row(
            k["number"],
            k["title"],
            f"{k['score']:g} / {k['max_score']:g}",
            Text(k["status"], style=style),
            f"{k['passed']}/{k['total']}",
            unmet,
        )
    out.print(table)
    counted = [c for c in report["manifest"]["changes"] if c["counted"]]
    shown = [c for c in report["manifest"]["changes"] if not c["counted"]]
    if counted:
        out.print(Text("Changed course files (the katas they affect score 0):", style="bold red"))
        for c in counted:
            out.print(
                Text(
                    f"  {c['change']}: {c['path']} ({', '.join(c['katas']) or 'CI templates only'})"
                )
            )
    if shown:
        out.print(
            Text(
                "Changed in the learner's checkout, ignored (graded with the pristine specs):",
                style="bold",
            )
        )
        for c in shown:
            out.print(Text(f"  {c['change']}: {c['path']}"))
    out.print(
        Text(
            f"Score: {report['score']:g} / {report['max_score']:g} ({report['percent']:g}%) · "
            f"reports in {out_dir}/",
            style="bold",
        )
    )
    raise typer.Exit(0 if report["score"] == report["max_score"] else 1)


# --- entry point -------------------------------------------------------------------------------


_PASS_THROUGH = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": [],  # the command's own --help
}


@app.command("release", context_settings=_PASS_THROUGH)
def release(ctx: typer.Context) -> None:
    """Write the student release (no solutions/) for GitHub Classroom (`kata release --help`)."""
    from kata_tools import release as release_module

    raise typer.Exit(release_module.main(list(ctx.args), prog="kata release"))


@app.command("class-report", context_settings=_PASS_THROUGH)
def class_report(ctx: typer.Context) -> None:
    """Turn a class's report.json files into one HTML page (`kata class-report --help`)."""
    from kata_tools import class_report as class_report_module

    raise typer.Exit(class_report_module.main(list(ctx.args), prog="kata class-report"))


@app.command(
    "lab",
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],  # `kata lab --help` is the lab's own help
    },
)
def lab(ctx: typer.Context) -> None:
    """Measure the notes' timelines on a real server and database (`kata lab --help`)."""
    from kata_tools.lab import main as lab_main  # imports uvicorn and friends: only when asked

    raise typer.Exit(lab_main(list(ctx.args), prog="kata lab"))


def find_root(start: Path) -> Path | None:
    """The course folder holding `start`: the nearest with katas/ and kata_tools/."""
    for folder in (start, *start.parents):
        if (folder / "katas").is_dir() and (folder / "kata_tools" / "__init__.py").is_file():
            return folder
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = find_root(Path.cwd().resolve())
    if (
        root is not None
        and root != catalog.ROOT.resolve()
        and not os.environ.get("KATA_ROOT_CHOSEN")
    ):
        # Run inside another copy of the course (a fresh clone, a temp copy): use that copy's
        # own kata_tools, not the one this command was installed from.
        env = dict(os.environ, KATA_ROOT_CHOSEN="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
        try:
            return subprocess.call([sys.executable, "-m", "kata_tools.cli", *args], env=env)
        except KeyboardInterrupt:
            return 130
    try:
        app(args=args, prog_name="kata")  # standalone: usage errors print their help, exit 2
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Fail as e:
        err.print(f"error: {e}", style="red", soft_wrap=True)
        return e.code
    except KeyboardInterrupt:
        err.print("stopped")
        return 130
    except (catalog.CatalogError, OSError) as e:
        err.print(f"error: {e}", style="red", soft_wrap=True)
        return 1
    except Exception as e:  # a bug of ours: one line, not a traceback, unless asked
        if os.environ.get("KATA_DEBUG"):
            raise
        err.print(
            f"error: {type(e).__name__}: {e} (KATA_DEBUG=1 shows the traceback)",
            style="red",
            soft_wrap=True,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
