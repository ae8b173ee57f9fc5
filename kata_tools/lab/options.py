"""The lab's options, as a typer command like every other `kata` command, checked before anything runs.

A bad option is one line and exit code 2 (`UsageError`), in the current language; `--help` lists
the modes. `resolve_engine` turns `--loop auto` / `--http auto` into the fastest the platform has.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from dataclasses import dataclass
from pathlib import Path

import typer

from kata_tools import helpformat, i18n
from kata_tools.lab.modes import MODES, MSG, Settings


class UsageError(Exception):
    """A bad option: reported in one line, exit code 2."""


@dataclass
class Options:
    settings: Settings
    modes: list[str]
    output: str
    json: str | None
    port: int
    rows: int
    loop: str  # "asyncio" or "uvloop", resolved
    http: str  # "h11" or "httptools", resolved
    scale: str  # "each" or "shared"


def has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def resolve_engine(loop: str, http: str) -> tuple[str, str]:
    """auto: uvloop and httptools where they are installed (uvloop does not exist on Windows)."""
    if loop == "auto":
        loop = "uvloop" if sys.platform != "win32" and has("uvloop") else "asyncio"
    elif loop == "uvloop" and not has("uvloop"):
        raise UsageError(MSG("no-uvloop"))
    if http == "auto":
        http = "httptools" if has("httptools") else "h11"
    elif http == "httptools" and not has("httptools"):
        raise UsageError(MSG("no-httptools"))
    return loop, http


def _choice(option: str, value: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise UsageError(MSG("bad-choice", option=option, choices=", ".join(choices), value=value))
    return value


def check(
    clients, latency, pool_size, threads, modes, output, json_path, port, rows, loop, http, scale
) -> Options:
    if clients <= 0:
        raise UsageError(MSG("bad-count", option="-n/--clients", value=clients))
    if not math.isfinite(latency) or latency < 0:
        raise UsageError(MSG("bad-latency", value=f"{latency:g}"))
    for option, value in (("--pool-size", pool_size), ("--threads", threads), ("--rows", rows)):
        if value is not None and value <= 0:
            raise UsageError(MSG("bad-count", option=option, value=value))
    if not 0 <= port <= 65535:
        raise UsageError(MSG("bad-port", value=port))
    names = list(MODES) if modes == "all" else [m.strip() for m in modes.split(",") if m.strip()]
    unknown = [m for m in names if m not in MODES]
    if unknown or not names:
        raise UsageError(
            MSG("bad-mode", modes=", ".join(map(repr, unknown)) or repr(modes), known=", ".join(MODES))
        )
    for option, path in (("-o/--output", output), ("--json", json_path)):
        if path is not None and not Path(path).resolve().parent.is_dir():
            raise UsageError(MSG("bad-folder", option=option, folder=Path(path).parent))
    loop, http = resolve_engine(
        _choice("--loop", loop, ("auto", "asyncio", "uvloop")),
        _choice("--http", http, ("auto", "h11", "httptools")),
    )
    return Options(
        settings=Settings(clients, latency, pool_size, threads),
        modes=list(dict.fromkeys(names)),
        output=output,
        json=json_path,
        port=port,
        rows=rows,
        loop=loop,
        http=http,
        scale=_choice("--scale", scale, ("each", "shared")),
    )


def command(prog: str, run):
    """The lab as a click command (built with typer); `run(options)` returns the exit code."""
    app = typer.Typer(add_completion=False, rich_markup_mode=None)
    # "\b": click keeps these lines as they are; each mode is wrapped here, under its blurb
    modes = [
        helpformat.wrap(f"{m.blurb} ({m.rule})", 74, f"  {m.name:<20}", " " * 23) for m in MODES.values()
    ]
    epilog = "\b\n" + MSG("help-modes-title") + "\n" + "\n".join(modes)

    @app.command(help=MSG("help"), epilog=epilog, context_settings={"help_option_names": ["-h", "--help"]})
    def lab(
        clients: int = typer.Option(100, "-n", "--clients", metavar="N", help=MSG("help-clients")),
        latency: float = typer.Option(0.1, "-t", "--latency", metavar="T", help=MSG("help-latency")),
        pool_size: int = typer.Option(None, "--pool-size", metavar="P", help=MSG("help-pool")),
        threads: int = typer.Option(40, "--threads", metavar="K", help=MSG("help-threads")),
        modes: str = typer.Option(
            "all", "--modes", metavar="LIST", help=MSG("help-modes", modes=", ".join(MODES))
        ),
        output: str = typer.Option(
            "lab-timeline.svg", "-o", "--output", metavar="FILE", help=MSG("help-output")
        ),
        json_path: str = typer.Option(None, "--json", metavar="FILE", help=MSG("help-json")),
        port: int = typer.Option(0, "--port", help=MSG("help-port")),
        rows: int = typer.Option(25, "--rows", help=MSG("help-rows")),
        loop: str = typer.Option("auto", "--loop", help=MSG("help-loop")),
        http: str = typer.Option("auto", "--http", help=MSG("help-http")),
        scale: str = typer.Option("each", "--scale", help=MSG("help-scale")),
        lang: str = typer.Option(None, "--lang", help=MSG("help-lang")),
    ) -> int:
        if lang:
            i18n.set_lang(lang)
        options = check(
            clients, latency, pool_size, threads, modes, output, json_path, port, rows, loop, http, scale
        )
        return run(options)

    cmd = typer.main.get_command(app)
    cmd.name = prog
    helpformat.by_display_width(cmd)
    helpformat.help_option_says(cmd, MSG("help-help"))
    return cmd


def invoke(argv: list[str] | None, prog: str, run) -> int:
    """Parse `argv` and run; a bad option is one line on stderr and exit code 2."""
    args = sys.argv[1:] if argv is None else list(argv)
    if "--lang" in args[:-1]:  # the help texts, too, are in the chosen language
        i18n.set_lang(args[args.index("--lang") + 1])
    try:
        result = command(prog, run).main(args=args, prog_name=prog, standalone_mode=False)
    except UsageError as e:
        print(MSG("error", prog=prog, message=e), file=sys.stderr)
        return 2
    except typer.Exit as e:  # --help
        return e.exit_code
    except typer.Abort:
        return 130
    except Exception as e:
        # click's UsageError (typer 0.20 and later ship their own copy of click, so the class
        # is matched by what it does, not imported)
        if not hasattr(e, "format_message") or not hasattr(e, "exit_code"):
            raise
        print(MSG("error", prog=prog, message=e.format_message()), file=sys.stderr)
        return 2
    return result if isinstance(result, int) else 0
