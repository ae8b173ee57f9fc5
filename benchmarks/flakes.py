"""Flake rounds: the same specs run N times must give the same verdict per spec (issue 10's bar).

    python benchmarks/flakes.py                 # 20 rounds of `pytest katas --solutions` and
                                                # `pytest katas`, one core kept busy meanwhile
    python benchmarks/flakes.py --rounds 3 --no-hog 01 08

Each round runs both commands as a learner does (a process of their own, the embedded
PostgreSQL started by each), with `--kata-report` to read every spec's outcome. The busy core is
a second process spinning in a loop (`--no-hog` leaves the machine as it is). At the end: per
command, how many specs gave one verdict in every round, each spec that did not (with its
outcomes and first differing message), and the time per round. Exit 1 when any spec flaked.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def spin() -> None:  # the busy core
    while True:
        pass


def one_run(targets: list[str], solutions: bool, report: Path) -> dict[str, tuple[str, str]]:
    env = {k: v for k, v in os.environ.items() if k not in ("KATA_SOLUTIONS", "KATA_SOURCE")}
    env.update(KATA_NO_PROGRESS="1")  # (the pytest cache, in .kata/, only keeps --lf lists)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *targets,
        "-q",
        "--kata-report",
        str(report),
        *(["--solutions"] if solutions else []),
    ]
    subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, stdin=subprocess.DEVNULL
    )
    if not report.exists():
        return {"(the run)": ("no report", "")}
    specs = json.loads(report.read_text())["specs"]
    return {r["nodeid"]: (r["outcome"], next(iter((r.get("message") or "").splitlines()), "")) for r in specs}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("katas", nargs="*", help="kata numbers (default: all)")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-hog", action="store_true", help="do not keep a core busy")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from kata_tools import catalog

    katas = [catalog.find_kata(k) for k in args.katas] if args.katas else catalog.katas()
    targets = [k.path.relative_to(ROOT).as_posix() for k in katas]
    hog = None if args.no_hog else multiprocessing.Process(target=spin, daemon=True)
    if hog:
        hog.start()
    seen: dict[str, dict[str, list]] = {"solutions": defaultdict(list), "stubs": defaultdict(list)}
    times: dict[str, list[float]] = {"solutions": [], "stubs": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for n in range(args.rounds):
                for name, solutions in (("solutions", True), ("stubs", False)):
                    started = time.perf_counter()
                    got = one_run(targets, solutions, Path(tmp) / f"{name}-{n}.json")
                    times[name].append(time.perf_counter() - started)
                    for nodeid, verdict in got.items():
                        seen[name][nodeid].append(verdict)
                print(
                    f"round {n + 1}/{args.rounds}: solutions {times['solutions'][-1]:.1f} s, "
                    f"stubs {times['stubs'][-1]:.1f} s",
                    flush=True,
                )
    finally:
        if hog:
            hog.terminate()
    flaky = 0
    for name, specs in seen.items():
        steady = [n for n, v in specs.items() if len(v) == args.rounds and len({o for o, _ in v}) == 1]
        print(
            f"{name}: {len(steady)} of {len(specs)} specs gave one verdict in all "
            f"{args.rounds} rounds; median round {sorted(times[name])[len(times[name]) // 2]:.1f} s"
        )
        for nodeid, verdicts in specs.items():
            outcomes = [o for o, _ in verdicts]
            if len(verdicts) != args.rounds or len(set(outcomes)) > 1:
                flaky += 1
                counts = {o: outcomes.count(o) for o in set(outcomes)}
                odd = next((m for o, m in verdicts if outcomes.count(o) < len(outcomes) / 2), "")
                print(f"  FLAKY {nodeid}: {counts} {odd}")
    return 1 if flaky else 0


if __name__ == "__main__":
    sys.exit(main())
