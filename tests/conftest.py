"""Helpers of the project's own tests: run the kata specs in an inner pytest, read what happened.

Each inner run is a subprocess (`python -m pytest katas/... --kata-report FILE`), exactly what a
learner runs, so these tests see the output and outcomes a learner would see.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from kata_tools import catalog, runner
from kata_tools.postgres import plugin as database_plugin
from kata_tools.postgres.provisioning import Database

ROOT = catalog.ROOT


SpecRun = runner.Run  # the name these tests used before kata_tools.runner

# One bytecode folder for every inner run of this session, outside the course tree: runs never
# litter katas/, solutions/ or their copies, and each compiles the libraries once, not every time.
PYCACHE = Path(tempfile.mkdtemp(prefix="kata-selftest-pycache-"))
atexit.register(shutil.rmtree, PYCACHE, True)


def run_specs(
    paths: list[str],
    tmp: Path,
    *args: str,
    env: dict | None = None,
    timeout: float = 900,
) -> runner.Run:
    """Run the specs at `paths` in a fresh pytest process from the project root (kata_tools.runner).

    `--solutions` and `--kata-source DIR` may come in `args`, as on pytest's command line.
    """
    return runner.run(paths, args=args, env=env, timeout=timeout, pycache=PYCACHE)


def kata_paths(katas: list[catalog.Kata]) -> list[str]:
    return [k.path.relative_to(ROOT).as_posix() for k in katas]


@pytest.fixture(scope="session")
def inner_env(pytestconfig) -> dict:
    """Environment for inner runs: they share this session's PostgreSQL instead of each starting one."""
    db = database_plugin.start_for_session(pytestconfig)
    if isinstance(db, Database):
        return db.env  # the server and its seeded template, as kata watch hands them over
    return {}


@pytest.fixture(scope="session")
def solution_run(tmp_path_factory, inner_env) -> SpecRun:
    """Every kata's specs, run once against the reference solutions."""
    tmp = tmp_path_factory.mktemp("solutions")
    return run_specs(kata_paths(catalog.katas()), tmp, "--solutions", env=inner_env)


@pytest.fixture(scope="session")
def stub_run(tmp_path_factory, inner_env) -> SpecRun:
    """Every kata's specs, run once against the pristine learner stubs in katas/."""
    tmp = tmp_path_factory.mktemp("stubs")
    return run_specs(kata_paths(catalog.katas()), tmp, env=inner_env)


def solution_copy_with(kata: catalog.Kata, dest: Path, mistake: catalog.Mistake | None = None):
    """Copy solutions/NN_name/ to dest/NN_name/, with the mistake's edit applied."""
    target = dest / kata.name
    shutil.copytree(kata.solution_path, target, ignore=shutil.ignore_patterns("__pycache__"))
    if mistake is not None:
        edited = target / mistake.file
        edited.write_text(mistake.apply(edited.read_text()))
    return dest


class MistakeRuns:
    """Runs each declared mistake against its kata's specs once, two at a time, on demand."""

    def __init__(self, tmp_path_factory, env):
        self.factory, self.env, self.cache = tmp_path_factory, env, {}
        self.lock = threading.Lock()

    def _run(self, mistake: catalog.Mistake) -> SpecRun:
        tmp = self.factory.mktemp(f"mistake-{mistake.kata}-{mistake.id}")
        kata = catalog.Kata(mistake.kata)
        source = solution_copy_with(kata, tmp / "src", mistake)
        return run_specs(kata_paths([kata]), tmp, "--kata-source", str(source), env=self.env)

    def result(self, mistake: catalog.Mistake) -> SpecRun:
        with self.lock:
            if mistake not in self.cache:
                todo = [m for m in catalog.mistakes(mistake.kata) if m not in self.cache]
                # Two at a time: the machine has two cores, and specs count calls, not seconds.
                with ThreadPoolExecutor(max_workers=2) as pool:
                    for m, run in zip(todo, pool.map(self._run, todo)):
                        self.cache[m] = run
            return self.cache[mistake]


@pytest.fixture(scope="session")
def mistake_runs(tmp_path_factory, inner_env) -> MistakeRuns:
    return MistakeRuns(tmp_path_factory, inner_env)


def pytest_make_parametrize_id(config, val, argname):
    if isinstance(val, catalog.Kata):
        return val.name
    if isinstance(val, catalog.Mistake):
        return f"{val.kata}/{val.id}"
    return None
