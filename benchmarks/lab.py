"""The concurrency lab's figures against its quality bars, measured and recorded.

    .venv/bin/python benchmarks/lab.py [--runs 3] [--write] [-- LAB OPTIONS]

Runs `python -m kata_tools.lab` `--runs` times (default: N=100 clients, T=0.1 s, every mode)
for each server engine: the plain one (`--loop asyncio --http h11`) and the fast one
(`--loop uvloop --http httptools`, where installed), each run a fresh process with its own
database. For each mode it prints the rule's figure, the server's own cost the lab calibrated
(the same burst with T = 0), the measured total, and two ratios: against the rule alone (the
course's quality bars, issue 14: with a pool of at least N the async mode within 1.2x of T, the
thread-pool mode within 1.15x of ceil(N/40) x T, the blocking mode at least 0.9x of N x T, on a
quiet machine) and against the rule plus the server's cost (what the lab itself judges).
`--write` records the tables in benchmarks/RESULTS.md with the command, the date, the machine,
its load average and the share of the CPUs other programs used during each mode (other work on
a 2-core machine moves these figures). A benchmark, not a test: the figures depend on the machine.
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


ENGINES = [("asyncio", "h11"), ("uvloop", "httptools")]


def run_lab(lab_args: list[str], folder: Path, k: int) -> dict:
    out = folder / f"lab-{k}.json"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kata_tools.lab",
            *lab_args,
            "--json",
            str(out),
            "-o",
            str(folder / f"lab-{k}.svg"),
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
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


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def engine_table(runs: list[dict]) -> list[str]:
    rows = [
        "| mode | rule | rule's figure | server cost (median) | measured (median) "
        "| vs rule, per run | vs rule (median) | bar | verdict | vs rule + server (median) "
        "| others' CPU (max) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, mode in enumerate(runs[0]["modes"]):
        per_run = [run["modes"][i] for run in runs]
        raw = [m["raw_ratio"] for m in per_run]
        median = _median(raw)
        bar = mode["bar"]
        verdict = ""
        if bar is not None:
            met = sum(_bar(bar).met(r) for r in raw)
            verdict = f"{'met' if _bar(bar).met(median) else 'MISSED'} (median); {met}/{len(runs)} runs"
        others = [m.get("other_cpu_share") for m in per_run if m.get("other_cpu_share") is not None]
        rows.append(
            f"| {mode['mode']} | {mode['rule']} | {mode['predicted']:.3f} s = {mode['formula']} "
            f"| {_median([m['server_cost'] for m in per_run]):.3f} s "
            f"| {_median([m['measured'] for m in per_run]):.3f} s "
            f"| {' '.join(f'{r:.2f}' for r in raw)} | {median:.2f} | {bar or '-'} | {verdict} "
            f"| {_median([m['ratio'] for m in per_run]):.2f} "
            f"| {f'{100 * max(others):.0f}%' if others else '-'} |"
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--write", action="store_true", help=f"record in {RESULTS.relative_to(ROOT)}")
    parser.add_argument("lab_args", nargs="*", help="options for the lab, after --")
    args = parser.parse_args()

    from kata_tools.lab.options import has

    engines = [e for e in ENGINES if e[0] != "uvloop" or (has("uvloop") and has("httptools"))]
    tables, first = [], None
    for loop, http in engines:
        lab_args = [*args.lab_args, "--loop", loop, "--http", http]
        load_before = load()
        with tempfile.TemporaryDirectory() as tmp:
            runs = [run_lab(lab_args, Path(tmp), k) for k in range(args.runs)]
        first = first or runs[0]
        tables += [
            "",
            f"### `--loop {loop} --http {http}` (load average {load_before} before, {load()} after)",
            "",
            *engine_table(runs),
        ]
    s = first["settings"]
    command = (
        "python benchmarks/lab.py --runs "
        + str(args.runs)
        + (" -- " + " ".join(args.lab_args) if args.lab_args else "")
    )
    begin, end = markers(args.lab_args)
    section = "\n".join(
        [
            begin,
            f"## The concurrency lab (`python -m kata_tools.lab{''.join(' ' + a for a in args.lab_args)}`)",
            "",
            f"Measured {datetime.date.today().isoformat()} with `{command}`: {s['clients']} "
            f"clients at once, each waiting {s['latency']:g} s on PostgreSQL (`pg_sleep`), "
            f"pool {s['pool_size']}, thread limit {s['threads']}; {args.runs} runs per server "
            f"engine, each a fresh lab process with its own database.",
            "",
            f"Machine: {os.cpu_count()} CPUs ({cpu_model()}), Python {first['python']}, {first['database']}.",
            *tables,
            "",
            "vs rule: measured total (first request sent to last reply) / the rule's figure, "
            "ceil(N / capacity) x T: the course's quality bars, for a quiet machine. "
            "vs rule + server: / (the rule's figure + the server's own cost, calibrated by the "
            "lab with T = 0): what `kata lab` judges, near 1 on any machine. Others' CPU: the "
            "share of the CPUs that programs other than the lab used during the mode's burst; "
            "above 30% the lab calls the machine busy instead of judging.",
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
    op, limit = text.split()  # as the lab writes it: "<= 1.2"
    return Bar(op, float(limit))


if __name__ == "__main__":
    raise SystemExit(main())
