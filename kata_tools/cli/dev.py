"""`kata dev`: the contributor's commands (the work is done in kata_tools/dev/).

kata dev new NN_name     scaffold a kata: every file it needs, each with a TODO
kata dev check [NN]...   what the self-tests prove, for these katas (default: all)
kata dev sync            rewrite every generated file (README blocks, the manifest)
"""

from __future__ import annotations

import typer

from kata_tools import catalog
from kata_tools.cli.ui import fail, line, out

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("new")
def new(name: str = typer.Argument(..., metavar="NN_name")) -> None:
    """Scaffold a kata: folders, kata.toml, READMEs, messages, stub, solution, spec, mistakes."""
    from kata_tools.dev import scaffold

    try:
        written = scaffold.new(catalog.ROOT, name)
    except scaffold.ScaffoldError as e:
        raise fail("error", 2, message=str(e)) from None
    for path in written:
        line("dev-wrote", path=path.relative_to(catalog.ROOT).as_posix())
    line("dev-next", number=name[:2])


@app.command("check")
def check(
    katas: list[str] | None = typer.Argument(None, metavar="[NN]..."),
    quick: bool = typer.Option(False, "--quick"),
) -> None:
    """Run, for these katas, exactly what the self-tests prove; one line per problem."""
    from kata_tools.dev import check as checker

    chosen = [catalog.find_kata(k) for k in katas] if katas else catalog.katas()
    problems = checker.check(chosen, run_specs=not quick, report=lambda key, **f: line(key, style="dim", **f))
    for problem in problems:
        out.print(problem, soft_wrap=True, markup=False)
    line("dev-summary", problems=len(problems), katas=len(chosen))
    raise typer.Exit(1 if problems else 0)


@app.command("sync")
def sync(
    check_only: bool = typer.Option(False, "--check"),
) -> None:
    """Rewrite every generated file: the README blocks and the manifest."""
    from kata_tools.dev import sync as syncer

    lines, stale = syncer.sync(catalog.ROOT, write=not check_only)
    for key, path in lines:
        line(key, path=path) if path else line(key)
    raise typer.Exit(1 if (check_only and stale) else 0)
