"""Helpers of the project's own tests: run the kata specs in an inner pytest, read what happened.

The runs and the judges are those of `kata dev check` (kata_tools/dev/check.py): the self-tests
prove exactly what that command reports. They test the course as shipped: the stubs come from the
manifest or git, never from a learner's edited katas/.

Each inner run is a subprocess (`python -m pytest katas/... --kata-report FILE`), exactly what a
learner runs, so these tests see the output and outcomes a learner would see.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
import threading
from pathlib import Path

import pytest

from kata_tools import catalog, runner
from kata_tools.dev import check
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
def course_runs(tmp_path_factory, inner_env) -> check.Runs:
    """The inner runs of `kata dev check` (kata_tools/dev/check.py), shared by this session.

    Each declared mistake runs once, in Korean: its verdict is judged by tests/test_specs_are_real.py
    (outcomes and rule tags, in any language), its text by tests/test_korean_edition.py. The English
    messages run on the stubs and the variants."""
    runs = check.Runs(tmp_path_factory.mktemp("runs"), inner_env, PYCACHE)
    runs.mistake_lang = "ko"
    return runs


@pytest.fixture(scope="session")
def solution_run(course_runs) -> runner.Run:
    """Every kata's specs, run once against the reference solutions."""
    return course_runs.solutions(catalog.katas())


@pytest.fixture(scope="session")
def stub_run(course_runs) -> runner.Run:
    """Every kata's specs, run once against the PRISTINE stubs (the manifest's, else git HEAD's):
    a learner's work in katas/ never fails these tests (see kata_tools/dev/check.py)."""
    return course_runs.stubs(catalog.katas())


def solution_copy_with(kata: catalog.Kata, dest: Path, mistake: catalog.Mistake | None = None):
    """Copy solutions/NN_name/ to dest/NN_name/, with the mistake's edit applied."""
    return check.write_solution(kata, dest, mistake)


class OnDemand:
    """Runs each mistake (or variant) of a kata once, all of that kata's at a time, two at once."""

    def __init__(self, run, of_kata):
        self.run, self.of_kata, self.cache = run, of_kata, {}
        self.lock = threading.Lock()

    def result(self, item) -> runner.Run:
        with self.lock:
            if item not in self.cache:
                todo = [i for i in self.of_kata(item.kata) if i not in self.cache] or [item]
                jobs = check.jobs_for(catalog.Kata(item.kata))
                for i, run in zip(todo, check.parallel(self.run, todo, jobs=jobs)):
                    self.cache[i] = run
            return self.cache[item]


MistakeRuns = OnDemand  # the name these tests used before


@pytest.fixture(scope="session")
def mistake_runs(course_runs) -> OnDemand:
    return OnDemand(course_runs.mistake, catalog.mistakes)


@pytest.fixture(scope="session")
def variant_runs(course_runs) -> OnDemand:
    return OnDemand(course_runs.variant, catalog.variants)


def pytest_make_parametrize_id(config, val, argname):
    if isinstance(val, catalog.Kata):
        return val.name
    if isinstance(val, (catalog.Mistake, catalog.Variant)):
        return f"{val.kata}/{val.id}"
    return None
