"""How long a learner waits for feedback: `pytest katas/NN_name`, cold, and re-run in kata watch.

    .venv/bin/python benchmarks/feedback.py [--runs 5] [--katas 01,07] [--profile] [--write]

For each kata (stubs and solutions), `--runs` fresh processes the way a learner runs it (database
start included), each beside a bare pytest run (one empty test, same interpreter) measured right
before it, so a loaded machine shows as a ratio that stays put; the load average is recorded with
each figure. Database katas are also timed re-run against one warm server
(kata_tools.postgres.warm_server, what kata watch hands to each run) and, on Linux, re-run as
kata watch runs them: a fork of its preloaded process (kata_tools.preloaded) on that server. `--profile` prints when each
phase of one run ended (interpreter and imports, collection, database ready, first and last spec,
exit). `--write` records the table in benchmarks/FEEDBACK.md. A benchmark, not a test: the bars
(kata 01 <= 1.0 s; 07 <= 2.0 s or <= 3.5x bare; a watch re-run <= 1.3 s) are read from the table.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kata_tools import catalog, preloaded, runner  # noqa: E402

BARE = tempfile.mkdtemp(prefix="kata-bare-")
Path(BARE, "test_bare.py").write_text("def test_bare():\n    pass\n")


def _env(extra: dict | None = None) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("KATA_SOLUTIONS", "KATA_SOURCE")
        and not k.startswith(("KATA_DATABASE", "DATABASE_URL"))
        # A learner's Python caches bytecode; some sandboxes set this, and then every run compiles
        # the course's own modules again (bare pytest 1.2 s instead of 0.8 s on one machine).
        and k != "PYTHONDONTWRITEBYTECODE"
    }
    env["KATA_NO_PROGRESS"] = "1"
    env.update(extra or {})
    return env


def time_run(args: list[str], env: dict | None = None, cwd: Path | str = ROOT) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q"],
        cwd=cwd,
        env=_env(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - start


def bare() -> float:
    return time_run(["-p", "no:cacheprovider", "test_bare.py"], cwd=BARE)


def load() -> float:
    return os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")


def profile(path: str, extra: list[str], env: dict | None = None) -> dict:
    out = Path(tempfile.mkdtemp()) / "phases.json"
    phases_env = {
        "KATA_T0": repr(time.time()),
        "KATA_PHASES": str(out),
        "PYTHONPATH": str(ROOT / "benchmarks"),
        **(env or {}),
    }
    start = time.time()
    subprocess.run(
        [sys.executable, "-m", "pytest", path, *extra, "-q", "-p", "phases"],
        cwd=ROOT,
        env=_env({**phases_env, "KATA_T0": repr(start)}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    marks = json.loads(out.read_text()) if out.exists() else {}
    marks["process exited"] = round(time.time() - start, 3)
    return marks


def watch_reruns(kata, path: str, env: dict, runs: int) -> list[tuple]:
    """A re-run as `kata watch` makes it on Linux: a fork of the preloaded process, warm server."""
    # One bytecode folder for the session, as kata watch keeps .kata/pycache: a re-run compiles
    # (and pytest rewrites) only what changed. A fresh folder per run cost 0.1-0.2 s a run.
    pycache = Path(tempfile.mkdtemp(prefix="kata-bench-pyc-"))
    server = preloaded.Preloaded(ROOT, runner.inner_env(_env(env), pycache=pycache))
    server.ready(wait=60)
    rows = []
    try:
        for label, solutions in (("stubs", False), ("solutions", True)):

            def rerun(solutions: bool = solutions) -> float:
                start = time.perf_counter()
                runner.run([path], solutions=solutions, env=_env(env), preloaded=server, pycache=pycache)
                return time.perf_counter() - start

            rerun()
            pairs = [(bare(), rerun(), load()) for _ in range(runs)]
            rows.append(_row(kata.name, label, "watch", pairs))
    finally:
        server.close()
        shutil.rmtree(pycache, ignore_errors=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--katas", default="", help="comma-separated keys (default: every kata)")
    parser.add_argument("--profile", action="store_true", help="print the phases of one run per kata")
    parser.add_argument("--no-warm", action="store_true", help="skip the warm-server re-runs")
    parser.add_argument("--write", action="store_true", help="record in benchmarks/FEEDBACK.md")
    opts = parser.parse_args()
    katas = [catalog.find_kata(k) for k in opts.katas.split(",") if k] or catalog.katas()

    rows = []
    for kata in katas:
        path = kata.path.relative_to(ROOT).as_posix()
        for label, extra in (("stubs", []), ("solutions", ["--solutions"])):
            time_run([path, *extra])  # one run not counted: a cold disk cache, a new cluster
            pairs = [(bare(), time_run([path, *extra]), load()) for _ in range(opts.runs)]
            rows.append(_row(kata.name, label, "cold", pairs))
            if opts.profile:
                print(f"  phases: {profile(path, extra)}", flush=True)
        if kata.needs_database and not opts.no_warm:
            from kata_tools.postgres import warm_server

            with warm_server() as db:
                for label, extra in (("stubs", []), ("solutions", ["--solutions"])):
                    time_run([path, *extra], env=db.env)
                    pairs = [(bare(), time_run([path, *extra], env=db.env), load()) for _ in range(opts.runs)]
                    rows.append(_row(kata.name, label, "warm", pairs))
                    if opts.profile:
                        print(f"  phases: {profile(path, extra, db.env)}", flush=True)
                if preloaded.SUPPORTED:
                    rows += watch_reruns(kata, path, db.env, opts.runs)

    if opts.write:
        _write(rows, opts)
    return 0


def _row(name: str, label: str, how: str, pairs) -> tuple:
    bares, times, loads = zip(*pairs)
    ratios = [t / b for b, t, _ in pairs]
    row = (
        name,
        label,
        how,
        min(times),
        statistics.median(times),
        statistics.median(bares),
        statistics.median(ratios),
        min(loads),
        max(loads),
    )
    print(
        f"{name:22} {label:9} {how:5} min {row[3]:5.2f} s  median {row[4]:5.2f} s  bare "
        f"{row[5]:4.2f} s  ratio {row[6]:4.1f}x  load {row[7]:.1f}-{row[8]:.1f}",
        flush=True,
    )
    return row


def _write(rows, opts) -> None:
    lines = [
        "# Feedback time per kata",
        "",
        f"Measured {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC on "
        f"{platform.node() or 'this machine'} ({os.cpu_count()} cores, Python "
        f"{platform.python_version()}) with",
        f"`.venv/bin/python benchmarks/feedback.py --runs {opts.runs}"
        f"{' --katas ' + opts.katas if opts.katas else ''} --write`:",
        "wall time of `pytest katas/NN_name -q` in a fresh process. `cold`: as a learner runs it",
        "(database start included); `warm`: a fresh process against one warm server; `watch`: a",
        "re-run as `kata watch` makes it on Linux (warm server, a fork of its preloaded process).",
        "`bare`: `pytest` of one empty test, measured right before each run; `ratio`: the median",
        "of run / bare. `load`: the 1-minute load average during the runs.",
        "",
        "| kata | code | how | min (s) | median (s) | bare (s) | ratio | load |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |",
        *(
            f"| {k} | {lab} | {how} | {a:.2f} | {m:.2f} | {b:.2f} | {r:.1f}x | {lo:.1f}-{hi:.1f} |"
            for k, lab, how, a, m, b, r, lo, hi in rows
        ),
        "",
    ]
    target = ROOT / "benchmarks" / "FEEDBACK.md"
    old = target.read_text() if target.exists() else ""
    notes = old.split("<!-- notes -->", 1)[1] if "<!-- notes -->" in old else "\n"
    target.write_text("\n".join(lines) + "<!-- notes -->" + notes)


if __name__ == "__main__":
    raise SystemExit(main())
