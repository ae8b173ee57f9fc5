"""The one inner pytest run: a kata's specs in a pytest subprocess, and the report it leaves.

Used by the `kata` command (watch, next), by grading (`kata grade`) and by the project's own tests.
Each is exactly what a learner runs (`python -m pytest katas/NN_name`), from the course root:

    from kata_tools import runner
    run = runner.run(["katas/01_event_loop"])                       # the learner's files
    run = runner.run(runner.targets(katas), solutions=True)          # the reference solutions
    run = runner.run(["katas/01_event_loop"], source=Path("copy"))   # copy/01_event_loop/...
    run.exit_code, run.output, run.records, run.timed_out, run.specs["katas/...::test_x"]

Contract (every caller gets the same):

- `python -m pytest <targets> -q [--solutions] [--kata-source DIR] --kata-report FILE <args>`,
  with `cwd=root` (default: this course's root) and the interpreter running this code.
- Environment: the caller's, minus KATA_SOLUTIONS and KATA_SOURCE (the run says what it runs),
  plus `env` (e.g. KATA_DATABASE_URL of a database shared by many runs), plus:
  PYTHONPYCACHEPREFIX=<a fresh temporary folder> (bytecode, Python's and pytest's rewritten
  specs, never lands in katas/, solutions/ or a copy, and a __pycache__ shipped with a learner's
  tree is never loaded in place of a spec; pass `pycache=` for a folder kept between runs; the
  libraries' bytecode is shared between runs either way: kata_tools.bytecode),
  PYTHONIOENCODING=utf-8 (Korean messages survive any console), KATA_LANG=`lang` when given.
- `progress=False` (the default, for grading and the self-tests): KATA_NO_PROGRESS=1 and
  `-o cache_dir=<the run's temporary folder>`, so the run never touches the learner's
  .kata/results.json or pytest's cache in .kata/pytest-cache (`-p no:cacheprovider` cannot be
  used: with --strict-config, pyproject's cache_dir is then an unknown option). `progress=True` (the `kata` command running the learner's own katas/): the run counts as
  the learner's, as a plain `pytest katas/NN` does.
- `preloaded` (a kata_tools.preloaded.Preloaded, `kata watch` on Linux): the run is a fork of a
  process that has the libraries imported already, with the same command line, environment and
  working directory; when it cannot fork, the run is the subprocess above.
- `timeout` (seconds, None: none) bounds the whole run: past it the run is stopped (SIGTERM, so
  pytest ends its session and stops its database; killed 10 s later if still alive) and the Run
  says `timed_out=True`, with a last line of output saying so.
- stdout and stderr are merged, in order, into `output` (decoded as UTF-8, errors replaced).
- The report is read safely: a missing, unreadable or malformed report gives `records=[]` and a
  one-line `report_problem`; records that are not dicts are dropped; a record's `doc` is always a
  string (the plugin's older 0-or-1-element list is flattened).

Statuses of rules and katas from the records: kata_tools.results.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kata_tools import bytecode, catalog, results
from kata_tools.preloaded import ForkedRun, Preloaded

STRIPPED_ENV = ("KATA_SOLUTIONS", "KATA_SOURCE")
KILL_GRACE = 10.0  # seconds between SIGTERM and SIGKILL after a timeout


@dataclass
class Run:
    """One inner pytest run: exit code, console output, per-spec records in run order."""

    exit_code: int
    output: str
    records: list[dict] = field(default_factory=list)
    timed_out: bool = False
    report_problem: str = ""  # why the report could not be read ("" when it was)

    @property
    def returncode(self) -> int:  # the name subprocess uses
        return self.exit_code

    @property
    def specs(self) -> dict[str, dict]:
        """nodeid -> record."""
        return {r.get("nodeid", ""): r for r in self.records}

    def of(self, kata: str) -> list[dict]:
        """The records of one kata (by name), in run order."""
        return [r for r in self.records if r.get("kata") == kata]

    def outcomes(self, kata: str) -> dict[str, str]:
        return {r.get("nodeid", ""): results.outcome_of(r) for r in self.of(kata)}

    def failed(self, kata: str | None = None) -> list[dict]:
        """Failed or errored records (of one kata, or all)."""
        chosen = self.records if kata is None else self.of(kata)
        return [r for r in chosen if results.is_broken(r)]

    def summary(self, kata: catalog.Kata) -> results.Summary:
        return results.summarize(self.of(kata.name), [r.id for r in kata.rules])


def targets(katas: Iterable[catalog.Kata | str], root: Path | None = None) -> list[str]:
    """Spec folders of the katas, relative to the root: ["katas/01_event_loop", ...]."""
    return [f"katas/{k if isinstance(k, str) else k.name}" for k in katas]


def inner_env(
    env: Mapping[str, str] | None = None,
    *,
    progress: bool = False,
    lang: str | None = None,
    pycache: Path | None = None,
) -> dict[str, str]:
    """The environment of an inner run (see the module's docstring)."""
    out = {k: v for k, v in os.environ.items() if k not in STRIPPED_ENV}
    out.update(env or {})
    out["PYTHONIOENCODING"] = "utf-8"
    if pycache is not None:
        out["PYTHONPYCACHEPREFIX"] = str(pycache)
        # What PYTHONDONTWRITEBYTECODE is for (no __pycache__ next to one's sources) the prefix
        # gives already; kept, it made every run compile every library again (some sandboxes
        # and CI images set it).
        out.pop("PYTHONDONTWRITEBYTECODE", None)
    if not progress:
        out["KATA_NO_PROGRESS"] = "1"
    if lang:
        out["KATA_LANG"] = lang
    return out


def command(
    target_paths: Sequence[str],
    report: Path,
    *,
    solutions: bool = False,
    source: Path | None = None,
    args: Sequence[str] = (),
    progress: bool = False,
) -> list[str]:
    cmd = [sys.executable, "-m", "pytest", *target_paths, "-q"]
    if not progress:
        cmd += ["-o", f"cache_dir={Path(report).parent / 'pytest-cache'}"]
    if solutions:
        cmd.append("--solutions")
    if source is not None:
        cmd += ["--kata-source", str(source)]
    return [*cmd, "--kata-report", str(report), *args]


def read_report(path: Path) -> tuple[list[dict], str]:
    """(records, problem): the --kata-report file's spec records, or [] and one line saying why."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return [], "pytest wrote no report (it stopped before the end of its session)"
    except OSError as e:
        return [], f"cannot read pytest's report ({e.strerror})"
    try:
        data = json.loads(text)
    except ValueError:
        return [], "pytest's report is not valid JSON"
    specs = data.get("specs") if isinstance(data, dict) else None
    if not isinstance(specs, list):
        return [], "pytest's report has no list of specs"
    records = []
    for r in specs:
        if isinstance(r, dict):
            r = dict(r)
            r["doc"] = results.doc_of(r)
            r["rules"] = results.rules_of(r)
            r["outcome"] = results.outcome_of(r)
            records.append(r)
    return records, ""


def run(
    target_paths: Sequence[str],
    *,
    root: Path | None = None,
    solutions: bool = False,
    source: Path | None = None,
    args: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    progress: bool = False,
    lang: str | None = None,
    pycache: Path | None = None,
    preloaded: Preloaded | None = None,
) -> Run:
    """Run pytest over `target_paths` (relative to `root`) and read its report; see the docstring."""
    root = Path(root or catalog.ROOT)
    with tempfile.TemporaryDirectory(prefix="kata-run-") as tmp:
        report = Path(tmp) / "specs.json"
        cmd = command(target_paths, report, solutions=solutions, source=source, args=args, progress=progress)
        folder = pycache or Path(tmp) / "pyc"
        course = (root, root / source if source is not None else None, catalog.ROOT)
        bytecode.share_libraries(folder, course=course)  # libraries compiled once, not every run
        run_env = inner_env(env, progress=progress, lang=lang, pycache=folder)
        proc: subprocess.Popen | ForkedRun | None = None
        if preloaded is not None:
            proc = preloaded.popen(cmd, cwd=root, env=run_env, output=Path(tmp) / "output.txt")
        if proc is None:
            proc = subprocess.Popen(
                cmd,
                cwd=root,
                env=run_env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
            )
        timed_out = False
        try:
            raw, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            raw = _stop(proc)
        except BaseException:  # Ctrl-C in the caller: the inner run ends too
            _stop(proc)
            raise
        output = (raw or b"").decode("utf-8", errors="replace")
        if timed_out:
            output += f"\nThe run timed out after {timeout:g} s and was stopped.\n"
        records, problem = read_report(report)
    exit_code = proc.returncode if proc.returncode is not None else 1  # never None once it ended
    return Run(exit_code, output, records, timed_out, problem)


def _stop(proc: subprocess.Popen | ForkedRun) -> bytes:
    """Terminate the run (pytest stops its database on SIGTERM), kill it if it lingers."""
    proc.terminate()
    try:
        raw, _ = proc.communicate(timeout=KILL_GRACE)
    except subprocess.TimeoutExpired:
        proc.kill()
        raw, _ = proc.communicate()
    return raw or b""


@contextlib.contextmanager
def shared_database(warn=None) -> Iterator[dict[str, str]]:
    """One database server for many inner runs (a `kata watch` session, `kata dev check`).

    Yields the env that hands it to each run (`run(..., env=...)`): KATA_DATABASE_URL and what
    else the database code needs (kata_tools.postgres.warm_server); each run's specs still get
    fresh copies, but no run starts a server. Yields {} (each run then starts or explains its
    own) with one line to `warn` when no database can start.
    """
    from kata_tools import postgres

    try:
        manager = postgres.warm_server()
        db = manager.__enter__()
        env, close = dict(db.env), lambda: manager.__exit__(None, None, None)
    except Exception as e:  # DatabaseUnavailable, a server that would not start
        if warn is not None:
            warn(str(e).splitlines()[0] if str(e) else type(e).__name__)
        yield {}
        return
    try:
        yield env
    finally:
        close()
