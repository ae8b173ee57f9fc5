"""Bad learner code gets a clear, local failure: the file and line, the kata; other katas still run."""

import os
import re
import subprocess
import sys

import pytest

from conftest import run_specs, solution_copy_with
from kata_tools import catalog

# These tests share session fixtures that run every kata in inner pytest processes (minutes on
# a busy machine); each inner spec still has its own timeout.
pytestmark = pytest.mark.timeout(1800)

KATA = catalog.Kata("01_event_loop")
OTHER = catalog.Kata("02_thread_pool")


def broken_source(tmp_path, edit):
    """Solutions of kata 01 and 02 in a temp source folder, with `edit(text)` applied to kata 01."""
    source = tmp_path / "src"
    solution_copy_with(KATA, source)
    solution_copy_with(OTHER, source)
    learner = source / KATA.name / "event_loop.py"
    if edit is None:
        learner.unlink()
    else:
        learner.write_text(edit(learner.read_text()))
    return source


def run_broken(tmp_path, edit, *args):
    source = broken_source(tmp_path, edit)
    paths = [KATA.path.relative_to(catalog.ROOT).as_posix(), OTHER.path.relative_to(catalog.ROOT).as_posix()]
    return run_specs(paths, tmp_path, "--kata-source", str(source), *args)


def assert_kata_failed_and_other_passed(run, message_part, once=False):
    ours = [r for r in run.specs.values() if r["kata"] == KATA.name]
    others = [r for r in run.specs.values() if r["kata"] == OTHER.name]
    assert ours and all(r["outcome"] in ("failed", "error") for r in ours), run.output[-3000:]
    assert all(message_part in r["message"] for r in ours), [r["message"] for r in ours][:2]
    assert others and all(r["outcome"] == "passed" for r in others), run.output[-3000:]
    assert "Traceback" not in run.output
    assert "warnings summary" not in run.output
    assert "INTERNALERROR" not in run.output
    if once:  # an import failure is shown once; the kata's other specs point to it in one line
        assert run.output.count(message_part) == 1, run.output[-3000:]
        assert run.output.count("does not import, see above") == len(ours) - 1, run.output[-3000:]


def test_a_syntax_error_names_the_file_and_line_and_other_katas_still_run(tmp_path):
    run = run_broken(tmp_path, lambda text: text.replace("results = []", "results = [", 1))
    line = next(
        i
        for i, text in enumerate((tmp_path / "src" / KATA.name / "event_loop.py").read_text().splitlines(), 1)
        if text.strip() == "results = ["
    )
    assert_kata_failed_and_other_passed(run, f"event_loop.py:{line}: SyntaxError", once=True)


def test_on_ci_the_short_summary_repeats_no_message(tmp_path):
    # CI=true (GitHub Classroom) makes pytest print whole messages in its short summary.
    source = broken_source(tmp_path, lambda text: text.replace("results = []", "results = [", 1))
    paths = [KATA.path.relative_to(catalog.ROOT).as_posix()]
    run = run_specs(paths, tmp_path, "--kata-source", str(source), env={"CI": "true"})
    assert run.output.count("SyntaxError") == 1, run.output[-3000:]
    assert run.output.count("Fix it:") == 1, run.output[-3000:]


def pytest_without_autoload(*args: str, hide: str = "") -> subprocess.CompletedProcess:
    # sys.modules[name] = None makes that package missing for importlib, as in a bare Python.
    code = f"import sys; {hide and f'sys.modules[{hide!r}] = None; '}import pytest; sys.exit(pytest.main({list(args)!r}))"
    env = dict(os.environ, PYTEST_DISABLE_PLUGIN_AUTOLOAD="1", KATA_LANG="en")
    return subprocess.run(
        [sys.executable, "-c", code], cwd=catalog.ROOT, env=env, capture_output=True, text=True, timeout=300
    )


def test_with_plugin_autoload_off_the_specs_still_run():
    done = pytest_without_autoload(KATA.path.relative_to(catalog.ROOT).as_posix(), "--solutions", "-q")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]


def test_a_python_without_the_course_installed_is_told_in_two_lines_to_install_it():
    done = pytest_without_autoload(
        KATA.path.relative_to(catalog.ROOT).as_posix(), "-q", hide="pytest_asyncio"
    )
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "pytest-asyncio missing" in out and "pip install -e ." in out, out[-2000:]
    assert "Traceback" not in out and "INTERNALERROR" not in out and "Unknown config option" not in out, out


def test_a_crash_at_import_names_the_file_line_and_error(tmp_path):
    run = run_broken(tmp_path, lambda text: text + "\nraise RuntimeError('boom at import')\n")
    assert_kata_failed_and_other_passed(run, "RuntimeError: boom at import", once=True)
    lines = (tmp_path / "src" / KATA.name / "event_loop.py").read_text().count("\n")
    assert f"event_loop.py:{lines}: importing the file raised RuntimeError" in run.output


@pytest.mark.parametrize("exit_call", ["raise SystemExit(3)", "import sys; sys.exit('bye')", "exit()"])
def test_system_exit_at_import_is_an_import_crash_like_any_other(tmp_path, exit_call):
    run = run_broken(tmp_path, lambda text: text + f"\n{exit_call}\n")
    assert_kata_failed_and_other_passed(run, "importing the file raised SystemExit", once=True)


def test_a_missing_learner_file_says_how_to_restore_it(tmp_path):
    run = run_broken(tmp_path, None)
    assert_kata_failed_and_other_passed(run, "is missing")


def test_a_missing_function_is_named_in_plain_words(tmp_path):
    run = run_broken(
        tmp_path, lambda text: text.replace("async def serve_concurrently", "async def serve_renamed")
    )
    failed = {r["name"]: r["message"] for r in run.failed(KATA.name)}
    assert failed and all("defines no 'serve_concurrently'" in m for m in failed.values()), failed
    assert all(r["outcome"] == "passed" for r in run.specs.values() if r["kata"] == OTHER.name)


@pytest.mark.parametrize(
    "hang",
    [
        pytest.param("    while True:\n        pass\n", id="endless-loop"),
        pytest.param("    await asyncio.Event().wait()\n", id="await-that-never-completes"),
    ],
)
def test_hung_learner_code_fails_that_spec_by_timeout_and_the_run_goes_on(tmp_path, hang):
    def edit(text):
        head, sep, tail = text.partition('    """A server with a single worker')
        doc_end = tail.index('"""', 3) + 3
        return head + sep + tail[:doc_end] + "\n" + hang + tail[doc_end:]

    # 4 s: the other kata's heaviest spec (500 requests) takes up to 2.7 s on this loaded machine
    run = run_broken(tmp_path, edit, "-o", "timeout=4")
    hung = [r for r in run.failed(KATA.name)]
    assert hung and all("Timed out" in r["message"] for r in hung), [r["message"] for r in hung]
    assert {r["name"] for r in hung} == {
        r["name"] for r in run.specs.values() if r["kata"] == KATA.name and "one_at_a_time" in r["name"]
    }
    passed = [r for r in run.specs.values() if r["outcome"] == "passed"]
    assert any(r["kata"] == KATA.name for r in passed), "the specs after the hung one must still run"
    assert all(r["outcome"] == "passed" for r in run.specs.values() if r["kata"] == OTHER.name)


def test_the_stub_run_teaches_without_tracebacks_or_warnings(stub_run):
    ours = [r for r in stub_run.specs.values() if r["kata"] == KATA.name]
    assert ours and all(r["outcome"] == "failed" for r in ours)
    assert all(f"rule: {r['rules'][0]}" in r["message"] or r["message"] for r in ours)
    # The self-tests run the pristine stubs from a copy (tests/conftest.py): the file is named by
    # the copy's path, ending in the kata's folder and file.
    assert re.search(r"Not written yet: \S*01_event_loop/event_loop\.py:\d+", stub_run.output)
    assert "Traceback" not in stub_run.output
    assert "warnings summary" not in stub_run.output
