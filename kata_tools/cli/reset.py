"""`kata reset NN`: put a kata's learner files back as they were given."""

from __future__ import annotations

import sys
import time

import typer

from kata_tools import catalog, progress
from kata_tools.cli import course
from kata_tools.cli.ui import fail, line, say


def reset(
    kata: str = typer.Argument(..., metavar="NN"),
    yes: bool = typer.Option(False, "--yes", "-y"),
) -> None:
    """Put the kata's learner files back as they were given (your version is kept in .kata/backup/)."""
    target = course.find(kata)
    manifest = course.pristine_manifest()
    files = (
        sorted(manifest["katas"][target.name]["learner_files"])
        if manifest and target.name in manifest.get("katas", {})
        else target.learner_files
    )
    if not files:
        raise fail("reset-no-files", 1, number=target.number, name=target.name)
    todo, impossible = [], []
    for rel in files:
        text, origin = course.pristine_source(target, rel, manifest)
        if text is None:
            impossible.append(f"katas/{target.name}/{rel}")
            continue
        path = target.path / rel
        current = path.read_text(encoding="utf-8", errors="replace") if path.is_file() else None
        if current != text:
            todo.append((rel, path, text, origin))
    if impossible:
        raise fail("reset-impossible", 1, files=", ".join(impossible))
    if not todo:
        line("reset-nothing", number=target.number)
        return
    names = ", ".join(f"katas/{target.name}/{rel}" for rel, *_ in todo)
    if not yes:
        if not sys.stdin.isatty():
            raise fail("reset-needs-yes", 2, files=names)
        if not typer.confirm(say("reset-confirm", files=names), default=False):
            line("nothing-changed")
            raise typer.Exit(1)
    backup = catalog.ROOT / progress.STATE_DIR / "backup" / target.name / time.strftime("%Y%m%d-%H%M%S")
    for rel, path, text, origin in todo:
        if path.is_file():
            (backup / rel).parent.mkdir(parents=True, exist_ok=True)
            (backup / rel).write_bytes(path.read_bytes())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        line("reset-restored", path=f"katas/{target.name}/{rel}", origin=origin)
    if backup.exists():
        line("reset-backup", style="dim", path=backup.relative_to(catalog.ROOT).as_posix())
    progress.forget(catalog.ROOT, target.name)
