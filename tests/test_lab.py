"""The concurrency lab (`python -m kata_tools.lab`): it runs every mode end to end, draws a
well-formed SVG, refuses bad options in one line, and leaves no server or database behind, even
when interrupted.

Structure, not timing: small N and T, and assertions about what ran where and what was written.
The lab's figures against the rules' predictions are a benchmark (benchmarks/lab.py), not a test.
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from kata_tools.catalog import ROOT
from kata_tools.lab import main
from kata_tools.lab.modes import MODES

SVG = "{http://www.w3.org/2000/svg}"
N, T = 10, 0.05


def lab_env(extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("KATA_DATABASE_URL", "DATABASE_URL")}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


@pytest.fixture(scope="module")
def lab_run(tmp_path_factory, inner_env):
    """One lab run over every mode, on the session's PostgreSQL: exit code, output, files."""
    tmp = tmp_path_factory.mktemp("lab")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "kata_tools.lab",
            "-n",
            str(N),
            "-t",
            str(T),
            "-o",
            str(tmp / "timeline.svg"),
            "--json",
            str(tmp / "lab.json"),
        ],
        cwd=tmp,
        env=lab_env(inner_env),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc, tmp


@pytest.mark.timeout(120)
def test_the_lab_runs_every_mode_end_to_end(lab_run):
    proc, tmp = lab_run
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    data = json.loads((tmp / "lab.json").read_text())
    assert [m["mode"] for m in data["modes"]] == list(MODES)
    for m in data["modes"]:
        assert m["errors"] == 0 and len(m["lanes"]) == N, m["mode"]
        for lane in m["lanes"]:
            instants = [lane[k] for k in ("sent", "started", "acquired", "done", "ended")]
            assert instants == sorted(instants), (m["mode"], lane)
            # Every request really waited T in PostgreSQL (pg_sleep), whatever else it waited for.
            assert lane["done"] - lane["acquired"] >= 0.9 * T, (m["mode"], lane)
        assert m["predicted"] > 0 and m["server_cost"] > 0
        # The server's own cost is calibrated with T = 0 and counted beside the rule's figure.
        assert m["expected"] == pytest.approx(m["predicted"] + m["server_cost"], abs=1e-3)
        assert m["ratio"] == pytest.approx(m["measured"] / m["expected"], rel=0.01)
        assert m["raw_ratio"] == pytest.approx(m["measured"] / m["predicted"], rel=0.01)


@pytest.mark.timeout(120)
def test_each_mode_runs_where_its_rule_says(lab_run):
    """def endpoints run on worker threads, async def on the loop; serial modes, one query at once."""
    _, tmp = lab_run
    modes = {m["mode"]: m for m in json.loads((tmp / "lab.json").read_text())["modes"]}
    for name, m in modes.items():
        on_loop = {lane["on_loop"] for lane in m["lanes"]}
        assert on_loop == ({False} if MODES[name].endpoint == "def" else {True}), name
    assert modes["one-at-a-time"]["threads_used"] == 1  # one worker thread
    assert modes["async-pool"]["threads_used"] == 1  # the loop's thread only
    assert modes["one-at-a-time"]["peak_queries"] == 1
    assert modes["async-blocking"]["peak_queries"] == 1  # the blocked loop serves one at a time
    # One shared AsyncSession: its connection runs one statement at a time, on the loop's thread.
    assert modes["one-session"]["peak_queries"] == 1 and modes["one-session"]["threads_used"] == 1
    assert modes["one-session"]["formula"] == f"{N} x {T:g} s"
    for name in ("threads", "async-default-pool", "async-pool"):
        assert modes[name]["peak_queries"] > 1, name
    assert modes["one-at-a-time"]["formula"] == f"{N} x {T:g} s"
    assert modes["async-default-pool"]["formula"] == f"ceil({N}/15) x {T:g} s"
    assert modes["threads"]["bar"] == "<= 1.15" and modes["async-blocking"]["bar"] == ">= 0.9"
    assert modes["async-pool"]["bar"] == "<= 1.2"


@pytest.mark.timeout(120)
def test_the_svg_is_well_formed_with_a_panel_per_mode_and_a_lane_per_request(lab_run):
    _, tmp = lab_run
    root = ET.parse(tmp / "timeline.svg").getroot()
    assert root.tag == f"{SVG}svg"
    panels = root.findall(f"{SVG}g[@class='panel']")
    assert [p.get("data-mode") for p in panels] == list(MODES)
    for panel in panels:
        lanes = panel.findall(f"{SVG}g[@class='lane']")
        assert sorted(int(lane.get("data-request")) for lane in lanes) == list(range(N))
        assert all(lane.findall(f"{SVG}rect[@class='query']") for lane in lanes)
        assert len(panel.findall(f"{SVG}line[@class='predicted']")) == 1
        assert len(panel.findall(f"{SVG}rect[@class='server-cost']")) == 1


@pytest.mark.timeout(120)
def test_the_report_prints_the_figures_and_where_the_timeline_went(lab_run):
    proc, tmp = lab_run
    for name in MODES:
        assert name in proc.stdout
    assert "rule says" in proc.stdout and "+server" in proc.stdout
    assert "Bars (measured / (rule + server))" in proc.stdout
    assert f"Timeline written to {tmp / 'timeline.svg'}" in proc.stdout.replace("\n", "")
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["-n", "0"], "-n/--clients must be at least 1"),
        (["-n", "-3"], "-n/--clients must be at least 1"),
        (["-n", "ten"], "Invalid value for '-n' / '--clients'"),
        (["-t", "-0.1"], "-t/--latency must be 0 or more"),
        (["-t", "nan"], "-t/--latency must be 0 or more"),
        (["--modes", "threads,warp-drive"], "unknown mode 'warp-drive'"),
        (["--threads", "0"], "--threads must be at least 1"),
        (["--pool-size", "-1"], "--pool-size must be at least 1"),
        (["--port", "70000"], "--port must be 0-65535"),
        (["-o", "/no/such/folder/t.svg"], "folder /no/such/folder does not exist"),
        (["--frobnicate"], "No such option: --frobnicate"),
        (["--loop", "trio"], "--loop must be one of auto, asyncio, uvloop"),
        (["--http", "h2"], "--http must be one of auto, h11, httptools"),
        (["--scale", "log"], "--scale must be one of each, shared"),
    ],
    ids=lambda v: " ".join(v) if isinstance(v, list) else None,
)
def test_a_bad_option_gives_a_one_line_error_and_exit_code_2(argv, fragment, capsys):
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("kata lab: error: ") and fragment in err, err


def test_a_port_in_use_gives_a_one_line_error_and_exit_code_2(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1, err
    assert err.startswith(f"kata lab: error: port {port} on 127.0.0.1 is in use"), err


# --- interruption -------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has ended
    except OSError:
        return False


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if text.encode() in (entry / "cmdline").read_bytes() and _alive(int(entry.name)):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def _wait_until(predicate, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["Ctrl-C to the process group", "SIGTERM to the lab"])
def test_an_interrupted_lab_leaves_no_server_or_database_behind(how, tmp_path):
    """With its own embedded PostgreSQL (no database URL), interrupted while a mode runs."""
    lab = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kata_tools.lab",
            "-n",
            "10",
            "-t",
            "0.5",
            "--modes",
            "one-at-a-time",
            "-o",
            str(tmp_path / "t.svg"),
        ],
        cwd=tmp_path,
        env=lab_env({}),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in lab.stderr], daemon=True).start()
    said = []
    try:
        deadline = time.monotonic() + 90
        while not any("requests at once" in line for line in said):
            said.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        server_pid = int(re.search(r"server: .*\(pid (\d+)\)", "".join(said)).group(1))
        pgdata = re.search(r"database: .* in (\S+)", "".join(said)).group(1)
        postmaster = int((Path(pgdata) / "data" / "postmaster.pid").read_text().split()[0])
        assert _alive(server_pid) and _alive(postmaster)
        time.sleep(0.3)  # in the middle of the mode: requests are waiting on the database
        if how.startswith("Ctrl-C"):
            os.killpg(lab.pid, signal.SIGINT)
        else:
            lab.send_signal(signal.SIGTERM)
        assert lab.wait(60) == 130
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
    try:
        while True:  # the rest of what the lab said, up to its end
            try:
                said.append(lines.get(timeout=2))
            except queue.Empty:
                break
        assert _wait_until(lambda: not _alive(server_pid), 10), "the lab's server is still running"
        assert _wait_until(lambda: not _alive(postmaster), 10), "the embedded PostgreSQL still runs"
        assert _wait_until(lambda: not _processes_mentioning(pgdata), 10), (
            f"processes of {pgdata} are left: {_processes_mentioning(pgdata)}"
        )
        # The embedded cluster is a cache kept for the next run (kata_tools.postgres.server); what
        # must be gone is its server: no postmaster.pid, no process of it (checked above).
        assert not (Path(pgdata) / "data" / "postmaster.pid").exists()
        assert said[-1].endswith("interrupted; the server and the database are stopped\n"), said
        assert "Traceback" not in "".join(said), said
    finally:
        lab.stderr.close()  # also when a check fails: an open pipe would warn in a later test


# --- verdicts, width, languages (no server: results built by hand or read back) ----------------


def _result(mode: str, measured: float, server_cost: float, others: float | None, n: int = 10):
    from kata_tools.lab.modes import Settings
    from kata_tools.lab.results import Lane, Machine, ModeResult

    s = Settings(n, 0.1, None, 40)
    lanes = [Lane(i, 0.0, measured, 0.0, 0.0, measured - 0.001) for i in range(n)]
    return ModeResult(MODES[mode], s, lanes, server_cost, Machine(2, 1.9, others))


def test_a_missed_bar_on_a_busy_machine_is_not_judged_and_names_the_load():
    from kata_tools.lab import view

    busy = _result("async-pool", measured=0.2, server_cost=0.01, others=0.5)
    assert busy.verdict == "busy"
    (line,) = view.verdicts([busy])[1:]
    assert "MISSED" not in line and "load 1.9" in line and "50% of the 2 cores" in line, line


def test_a_missed_bar_on_a_quiet_machine_says_what_took_the_time():
    from kata_tools.lab import view

    quiet = _result("async-pool", measured=0.2, server_cost=0.01, others=0.02)
    assert quiet.verdict == "missed" and quiet.dominant_delay() == "query"
    (line,) = view.verdicts([quiet])[1:]
    assert "MISSED on a quiet machine" in line and "the queries themselves" in line, line


def test_the_server_cost_brings_the_ratio_back_to_the_rule():
    met = _result("async-pool", measured=0.15, server_cost=0.05, others=0.0)
    assert met.verdict == "met" and met.ratio == pytest.approx(1.0)
    assert met.raw_ratio == pytest.approx(1.5)


@pytest.mark.parametrize("lang", ["en", "ko"])
@pytest.mark.timeout(120)
def test_the_report_fits_80_columns_in_both_languages(lang, lab_run, monkeypatch):
    from rich.cells import cell_len
    from rich.console import Console

    from kata_tools import i18n
    from kata_tools.lab import view
    from kata_tools.lab.results import from_json

    monkeypatch.setattr(i18n, "_override", lang)
    _, tmp = lab_run
    results = from_json(json.loads((tmp / "lab.json").read_text()))
    import io

    console = Console(width=80, record=True, file=io.StringIO(), color_system=None)
    console.print(view.table(results, "uvloop", "httptools"))
    console.print(view.legend())
    for r in results:
        console.print(view.timeline(r, 80, 5))
    text = console.export_text()
    assert max(cell_len(line) for line in text.splitlines()) <= 80
    for name in MODES:
        assert name in text, f"mode {name} cut short in the {lang} report"
    if lang == "ko":
        assert "규칙 예측" in text and "측정" in text


def test_the_svg_labels_follow_the_language_and_list_hangul_fonts_first(lab_run, monkeypatch):
    from kata_tools import i18n
    from kata_tools.lab import svg
    from kata_tools.lab.results import from_json

    _, tmp = lab_run
    results = from_json(json.loads((tmp / "lab.json").read_text()))
    monkeypatch.setattr(i18n, "_override", "ko")
    picture = svg.render(results, shared=True)
    ET.fromstring(picture.encode())
    assert "규칙" in picture and "요청" in picture
    fonts = re.search(r'font-family="([^"]+)"', picture).group(1)
    assert fonts.index("Malgun Gothic") < fonts.index("DejaVu Sans")


def test_auto_picks_the_fastest_loop_and_parser_installed(monkeypatch):
    from kata_tools.lab import options

    monkeypatch.setattr(options, "has", lambda module: True)
    monkeypatch.setattr(options.sys, "platform", "linux")
    assert options.resolve_engine("auto", "auto") == ("uvloop", "httptools")
    monkeypatch.setattr(options.sys, "platform", "win32")  # uvloop does not exist on Windows
    assert options.resolve_engine("auto", "auto") == ("asyncio", "httptools")
    monkeypatch.setattr(options, "has", lambda module: False)
    assert options.resolve_engine("auto", "auto") == ("asyncio", "h11")
    with pytest.raises(options.UsageError, match="uvloop is not installed"):
        options.resolve_engine("uvloop", "h11")


def test_the_readme_pictures_exist_and_match_the_recorded_lab_run():
    from kata_tools.lab import pictures

    stale = [p.relative_to(ROOT).as_posix() for p in pictures.stale()]
    assert not stale, f"missing or stale pictures {stale}: run python -m kata_tools.lab.pictures"


def test_the_readme_pictures_follow_the_rules_each_kata_teaches():
    """No hand-kept list: a kata gets the panels of the modes showing the rules it teaches."""
    from kata_tools import catalog
    from kata_tools.lab import pictures

    known = catalog.rules()
    for mode in MODES.values():
        assert set(mode.rules) <= set(known), (mode.name, mode.rules)
    panels = pictures.panels()
    assert panels["01_event_loop"] == ["one-at-a-time", "async-pool", "async-blocking"]  # EL1-EL3
    assert panels["02_thread_pool"] == ["one-at-a-time", "threads"]  # TP3, TP2
    assert panels["04_connection_pool"] == ["async-default-pool", "async-pool"]  # CP3, CP7
    # The capstone teaches no rule of its own: the caps it checks again (TP2, CP3, CP7), not EL3.
    assert panels["09_capstone"] == ["threads", "async-default-pool", "async-pool"]
    assert panels["10_session_per_task"] == ["one-session"]  # SS1
    # Kata 08 checks EL3 and CP7 again but teaches AE5 and SM1, which no mode shows.
    assert "08_what_to_await" not in panels


def test_both_readmes_name_as_many_lab_modes_as_the_lab_has():
    # The English README said "five ways" after one-session became the sixth mode (2026-12-03).
    words = {
        "en": ["", "one", "two", "three", "four", "five", "six", "seven", "eight"],
        "ko": ["", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟"],
    }
    readmes = {"en": (ROOT / "README.md", "{} ways"), "ko": (ROOT / "README.ko.md", "{} 가지 방식")}
    for lang, (path, phrase) in readmes.items():
        text = " ".join(path.read_text(encoding="utf-8").split())
        assert phrase.format(words[lang][len(MODES)]) in text, f"{path.name}: {len(MODES)} modes"
