"""The instructor's commands: `kata grade` (see kata_tools/grading/), `kata release`, `kata class-report`, and `kata lab`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table
from rich.text import Text

from kata_tools import catalog
from kata_tools.cli.ui import Fail, fail, line, out, say

STATUS_STYLE = {"solved": "green", "failing": "red", "tampered": "red", "missing": "red", "timed out": "red"}
STATUS_WORD = {  # grading's kata statuses (kata_tools.results) -> message key
    "solved": "state-solved",
    "failing": "state-failing",
    "partly run": "state-partial",
    "not run": "state-not-run",
    "missing": "state-missing",
    "tampered": "state-tampered",
    "timed out": "state-timed-out",
}


def kata_names(keys: list[str], names: list[str]) -> list[str]:
    chosen = []
    for key in keys:
        name = catalog.match_kata_name(key, names)
        if name is None:
            shown = key.strip().rstrip("/").split("/")[-1]
            raise fail("grade-no-kata", 2, key=shown, names=", ".join(n[:2] for n in names))
        chosen.append(name)
    return chosen


def grade(
    katas: list[str] | None = typer.Argument(None, metavar="[NN]..."),
    out_dir: Path = typer.Option(Path("grade-report"), "--out", "-o"),
    source: Path | None = typer.Option(
        None,
        "--from",
    ),
    gradescope: Path | None = typer.Option(None, "--gradescope"),
    expect_manifest: str | None = typer.Option(
        None,
        "--expect-manifest",
        envvar="KATA_MANIFEST_DIGEST",
    ),
    allow_solutions: bool = typer.Option(
        False,
        "--allow-solutions",
        help="with --from, grade even if the graded code could read a solutions/ folder "
        "(marks not to record; the report lists the folders)",
    ),
) -> None:
    """Grade each kata in its own bounded pytest process (exit 1 below full marks)."""
    from kata_tools import grading

    try:
        names = sorted(grading.manifest.load(catalog.ROOT).get("katas", {}))
    except grading.manifest.ManifestError as e:
        raise fail("grade-cannot", 2, why=e) from None
    only = kata_names(katas, names) if katas else None
    if source is not None and not (source / "katas").is_dir():
        raise fail("grade-from-no-katas", 2, path=source)
    out_path = out_dir if out_dir.is_absolute() else Path.cwd() / out_dir
    try:
        report = grading.grade(
            catalog.ROOT,
            out_path,
            only,
            source.resolve() if source else None,
            expect_manifest,
            gradescope,
            allow_solutions,
        )
    except grading.GradingError as e:
        raise Fail(str(e), 2) from None

    table = Table(box=None, pad_edge=False, header_style="bold")
    for key in ("col-number", "col-kata", "col-points", "col-status", "col-specs", "col-unmet"):
        table.add_column(say(key))
    for k in report["katas"]:
        unmet = " ".join(r["rule"] for r in k["rules"] if r["status"] != "passed") or "-"
        table.add_row(
            k["number"],
            k["title"],
            f"{k['score']:g} / {k['max_score']:g}",
            Text(
                say(STATUS_WORD[k["status"]]) if k["status"] in STATUS_WORD else k["status"],
                style=STATUS_STYLE.get(k["status"], "dim"),
            ),
            f"{k['passed']}/{k['total']}",
            unmet,
        )
    out.print(table)
    if report["solutions_reachable"]:
        from kata_tools import i18n

        folders = ", ".join(report["solutions_reachable"][:3])
        out.print(Text(i18n.tool("grading")("solutions-warning", folders=folders), style="bold red"))
    for k in report["katas"]:  # why a kata scored 0 despite its specs (timed out, tampered, ...)
        if k["message"]:
            out.print(Text(f"  {k['number']}: {k['message']}", style="red"))
    if report.get("review"):
        from kata_tools import i18n

        out.print(
            Text(i18n.tool("grading")("cli-review", count=len(report["review"]), out=out_dir), style="yellow")
        )
    counted = [c for c in report["manifest"]["changes"] if c["counted"]]
    shown = [c for c in report["manifest"]["changes"] if not c["counted"]]
    if counted:
        line("grade-changed", style="bold red")
        for c in counted:
            katas_hit = ", ".join(c["katas"]) or say("grade-ci-only")
            out.print(Text(f"  {c['change']}: {c['path']} ({katas_hit})"))
    if shown:
        line("grade-ignored", style="bold")
        for c in shown:
            out.print(Text(f"  {c['change']}: {c['path']}"))
    line(
        "grade-score",
        style="bold",
        score=f"{report['score']:g}",
        max=f"{report['max_score']:g}",
        percent=f"{report['percent']:g}",
        out=out_dir,
    )
    raise typer.Exit(0 if report["score"] == report["max_score"] else 1)


def lab(ctx: typer.Context) -> None:
    """Measure the notes' timelines on a real server and database (`kata lab --help`)."""
    from kata_tools.lab import main as lab_main  # imports uvicorn and friends: only when asked

    raise typer.Exit(lab_main(list(ctx.args), prog="kata lab"))


PASS_THROUGH = {
    "allow_extra_args": True,
    "ignore_unknown_options": True,
    "help_option_names": [],  # the command's own --help
}


def release(ctx: typer.Context) -> None:
    """Write the student release (no solutions/) for GitHub Classroom (`kata release --help`)."""
    from kata_tools import release as release_module  # the grading engineer's module

    raise typer.Exit(release_module.main(list(ctx.args), prog="kata release"))


def class_report(ctx: typer.Context) -> None:
    """Turn a class's report.json files into one HTML page (`kata class-report --help`)."""
    from kata_tools import class_report as class_report_module  # the grading engineer's module

    raise typer.Exit(class_report_module.main(list(ctx.args), prog="kata class-report"))
