"""What kata_tools.fast_feedback cuts from a run is never the learner's: the collector is off only
while the spec files are collected, pydantic loads no plugins, and httpx's command line is
imported only when something uses it."""

import os
import subprocess
import sys
import textwrap

from conftest import ROOT

SPEC = textwrap.dedent(
    """
    import gc, os, sys

    import httpx  # as a spec file does: at collection

    COLLECTED_WITH_GC_ON = gc.isenabled()

    def test_the_collector_was_off_while_collecting_and_is_on_for_the_specs():
        assert not COLLECTED_WITH_GC_ON
        assert gc.isenabled()

    def test_pydantic_is_told_to_load_no_plugins():
        assert os.environ["PYDANTIC_DISABLE_PLUGINS"] == "__all__"

    def test_the_httpx_command_line_is_imported_on_first_use_only():
        assert getattr(sys.modules["httpx._main"], "__file__", None) is None  # the stand-in
        assert callable(httpx.main)
        from httpx._main import print_response  # the real module, now
        assert callable(print_response)
        assert sys.modules["httpx._main"].__file__.endswith("_main.py")
    """
)


def run(tmp_path, **env):
    (tmp_path / "test_cuts.py").write_text(SPEC)
    clean = {k: v for k, v in os.environ.items() if k not in ("PYDANTIC_DISABLE_PLUGINS", "KATA_GC_FREEZE")}
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "kata_tools.fast_feedback",
            "-p",
            "no:cacheprovider",
            "test_cuts.py",
        ],
        cwd=tmp_path,
        env={**clean, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_cuts_are_made_and_leave_the_specs_a_normal_process(tmp_path):
    done = run(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 passed" in done.stdout


def test_a_pydantic_plugins_setting_of_the_users_own_is_kept(tmp_path):
    done = run(tmp_path, PYDANTIC_DISABLE_PLUGINS="logfire")
    assert "1 failed, 2 passed" in done.stdout, done.stdout
    assert "'logfire' == '__all__'" in done.stdout


def test_kata_gc_freeze_0_leaves_the_collector_alone(tmp_path):
    done = run(tmp_path, KATA_GC_FREEZE="0")
    assert "1 failed, 2 passed" in done.stdout, done.stdout
    assert "assert not True" in done.stdout
