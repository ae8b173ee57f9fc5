"""How long a learner waits for feedback: `pytest katas/NN_name`, on the stubs and on the solutions.

    .venv/bin/python benchmarks/feedback.py [--runs 5] [--write]

Each kata is run `--runs` times in a fresh process, the way a learner runs it (database start
included for the database katas). Prints min and median wall time; `--write` records them in
benchmarks/FEEDBACK.md with the date and the machine. A benchmark, not a test: the figures
depend on the machine; the targets (kata 01 under 1.5 s, a database kata under 5 s) are checked
by reading the table, not by a timed test that would flake on a busy machine.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kata_tools import catalog  # noqa: E402


def time_run(args: list[str]) -> float:
    env = {k: v for k, v in os.environ.items() if k not in ("KATA_SOLUTIONS", "KATA_SOURCE")}
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", *args, "-q"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="record in benchmarks/FEEDBACK.md")
    opts = parser.parse_args()

    rows = []
    for kata in catalog.katas():
        path = kata.path.relative_to(ROOT).as_posix()
        for label, extra in (("stubs", []), ("solutions", ["--solutions"])):
            times = [time_run([path, *extra]) for _ in range(opts.runs)]
            rows.append((kata.name, label, min(times), statistics.median(times), max(times)))
            print(f"{kata.name:22} {label:9} min {min(times):5.2f} s  median "
                  f"{statistics.median(times):5.2f} s  max {max(times):5.2f} s", flush=True)

    if opts.write:
        lines = [
            "# Feedback time per kata",
            "",
            f"Measured {datetime.date.today()} on {platform.node() or 'this machine'} "
            f"({os.cpu_count()} cores, Python {platform.python_version()}) with",
            f"`.venv/bin/python benchmarks/feedback.py --runs {opts.runs} --write`:",
            "wall time of `pytest katas/NN_name -q` in a fresh process, database start included.",
            "",
            "| kata | code | min (s) | median (s) | max (s) |",
            "| --- | --- | ---: | ---: | ---: |",
            *(f"| {k} | {l} | {a:.2f} | {m:.2f} | {b:.2f} |" for k, l, a, m, b in rows),
            "",
        ]
        (ROOT / "benchmarks" / "FEEDBACK.md").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
