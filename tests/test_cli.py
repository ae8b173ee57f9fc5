"""The `kata` command, run as a learner and an instructor would: a subprocess in a copy of the course.

Each test copies the course (only kata 01 unless it needs more: the katas without a database keep
these tests fast), solves katas by copying their reference solution in, and reads what `kata`
prints and writes. The copy's own kata_tools runs (PYTHONPATH and cwd point at the copy).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from kata_tools import catalog, manifest

ROOT = catalog.ROOT
pytestmark = pytest.mark.timeout(180)  # each test runs `kata` (and pytest inside it) as a learner would
# Katas without a database (the brief of the course: 01-03); the tests grade these only.
NO_DB_KATAS = [k.name for k in catalog.katas() if int(k.number) <= 3]


def make_course(dest: Path, katas=("01_event_loop",)) -> Path:
    """A copy of the course with these katas, and its manifest made from the copy."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".kata")
    (dest / "katas").mkdir(parents=True)
    (dest / "solutions").mkdir()
    shutil.copy2(ROOT / "katas" / "rules.toml", dest / "katas")
    for name in katas:
        shutil.copytree(ROOT / "katas" / name, dest / "katas" / name, ignore=ignore)
        shutil.copytree(ROOT / "solutions" / name, dest / "solutions" / name, ignore=ignore)
    for folder in ("kata_tools", "kata_blog", "tests/mistakes"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=ignore)
    for name in ("conftest.py", "pyproject.toml", "grading.toml"):
        shutil.copy2(ROOT / name, dest / name)
    if (ROOT / ".github").is_dir():
        shutil.copytree(ROOT / ".github", dest / ".github")
    # What `python -m kata_tools.manifest --write` does in the copy, without a process per test.
    manifest.write(dest)
    return dest


def env_for(course: Path, **extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if k
        not in (
            "KATA_SOLUTIONS",
            "KATA_SOURCE",
            "KATA_NO_PROGRESS",
            "GITHUB_STEP_SUMMARY",
            "KATA_MANIFEST_DIGEST",
            "KATA_ROOT_CHOSEN",
            "PYTEST_ADDOPTS",
            "PYTEST_CURRENT_TEST",
        )
    }
    env.update(PYTHONPATH=str(course), PYTHONDONTWRITEBYTECODE="1", COLUMNS="200", NO_COLOR="1")
    env.update(extra)
    return env


def kata(course: Path, *args: str, timeout: float = 300, **env) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "kata_tools.cli", *args],
        cwd=course,
        env=env_for(course, **env),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )


def solve(course: Path, name: str) -> None:
    for path in (course / "solutions" / name).rglob("*.py"):
        target = course / "katas" / name / path.relative_to(course / "solutions" / name)
        shutil.copy(path, target)  # a fresh modification time, as when the learner saves


def pytest_in(course: Path, *args: str) -> subprocess.CompletedProcess:
    """A plain `pytest katas/01_event_loop -q ARGS` in the copy, as a learner runs it."""
    return subprocess.run(
        [sys.executable, "-m", "pytest", "katas/01_event_loop", "-q", *args],
        cwd=course,
        env=env_for(course),
        capture_output=True,
        text=True,
    )


def no_traceback(proc: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.fixture
def course(tmp_path) -> Path:
    return make_course(tmp_path / "course")


# --- kata list ------------------------------------------------------------------------------------


def test_list_reads_the_results_of_a_plain_pytest_run_without_running_or_importing_specs(course):
    pristine = kata(course, "list")
    assert pristine.returncode == 0, pristine.stderr
    assert re.search(r"01\s+The event loop\s+· not started", pristine.stdout), pristine.stdout
    assert "0 of 1 solved" in pristine.stdout and "0 of 3 met" in pristine.stdout

    solve(course, "01_event_loop")
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "katas/01_event_loop", "-q"],
        cwd=course,
        env=env_for(course),
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout
    start = time.perf_counter()
    listed = kata(course, "list")
    took = time.perf_counter() - start
    assert re.search(r"01\s+The event loop\s+✔ solved\s+9/9\s+EL1✔\s+EL2✔\s+EL3✔", listed.stdout), (
        listed.stdout
    )
    assert "1 of 1 solved" in listed.stdout and "3 of 3 met" in listed.stdout
    # Fast by construction, judged structurally: it reads .kata/results.json and imports neither
    # pytest nor the course's stack (0.3-0.7 s measured, most of it Python and typer starting).
    # The wall clock only catches a gross regression, with a 5x margin on a loaded machine.
    imports = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "kata_tools.cli", "list"],
        cwd=course,
        env=env_for(course),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    imported = {line.rsplit("|", 1)[-1].strip() for line in imports.stderr.splitlines() if "|" in line}
    heavy = {"pytest", "_pytest", "fastapi", "sqlalchemy", "asyncpg", "uvicorn", "httpx", "psycopg2"}
    assert imports.returncode == 0 and not heavy & imported, sorted(heavy & imported)
    assert took < 5.0, f"kata list took {took:.2f} s"


def test_list_shows_failing_partly_run_and_edited_since(course):
    pytest_in(course, "-k", "fifty")
    listed = kata(course, "list").stdout
    assert re.search(r"01\s+The event loop\s+✘ failing\s+0/1\s+EL1·\s+EL2✘\s+EL3·", listed), listed

    solve(course, "01_event_loop")
    pytest_in(course, "-k", "fifty")
    listed = kata(course, "list").stdout
    assert re.search(r"01\s+The event loop\s+◐ partly run\s+1/1", listed), listed

    learner = course / "katas/01_event_loop/event_loop.py"
    os.utime(learner, (time.time() + 5, time.time() + 5))
    listed = kata(course, "list").stdout
    assert "partly run *" in listed and "changed since these results" in listed, listed


def test_the_installed_console_script_works_on_the_copy_it_is_run_in(course):
    script = Path(sys.executable).parent / "kata"
    if not script.exists():
        pytest.skip("the kata console script is not installed in this environment")
    (course / ".kata").mkdir()
    (course / ".kata/results.json").write_text(
        json.dumps(
            {
                "format": 1,
                "katas": {
                    "01_event_loop": {
                        "complete": True,
                        "ran_at": 1.0,
                        "specs": {
                            "katas/01_event_loop/test_event_loop.py::test_x": {
                                "rules": ["EL1", "EL2", "EL3"],
                                "outcome": "passed",
                                "at": 1e12,
                            }
                        },
                    }
                },
            }
        )
    )
    env = env_for(course)
    del env["PYTHONPATH"]  # as a learner runs it: the script was installed from another folder
    proc = subprocess.run(
        [str(script), "list"], cwd=course / "katas", env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    assert "1 of 1 solved" in proc.stdout, proc.stdout


# --- bad input ------------------------------------------------------------------------------------


def test_bad_input_gives_one_line_and_an_exit_code_never_a_traceback(course):
    unknown = kata(course, "hint", "42")
    assert unknown.returncode == 2 and unknown.stderr.strip().count("\n") == 0, unknown.stderr
    assert "no kata '42'" in unknown.stderr and "01" in unknown.stderr

    usage = kata(course, "reset")
    assert usage.returncode == 2 and "Missing argument" in usage.stderr

    (course / ".kata").mkdir()
    (course / ".kata/results.json").write_text("{not json")
    (course / ".kata/progress.json").write_text('{"format": 1, "hints": ["nonsense"]}')
    listed = kata(course, "list")
    assert listed.returncode == 0 and "not started" in listed.stdout
    assert "results.json is corrupt" in listed.stderr and listed.stderr.strip().count("\n") == 0
    hinted = kata(course, "hint", "1")
    assert hinted.returncode == 0 and "Hint 1 of" in hinted.stdout

    (course / "katas/01_event_loop/event_loop.py").write_text("# my attempt\n")
    reset = kata(course, "reset", "01")  # stdin is not a terminal: it cannot ask
    assert reset.returncode == 2 and "--yes" in reset.stderr
    assert (course / "katas/01_event_loop/event_loop.py").read_text() == "# my attempt\n"

    shutil.rmtree(course / "katas/01_event_loop")
    gone = kata(course, "hint", "01")
    assert gone.returncode == 1 and "katas/01_event_loop is missing" in gone.stderr
    listed = kata(course, "list")
    assert listed.returncode == 0 and "folder missing" in listed.stdout

    shutil.rmtree(course / "katas")
    nowhere = kata(course, "list")
    assert nowhere.returncode == 2 and "no katas/ folder" in nowhere.stderr
    for proc in (unknown, usage, listed, hinted, reset, gone, nowhere):
        no_traceback(proc)


# --- next, hint, reset ----------------------------------------------------------------------------


def test_next_shows_the_task_and_the_current_failures(course):
    proc = kata(course, "next")
    assert proc.returncode == 0, proc.stderr
    assert "Kata 01 · The event loop" in proc.stdout
    assert "serve_concurrently(handler, request_ids)" in proc.stdout  # the task, from the README
    assert "Rule EL1" in proc.stdout and "Not written yet" in proc.stdout  # the first failure
    # It ran the specs, so the results are there for `kata list` now.
    assert "0/9" in kata(course, "list").stdout


def test_next_shows_failures_in_the_current_language_not_the_last_runs(course):
    assert kata(course, "next").returncode == 0  # an English run: its messages are stored
    stored = kata(course, "--lang", "ko", "next", "--no-run")
    assert "다른 언어로 실행한 결과" in stored.stdout, stored.stdout
    korean = kata(course, "--lang", "ko", "next")
    assert korean.returncode == 0 and "카타 01의 스펙을 실행한다" in korean.stdout, korean.stdout
    assert "아직 작성하지 않았다" in korean.stdout and "Not written yet" not in korean.stdout
    assert "스펙: " not in korean.stdout.replace("스펙: katas/", "")  # no English docstring line
    again = kata(course, "--lang", "ko", "next")  # now stored in Korean: shown without a run
    assert "카타 01의 스펙을 실행한다" not in again.stdout and "아직 작성하지 않았다" in again.stdout


def test_hint_climbs_the_ladder_and_remembers_it(course):
    readme_hints = re.findall(
        r"^\d+\. ",
        (course / "katas/01_event_loop/README.md").read_text().split("## Hints")[1].split("\n## ")[0],
        re.M,
    )
    n = len(readme_hints)
    shown = [kata(course, "hint", "01").stdout for _ in range(n + 1)]
    for i, text in enumerate(shown[:n]):
        assert f"Hint {i + 1} of {n}" in text, text
    assert "asyncio.sleep" in shown[0]
    ladder = catalog.find_kata("01").hints()  # the ladder of kata.toml, in its order
    assert len(ladder) == n
    for text, step in zip(shown, ladder):

        def plain(t: str) -> str:
            return " ".join(re.sub(r"[`*]", "", t).split())

        assert plain(step.text_in("en"))[:40] in plain(text), (step, text)
    assert "No more hints for kata 01" in shown[n]
    data = json.loads((course / ".kata/progress.json").read_text())
    assert data["hints"]["01_event_loop"] == n
    again = kata(course, "hint", "01", "--all").stdout
    assert again.count("Hint ") == n


def test_reset_restores_the_pristine_stub_and_keeps_the_learner_version(course):
    learner = course / "katas/01_event_loop/event_loop.py"
    pristine = learner.read_text()
    learner.write_text("# my half-done attempt\n")
    subprocess.run(
        [sys.executable, "-m", "pytest", "katas/01_event_loop", "-q"],
        cwd=course,
        env=env_for(course),
        capture_output=True,
    )
    proc = kata(course, "reset", "01", "--yes")
    assert proc.returncode == 0, proc.stderr
    assert learner.read_text() == pristine
    assert "from kata_tools/manifest.json" in proc.stdout
    backups = list((course / ".kata/backup/01_event_loop").rglob("event_loop.py"))
    assert [b.read_text() for b in backups] == ["# my half-done attempt\n"]
    assert "not started" in kata(course, "list").stdout  # its old results are forgotten
    assert "nothing to reset" in kata(course, "reset", "01", "--yes").stdout


def test_reset_falls_back_to_git_and_says_when_it_is_impossible(course):
    learner = course / "katas/01_event_loop/event_loop.py"
    pristine = learner.read_text()
    data = json.loads((course / "kata_tools/manifest.json").read_text())
    del data["katas"]["01_event_loop"]  # as if the manifest predates the kata
    (course / "kata_tools/manifest.json").write_text(json.dumps(data))
    learner.write_text("# attempt\n")
    impossible = kata(course, "reset", "01", "--yes")
    assert (
        impossible.returncode == 1 and "cannot reset katas/01_event_loop/event_loop.py" in impossible.stderr
    )
    no_traceback(impossible)

    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    learner.write_text(pristine)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=course, check=True)
    subprocess.run([*git, "add", "katas"], cwd=course, check=True)
    subprocess.run([*git, "commit", "-q", "-m", "course"], cwd=course, check=True)
    learner.write_text("# attempt\n")
    proc = kata(course, "reset", "01", "--yes")
    assert proc.returncode == 0 and "from git HEAD" in proc.stdout, proc.stdout + proc.stderr
    assert learner.read_text() == pristine


# --- watch ----------------------------------------------------------------------------------------


def test_watch_once_runs_the_kata_and_shows_the_first_failure(course):
    failing = kata(course, "watch", "01", "--once")
    assert failing.returncode == 1
    assert "0 of 9 specs pass" in failing.stdout and "Rule EL1" in failing.stdout
    solve(course, "01_event_loop")
    solved = kata(course, "watch", "1", "--once")
    assert solved.returncode == 0 and "Kata 01 solved" in solved.stdout, solved.stdout


def test_watch_loop_reruns_only_when_a_learner_file_of_the_kata_changes(course):
    driver = """
import sys
from kata_tools import catalog, cli
kata = catalog.find_kata("01")
runs = []
def fake_run(k):
    runs.append(k.name)
    outcome = "passed" if len(runs) == 3 else "failed"
    return [{"nodeid": "x", "name": "t", "rules": ["EL1"], "outcome": outcome, "message": "TEACH", "doc": ""}], ""
changes = iter([
    {(1, str(catalog.ROOT / "katas" / "rules.toml"))},        # not a learner file: ignored
    {(2, str(kata.path / "event_loop.py"))},                   # re-run: still failing
    {(2, str(kata.path / "test_event_loop.py")), (2, str(kata.path / "event_loop.py"))},
    {(2, str(kata.path / "event_loop.py"))},                   # never reached: solved before
])
code = cli.watch_loop(kata, changes, run=fake_run, clear=False)
print("RESULT", code, len(runs))
"""
    proc = subprocess.run(
        [sys.executable, "-c", driver],
        cwd=course,
        env=env_for(course),
        capture_output=True,
        text=True,
    )
    assert "RESULT 0 3" in proc.stdout, proc.stdout + proc.stderr
    assert proc.stdout.count("TEACH") == 2 and "Every kata is solved" in proc.stdout


def _watch(course: Path, *args: str):
    proc = subprocess.Popen(
        [sys.executable, "-m", "kata_tools.cli", "watch", *args],
        cwd=course,
        env=env_for(course, PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()

    def wait_for(text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in "".join(lines):
            assert (time.monotonic() < deadline and proc.poll() is None) or text in "".join(lines), (
                f"no {text!r} in:\n" + "".join(lines)
            )
            time.sleep(0.05)

    return proc, lines, wait_for, reader


def _stop(proc: subprocess.Popen, reader: threading.Thread) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(timeout=30)
    reader.join(5)
    proc.stdout.close()


def test_watch_polls_reruns_on_save_and_stops_when_every_kata_is_solved(course):
    proc, lines, wait_for, reader = _watch(course, "01", "--poll")
    try:
        wait_for("Ctrl-C stops")
        solve(course, "01_event_loop")
        wait_for("Every kata is solved")
        assert proc.wait(timeout=30) == 0
    finally:
        _stop(proc, reader)
    output = "".join(lines)
    assert "0 of 9 specs pass" in output and "9 of 9 specs pass" in output
    assert "Traceback" not in output


def test_watch_keeps_a_save_made_while_the_specs_run(course):
    proc, lines, wait_for, reader = _watch(course, "01", "--poll")
    try:
        time.sleep(0.8)  # the first run is starting or going on: the save must not be lost
        solve(course, "01_event_loop")
        wait_for("Every kata is solved")
        assert proc.wait(timeout=30) == 0
    finally:
        _stop(proc, reader)
    assert "9 of 9 specs pass" in "".join(lines)


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process is POSIX")
def test_watch_stops_cleanly_on_ctrl_c(course):
    proc, lines, wait_for, reader = _watch(course, "01")
    try:
        wait_for("Ctrl-C stops")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=30) == 0
    finally:
        _stop(proc, reader)
    output = "".join(lines)
    assert "Stopped watching" in output and "Traceback" not in output, output


# --- grade: tests/test_grading*.py (the grading engineer's files) ------------------------------

# --- conventions: version, help, completion, bare kata, pass-through, --lf ------------------------


def test_version_help_and_completion(course):
    version = kata(course, "--version")
    assert version.returncode == 0 and re.fullmatch(r"kata \S+\n", version.stdout), version.stdout
    helped = kata(course, "-h")
    assert helped.returncode == 0 and "watch" in helped.stdout and "--install-completion" in helped.stdout
    assert kata(course, "hint", "-h").returncode == 0


def test_every_command_option_and_argument_has_its_help_in_both_languages():
    import warnings

    # typer at its floor (0.19) imports a name the newest click deprecates, and this test imports
    # it into pytest itself, where warnings are errors; the `kata` command never runs under that.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import typer

        from kata_tools import i18n
        from kata_tools.cli import app, helptexts

    keys = [key for key, _ in helptexts.helped(typer.main.get_command(app))]
    assert len(keys) > 30
    missing = [key for key in keys if key not in i18n.tool("cli")]
    assert not missing, f"help texts missing from kata_tools/messages/cli.toml: {missing}"


def test_help_follows_lang_given_on_the_command_line(course):
    korean = kata(course, "--lang", "ko", "watch", "--help")
    assert korean.returncode == 0 and "스펙을 한 번 실행하고" in korean.stdout, korean.stdout
    assert "이 도움말을" in korean.stdout and "run the specs once" not in korean.stdout
    from kata_tools.helpformat import width

    for args in (("--help",), ("watch", "--help"), ("lab", "--help")):
        shown = kata(course, "--lang", "ko", *args, COLUMNS="200")
        wide = [line for line in shown.stdout.splitlines() if width(line) > 80]
        assert shown.returncode == 0 and not wide, f"kata {' '.join(args)}: over 80 columns: {wide}"
    english = kata(course, "--lang=en", "-h", KATA_LANG="ko")
    assert english.returncode == 0 and "Katas on concurrency" in english.stdout, english.stdout


def test_bare_kata_watches_the_current_kata_and_hint_without_nn_means_it(course):
    hinted = kata(course, "hint")
    assert hinted.returncode == 0 and "Hint 1 of" in hinted.stdout and "kata 01" in hinted.stdout
    solve(course, "01_event_loop")
    bare = kata(course)
    assert bare.returncode == 0, bare.stdout + bare.stderr
    assert "Kata 01 solved" in bare.stdout and "Every kata is solved" in bare.stdout


def test_hint_offers_the_ladder_of_the_rule_that_fails_now(course):
    kata_toml = catalog.find_kata("01").declaration
    el2 = [h for h in kata_toml.hints if not h.rules or "EL2" in h.rules]
    assert 0 < len(el2) < len(kata_toml.hints), "kata 01 ties some hints to EL2 only"
    pytest_in(course, "-k", "fifty")  # EL2 fails
    shown = kata(course, "hint")
    assert shown.returncode == 0 and f"Hint 1 of {len(el2)}" in shown.stdout, shown.stdout
    assert "rule EL2" in shown.stdout
    data = json.loads((course / ".kata/progress.json").read_text())
    assert data["hints"] == {"01_event_loop/EL2": 1}
    korean = kata(course, "--lang", "ko", "hint", "01")
    assert f"힌트 2/{len(el2)}" in korean.stdout and "규칙 EL2" in korean.stdout, korean.stdout


def test_watch_passes_pytest_args_after_a_double_dash_and_last_failed_works(course):
    first = kata(course, "watch", "01", "--once", "--", "-k", "fifty")
    assert first.returncode == 1 and "0 of 1 specs pass" in first.stdout, first.stdout + first.stderr
    assert (course / ".kata/pytest-cache").is_dir()  # the cache provider, inside .kata/
    solve(course, "01_event_loop")
    again = kata(course, "watch", "01", "--once", "--", "--lf")
    assert again.returncode == 0 and "1 of 1 specs pass" in again.stdout, again.stdout


# --- two languages --------------------------------------------------------------------------------


def test_kata_lang_is_remembered_and_reaches_the_pytest_runs(course):
    (course / "katas/01_event_loop/conftest.py").write_text(
        "import os, pathlib\n"
        "pathlib.Path(__file__).with_name('lang.txt').write_text(os.environ.get('KATA_LANG', '-'))\n"
    )
    saved = kata(course, "lang", "ko")
    assert saved.returncode == 0 and (course / ".kata/lang").read_text().strip() == "ko"
    listed = kata(course, "list")
    assert "시작 전" in listed.stdout and "카타" in listed.stdout, listed.stdout
    assert "not started" in kata(course, "--lang", "en", "list").stdout
    kata(course, "watch", "01", "--once")
    assert (course / "katas/01_event_loop/lang.txt").read_text() == "ko"
    kata(course, "--lang", "en", "watch", "01", "--once")
    assert (course / "katas/01_event_loop/lang.txt").read_text() == "en"
    bad = kata(course, "lang", "fr")
    assert bad.returncode == 2 and "fr" in bad.stderr


def english_cli_sentences() -> list[str]:
    """Each cli.toml English text's longest stretch without placeholders, when it is prose."""
    from kata_tools import i18n

    out = []
    for key, entry in i18n.tool("cli").entries.items():
        if key.startswith("help-"):
            continue  # --help, checked by test_help_follows_lang_given_on_the_command_line
        # Code (`kata next`) and placeholders stay as they are in both languages: split on them.
        parts = re.split(r"`[^`]*`|\{[^}]*\}|\n", entry["en"])
        longest = max(parts, key=len).strip(" .,:;()")
        if len(re.findall(r"\b[a-z]{2,}\b", longest)) >= 4:
            out.append(longest)
    return out


@pytest.mark.parametrize("lang", ["en", "ko"])
def test_every_learner_command_works_in_both_languages(tmp_path, lang):
    # The same walk in each language: list, next, hint, watch --once, reset, grade. Same exit codes,
    # no traceback; in Korean, no English sentence of the command's own catalog.
    course = make_course(tmp_path / "course", katas=("01_event_loop", "02_thread_pool"))
    solve(course, "02_thread_pool")
    walk = [
        (["list"], 0),
        (["next", "--no-run"], 0),
        (["hint", "01"], 0),
        (["watch", "01", "--once"], 1),
        (["reset", "02", "-y"], 0),
        (["grade", "01", "--out", str(tmp_path / "grade")], 1),
    ]
    english = english_cli_sentences()
    assert len(english) > 20  # the check below has something to look for
    for args, code in walk:
        done = kata(course, "--lang", lang, *args)
        shown = done.stdout + done.stderr
        assert done.returncode == code, f"kata {' '.join(args)}: exit {done.returncode}\n{shown}"
        no_traceback(done)
        if lang == "ko":
            assert re.search(r"[\uac00-\ud7a3]", shown), f"kata {' '.join(args)} said nothing in Korean"
            leaked = [sentence for sentence in english if sentence in shown]
            assert not leaked, f"kata {' '.join(args)} in Korean printed English: {leaked}"
    summary = (tmp_path / "grade" / "summary.md").read_text(encoding="utf-8")
    assert bool(re.search(r"[\uac00-\ud7a3]", summary)) == (lang == "ko"), summary[:400]


def test_a_korean_kata_list_stays_aligned_in_80_columns(tmp_path):
    from rich.cells import cell_len

    course = make_course(tmp_path / "course", katas=("01_event_loop", "02_thread_pool"))
    pytest_in(course, "-k", "fifty")
    listed = kata(course, "--lang", "ko", "list", COLUMNS="80")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert all(cell_len(line) <= 80 for line in lines), "\n".join(lines)
    header = next(line for line in lines if line.startswith("#"))

    def column(line: str, text: str) -> int:  # the cell offset where `text` starts
        return cell_len(line[: line.index(text)])

    rows = [line for line in lines if re.match(r"0[12]  ", line)]
    assert len(rows) == 2, lines
    assert column(rows[0], "✘ 실패 중") == column(rows[1], "· 시작 전") == column(header, "상태")
    assert column(rows[0], "0/1") == column(header, "스펙")


# --- contributors: the walk-through of CONTRIBUTING.md --------------------------------------------


def test_the_contributing_walk_through_scaffolds_and_checks_a_kata(course):
    """CONTRIBUTING.md: `kata dev new`, fill in, `kata dev check`: one line per problem."""
    new = kata(course, "dev", "new", "10_retries")
    assert new.returncode == 0, new.stdout + new.stderr
    assert "katas/10_retries/kata.toml" in new.stdout and "kata dev check 10" in new.stdout
    for rel in ("README.md", "README.ko.md", "messages.toml", "retries.py", "test_retries.py"):
        assert (course / "katas/10_retries" / rel).is_file(), rel
    assert (course / "solutions/10_retries/retries.py").is_file()
    assert "TODO" in (course / "katas/10_retries/retries.py").read_text()

    checked = kata(course, "dev", "check", "10", timeout=600)
    problems = [line for line in checked.stdout.splitlines() if "10_retries" in line and "..." not in line]
    assert checked.returncode == 1 and problems == [
        "tests/mistakes/10_retries.toml declares no mistake ([[mistake]]; at least one)"
    ], checked.stdout + checked.stderr

    # Step 3 of the walk-through: declare the mistake the spec catches, and a variant.
    with (course / "tests/mistakes/10_retries.toml").open("a") as f:
        f.write(
            '\n[[mistake]]\nid = "squares"\nrule = "RE1"\nwhy = "Squares, not doubles."\n'
            'file = "retries.py"\nreplace = "return 2 * x"\nwith = "return x * x"\n'
        )
    variant = course / "tests/variants/10_retries/plus-itself"
    variant.mkdir()
    (variant / "retries.py").write_text("async def answer(x: int) -> int:\n    return x + x\n")
    with (course / "tests/variants/10_retries/variants.toml").open("a") as f:
        f.write('[[variant]]\nid = "plus-itself"\nexpect = "pass"\nwhy = "x + x, written differently."\n')
    checked = kata(course, "dev", "check", "10", timeout=600)
    assert checked.returncode == 0 and "0 problem(s) in 1 kata(s)" in checked.stdout, checked.stdout

    # A problem is one line: a Korean README without its task section.
    ko = course / "katas/10_retries/README.ko.md"
    ko.write_text(ko.read_text().replace("## 과제", "## 할 일"))
    quick = kata(course, "dev", "check", "10", "--quick")
    assert quick.returncode == 1
    assert "katas/10_retries/README.ko.md lacks the section(s) ## 과제" in quick.stdout, quick.stdout

    assert kata(course, "dev", "sync").returncode == 0
    assert kata(course, "dev", "sync", "--check").returncode == 0


def test_the_self_tests_judge_the_course_as_shipped_not_a_solved_kata(course):
    """A learner who solved kata 01 runs the project's own tests: the stubs come from the
    manifest, so "the stub fails" and "marks a TODO" still hold."""
    for name in ("conftest.py", "test_specs_are_real.py", "test_catalog.py"):
        shutil.copy2(ROOT / "tests" / name, course / "tests" / name)
    solve(course, "01_event_loop")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "tests/test_specs_are_real.py",
            "tests/test_catalog.py",
            "-q",
            "-p",
            "no:randomly",
            "-k",
            "stub or TODO or mirror or valid",
        ],
        cwd=course,
        env=env_for(course),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    last = proc.stdout.splitlines()[-1]
    assert re.search(r"\b[1-9]\d* passed", last) and not re.search(r"\b\d+ failed", last), last
