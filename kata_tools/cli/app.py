"""The `kata` command line: the Typer app, its global options, the entry point.

    kata                 watch the current kata (the first unsolved), as rustlings does
    kata list            every kata, its rules and state, from the last results (runs nothing)
    kata next            the first unsolved kata: its task and current failures
    kata watch [NN]      re-run a kata's specs on every save; moves on when it is solved
    kata hint [NN]       the next hint of the ladder of the rule failing now
    kata reset NN        put the kata's learner files back as they were given
    kata lang [ko|en]    show or remember the language (also: --lang, KATA_LANG, the locale)
    kata grade           score every kata (instructors, CI); see kata_tools/grading.py
    kata release DIR     the student release for GitHub Classroom (no solutions/)
    kata class-report    a class's grade reports as one HTML page
    kata lab             measure the notes' timelines
    kata dev ...         for contributors: new, check, sync (see CONTRIBUTING.md)

Exit codes: 0 ok, 1 specs failing or a grade below the maximum, 2 a usage error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import typer

from kata_tools import catalog, helpformat, i18n
from kata_tools.cli import commands, dev, grade, helptexts, reset, watch
from kata_tools.cli.ui import Fail, err, out, say

app = typer.Typer(
    add_completion=True,  # `kata --install-completion`, `kata --show-completion`
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def version() -> str:
    from importlib import metadata

    try:
        return metadata.version("async-fastapi-katas")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _show_version(value: bool) -> None:
    if value:
        out.print(f"kata {version()}")
        raise typer.Exit(0)


def _choose_lang(value: str | None) -> str | None:
    if value is not None:
        if i18n.normalize(value) is None:
            raise typer.BadParameter(say("lang-unknown", lang=value, langs=", ".join(i18n.LANGS)))
        i18n.set_lang(value)  # also KATA_LANG, so every pytest run of this command speaks it
    return value


@app.callback(invoke_without_command=True)
def root(
    ctx: typer.Context,
    lang: str | None = typer.Option(
        None,
        "--lang",
        metavar="ko|en",
        callback=_choose_lang,
        is_eager=True,
    ),
    show_version: bool = typer.Option(False, "--version", "-V", callback=_show_version, is_eager=True),
) -> None:
    """Katas on concurrency in FastAPI and async SQLAlchemy."""
    if ctx.invoked_subcommand is None:  # bare `kata`: what a learner most likely wants
        watch.watch(kata=None, pytest_args=None, poll=False, once=False)


app.command("list")(commands.list_katas)
app.command("next")(commands.next_kata)
app.command("watch")(watch.watch)
app.command("hint")(commands.hint)
app.command("reset")(reset.reset)
app.command("lang")(commands.lang)
app.command("grade")(grade.grade)
app.command(
    "lab",
    context_settings={
        "allow_extra_args": True,
        "ignore_unknown_options": True,
        "help_option_names": [],  # `kata lab --help` is the lab's own help
    },
)(grade.lab)
app.command("release", context_settings=grade.PASS_THROUGH)(grade.release)
app.command("class-report", context_settings=grade.PASS_THROUGH)(grade.class_report)
app.add_typer(dev.app, name="dev")


def find_root(start: Path) -> Path | None:
    """The course folder holding `start`: the nearest with katas/ and kata_tools/."""
    for folder in (start, *start.parents):
        if (folder / "katas").is_dir() and (folder / "kata_tools" / "__init__.py").is_file():
            return folder
    return None


def lang_in(args: list[str]) -> str | None:
    """The value of a `--lang` among the arguments (before `--`), read before the help is built."""
    for n, arg in enumerate(args):
        if arg == "--":
            break
        if arg == "--lang" and n + 1 < len(args):
            return args[n + 1]
        if arg.startswith("--lang="):
            return arg.split("=", 1)[1]
    return None


def command():
    """The click command of `app`, its help texts in the current language (kata_tools/cli/helptexts.py)."""
    cmd = typer.main.get_command(app)
    helptexts.localize(cmd)
    helpformat.by_display_width(cmd)
    return cmd


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root_dir = find_root(Path.cwd().resolve())
    if root_dir is not None and root_dir != catalog.ROOT.resolve() and not os.environ.get("KATA_ROOT_CHOSEN"):
        # Run inside another copy of the course (a fresh clone, a temp copy): use that copy's
        # own kata_tools, not the one this command was installed from.
        env = dict(os.environ, KATA_ROOT_CHOSEN="1")
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root_dir), env.get("PYTHONPATH")]))
        try:
            return subprocess.call([sys.executable, "-m", "kata_tools.cli", *args], env=env)
        except KeyboardInterrupt:
            return 130
    if i18n.normalize(lang_in(args)):  # else `--lang`'s callback says what is wrong
        i18n.set_lang(lang_in(args))
    try:
        command()(args=args, prog_name="kata")  # standalone: usage errors print their help, exit 2
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except Fail as e:
        err.print(say("error", message=str(e)), style="red", soft_wrap=True)
        return e.code
    except KeyboardInterrupt:
        err.print(say("stopped"))
        return 130
    except (catalog.CatalogError, i18n.I18nError, OSError) as e:
        err.print(say("error", message=str(e)), style="red", soft_wrap=True)
        return 1
    except Exception as e:  # a bug of ours: one line, not a traceback, unless asked
        if os.environ.get("KATA_DEBUG"):
            raise
        err.print(say("bug", kind=type(e).__name__, message=str(e)), style="red", soft_wrap=True)
        return 1
    return 0
