"""kata watch's preloaded process (kata_tools.preloaded): a forked run is a plain run, only sooner."""

from __future__ import annotations

import os
import signal

import pytest

from conftest import solution_copy_with
from kata_tools import catalog, runner
from kata_tools.preloaded import SUPPORTED, Preloaded

pytestmark = [
    pytest.mark.skipif(not SUPPORTED, reason="the preloaded process forks: Linux only"),
    pytest.mark.timeout(300),
]
KATA = catalog.Kata("01_event_loop")
TARGET = runner.targets([KATA])


@pytest.fixture
def server():
    preloaded = Preloaded(catalog.ROOT, runner.inner_env())
    assert preloaded.ready(wait=60), "the preloaded process never said it was ready"
    yield preloaded
    preloaded.close()
    assert preloaded.proc.returncode is not None  # nothing left running


def verdicts(run: runner.Run) -> dict[str, str]:
    return {r["nodeid"]: r["outcome"] for r in run.records}


def first_lines(run: runner.Run) -> dict[str, str]:
    """nodeid -> the first line of its teaching message (what the code did)."""
    return {r["nodeid"]: (r.get("message") or "").split("\n")[0] for r in run.failed()}


@pytest.mark.parametrize("solutions", [False, True], ids=["stubs", "solutions"])
def test_a_forked_run_gives_the_verdicts_exit_code_and_messages_of_a_plain_run(server, solutions):
    forked = runner.run(TARGET, solutions=solutions, preloaded=server)
    plain = runner.run(TARGET, solutions=solutions)
    assert verdicts(forked) and verdicts(forked) == verdicts(plain)
    assert forked.exit_code == plain.exit_code == (0 if solutions else 1)
    assert first_lines(forked) == first_lines(plain)
    assert "Traceback" not in forked.output and "Warning" not in forked.output, forked.output[-3000:]


def test_a_learner_file_edited_between_forked_runs_is_read_again(server, tmp_path):
    solution_copy_with(KATA, tmp_path)
    learner = tmp_path / KATA.name / KATA.learner_files[0]
    right = learner.read_text()
    assert runner.run(TARGET, source=tmp_path, preloaded=server).exit_code == 0

    learner.write_text('raise RuntimeError("saved half-way")\n' + right)
    broken = runner.run(TARGET, source=tmp_path, preloaded=server)
    assert broken.exit_code == 1 and "saved half-way" in broken.output, broken.output[-3000:]

    learner.write_text(right)
    assert runner.run(TARGET, source=tmp_path, preloaded=server).exit_code == 0


def test_a_forked_run_past_its_time_limit_is_stopped_and_the_next_one_still_forks(server, tmp_path):
    solution_copy_with(KATA, tmp_path)
    learner = tmp_path / KATA.name / KATA.learner_files[0]
    right = learner.read_text()
    learner.write_text("import time\ntime.sleep(600)\n" + right)  # a hang at import, outside any spec
    hung = runner.run(TARGET, source=tmp_path, preloaded=server, timeout=3)
    assert hung.timed_out and "timed out after 3 s" in hung.output
    learner.write_text(right)
    again = runner.run(TARGET, source=tmp_path, preloaded=server)
    assert again.exit_code == 0 and server.state == "ready"


def test_when_the_preloaded_process_is_gone_a_run_is_a_plain_subprocess(server):
    os.kill(server.proc.pid, signal.SIGKILL)
    server.proc.wait()
    run = runner.run(TARGET, solutions=True, preloaded=server)
    assert run.exit_code == 0 and len(run.records) == len(verdicts(run)) > 0
    assert server.state == "gone"


def test_a_forked_run_speaks_the_language_it_is_given(server):
    korean = runner.run(TARGET, lang="ko", preloaded=server)
    english = runner.run(TARGET, lang="en", preloaded=server)
    assert "스펙:" in korean.output and "스펙:" not in english.output, korean.output[-2000:]
