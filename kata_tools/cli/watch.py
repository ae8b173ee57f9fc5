"""`kata watch`: re-run a kata's specs on every save, move on when it is solved.

One database stays warm for the whole watch session (started the first time a kata that needs
one is watched) and is handed to every run through KATA_DATABASE_URL: each run's specs still
get fresh copies, but no run pays for starting a server. From the second run on, each run is a
fork of a process that has imported the libraries already (kata_tools.preloaded, on Linux).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterable
from pathlib import Path

import typer

from kata_tools import catalog, preloaded, runner
from kata_tools.cli import course
from kata_tools.cli.ui import all_solved, line, out, say, show_run, warn

Run = Callable[[catalog.Kata], tuple[list[dict], str]]


def watch_loop(
    kata: catalog.Kata,
    changes: Iterable[set] | None,
    run: Run = course.run_kata,
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
            nxt = course.first_unsolved(course.statuses(), after=kata.name)
            if nxt is None:
                all_solved()
                return 0
            line("on-to", style="bold", number=nxt.number, title=nxt.title)
            kata = nxt
            clear = False  # keep the "solved" line on screen above the next kata
            continue
        if changes is None:
            return 1
        learner = {(kata.path / rel).resolve() for rel in kata.learner_files}
        out.print()
        line("watch-footer", style="dim", files=", ".join(kata.learner_files), number=kata.number)
        for batch in changes:
            if any(Path(path).resolve() in learner for _, path in batch):
                clear = True
                break
        else:
            return 1


def warm_database():
    """The database kept warm for a watch session (runner.shared_database), or {} with a warning."""
    return runner.shared_database(warn=lambda why: warn(say("watch-no-warm-db", why=why)))


class Session:
    """What a watch session keeps between runs: pytest args, the warm database, and a process
    with the libraries imported that forks each re-run (kata_tools.preloaded, Linux only)."""

    def __init__(self, pytest_args: list[str]):
        self.pytest_args = pytest_args
        self.stack = contextlib.ExitStack()
        self.env: dict[str, str] | None = None
        self.preloaded: preloaded.Preloaded | None = None

    def run(self, kata: catalog.Kata) -> tuple[list[dict], str]:
        if kata.needs_database and self.env is None and "KATA_DATABASE_URL" not in course.RUN_ENV:
            self.env = self.stack.enter_context(warm_database())
            course.RUN_ENV.update(self.env)
        result = course.run_kata(kata, self.pytest_args, preloaded=self.preloaded)
        if self.preloaded is None and preloaded.SUPPORTED and os.environ.get("KATA_PRELOAD", "1") != "0":
            # Started after the first run, not beside it: the two would share the cores. It is
            # ready long before the learner saves again (about a second of imports).
            self.preloaded = preloaded.Preloaded(catalog.ROOT, course.run_env())
            self.stack.callback(self.preloaded.close)
        return result

    def close(self) -> None:
        self.stack.close()


def watch(
    kata: str | None = typer.Argument(None, metavar="[NN]"),
    pytest_args: list[str] | None = typer.Argument(None, metavar="[-- PYTEST ARGS]"),
    poll: bool = typer.Option(
        False,
        "--poll",
    ),
    once: bool = typer.Option(False, "--once"),
) -> None:
    """Re-run a kata's specs each time you save one of its files."""
    extra = list(pytest_args or [])
    if kata is not None and kata.startswith("-"):  # `kata watch -- --lf`: no NN, only pytest args
        extra, kata = [kata, *extra], None
    target = course.current(kata)
    if target is None:
        all_solved()
        return
    session = Session(extra)
    try:
        if once:
            raise typer.Exit(watch_loop(target, None, run=session.run, clear=False, move_on=False))
        changes = BackgroundChanges(catalog.KATAS, poll)  # watching from now: no save is missed
        try:
            code = watch_loop(target, changes, run=session.run)
        except KeyboardInterrupt:
            out.print()
            line("watch-stopped", style="dim")
            code = 0
        finally:
            changes.stop()
    finally:
        session.close()
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
