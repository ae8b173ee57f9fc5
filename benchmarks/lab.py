"""The concurrency lab's figures against its quality bars, measured and recorded.

    .venv/bin/python benchmarks/lab.py [--runs 3] [--write] [-- LAB OPTIONS]

Runs `python -m kata_tools.lab` `--runs` times (default: N=100 clients, T=0.1 s, every mode),
each in a fresh process with its own database, and prints each mode's ratio of measured to
predicted total, run by run, with the median. The bars (issue 5): with a pool of at least N the
async mode within 1.5x of T, the thread-pool mode within 1.3x of its predicted figure, the
blocking mode at least 0.9x of N x T. `--write` records the table in benchmarks/RESULTS.md with
the command, the date, the machine and its load average (other work on a 2-core machine moves
these figures). A benchmark, not a test: the figures depend on the machine.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kata_tools.lab.modes import Bar  # noqa: E402

RESULTS = ROOT / "benchmarks" / "RESULTS.md"


def markers(lab_args: list[str]) -> tuple[str, str]:
    """Each set of lab options keeps its own section of RESULTS.md."""
    key = " ".join(["lab", *lab_args])
    return f"<!-- {key}: begin -->", f"<!-- {key}: end -->"


def run_lab(lab_args: list[str], folder: Path, k: int) -> dict:
    out = folder / f"lab-{k}.json"
    proc = subprocess.run(
        [sys.executable, "-m", "kata_tools.lab", *lab_args, "--json", str(out),
         "-o", str(folder / f"lab-{k}.svg")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    if proc.returncode != 0 or not out.exists():
        raise SystemExit(f"the lab failed (exit {proc.returncode}): {proc.stderr.strip()[-500:]}")
    return json.loads(out.read_text())


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"record in {RESULTS.relative_to(ROOT)}")
    parser.add_argument("lab_args", nargs="*", help="options for the lab, after --")
    args = parser.parse_args()

    load_before = load()
    with tempfile.TemporaryDirectory() as tmp:
        runs = [run_lab(args.lab_args, Path(tmp), k) for k in range(args.runs)]
    load_after = load()

    first = runs[0]
    s = first["settings"]
    rows = []
    for i, mode in enumerate(first["modes"]):
        ratios = [run["modes"][i]["ratio"] for run in runs]
        measured = [run["modes"][i]["measured"] for run in runs]
        median = statistics.median(ratios)
        bar = mode["bar"]
        met = sum(bool(run["modes"][i]["bar_met"]) for run in runs)
        verdict = ""
        if bar is not None:
            verdict = f"{'met' if _bar(bar).met(median) else 'MISSED'} (median); {met}/{len(runs)} runs"
        rows.append(
            f"| {mode['mode']} | {mode['rule']} | {mode['how']} | {mode['predicted']:.3f} s = "
            f"{mode['formula']} | {statistics.median(measured):.3f} s | "
            f"{' '.join(f'{r:.2f}' for r in ratios)} | {median:.2f} | {bar or '-'} | {verdict} |"
        )
    command = "python benchmarks/lab.py --runs " + str(args.runs) + (
        " -- " + " ".join(args.lab_args) if args.lab_args else ""
    )
    table = "\n".join(
        [
            "| mode | rule | how it runs | predicted | measured (median) | ratio per run "
            "| median ratio | bar | verdict |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            *rows,
        ]
    )
    begin, end = markers(args.lab_args)
    section = "\n".join(
        [
            begin,
            f"## The concurrency lab (`python -m kata_tools.lab{''.join(' ' + a for a in args.lab_args)}`)",
            "",
            f"Measured {datetime.date.today().isoformat()} with `{command}`: {s['clients']} "
            f"clients at once, each waiting {s['latency']:g} s on PostgreSQL (`pg_sleep`), "
            f"pool {s['pool_size']}, thread limit {s['threads']}; {args.runs} runs, each a fresh "
            f"lab process with its own database.",
            "",
            f"Machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {first['python']}, "
            f"{first['database']}; load average {load_before} before, {load_after} after "
            f"(other work on the machine lengthens the async and thread-pool totals).",
            "",
            table,
            "",
            "Ratio: measured total (first request sent to last reply) / the total the rules "
            "predict, ceil(N / capacity) x T. What the ratio adds above 1 is the server's own "
            "CPU work per request (parsing, routing, the driver, the reply), which grows with N "
            "and the machine's load, not with T: a larger -t shows the rules' figure more "
            "closely.",
            end,
        ]
    )
    print(section)
    if args.write:
        text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
        if begin in text and end in text:
            head, _, rest = text.partition(begin)
            text = head + section + rest.partition(end)[2]
        else:
            text = text.rstrip("\n") + "\n\n" + section + "\n"
        RESULTS.write_text(text)
        print(f"written to {RESULTS.relative_to(ROOT)}")
    return 0


def _bar(text: str) -> Bar:
    op, limit = text.split()  # as the lab writes it: "<= 1.5"
    return Bar(op, float(limit))


if __name__ == "__main__":
    raise SystemExit(main())
