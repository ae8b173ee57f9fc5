"""Copies of the course for the grading tests: an instructor's course and a learner's checkout.

`instructor_course` copies the full course (solutions, mistakes) with only the katas asked for
(the ones without a database keep these tests fast) and makes its manifest. `learner_checkout`
is what a learner gets: the student release of that course (`kata release`). `solve` copies a
kata's reference solution into a checkout, as a learner who got it right would have it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from kata_tools import catalog, manifest, release

ROOT = catalog.ROOT
IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", ".kata", ".pytest_cache")


def instructor_course(dest: Path, katas=("01_event_loop",), grading_toml: str | None = None) -> Path:
    (dest / "katas").mkdir(parents=True)
    (dest / "solutions").mkdir()
    shutil.copy2(ROOT / "katas" / "rules.toml", dest / "katas")
    for name in katas:
        shutil.copytree(ROOT / "katas" / name, dest / "katas" / name, ignore=IGNORE)
        shutil.copytree(ROOT / "solutions" / name, dest / "solutions" / name, ignore=IGNORE)
    for folder in ("kata_tools", "kata_blog", "tests/mistakes", "docs", ".github"):
        if (ROOT / folder).is_dir():
            shutil.copytree(ROOT / folder, dest / folder, ignore=IGNORE)
    for name in ("conftest.py", "pyproject.toml", "grading.toml", "README.md", ".gitignore"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, dest / name)
    if grading_toml is not None:
        (dest / "grading.toml").write_text(grading_toml)
    manifest.write(dest)
    return dest


def learner_checkout(instructor: Path, dest: Path) -> Path:
    release.release(dest, instructor)
    return dest


def solve(checkout: Path, kata: str, source: Path = ROOT) -> None:
    for path in (source / "solutions" / kata).rglob("*.py"):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(source / "solutions" / kata)
        target = checkout / "katas" / kata / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)


def clean_python(dest: Path) -> Path:
    """A venv at `dest` with this one's packages (hard links), but not the course's editable
    install: a Python that does not point at this course, as the docs ask a grader to use."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(dest)], check=True)
    here = Path(sysconfig.get_paths()["purelib"])
    there = Path(sysconfig.get_paths(vars={"base": str(dest), "platbase": str(dest)})["purelib"])

    def local_install(name: str) -> bool:
        if name.startswith("__editable__"):
            return True
        url = here / name / "direct_url.json"
        return name.endswith(".dist-info") and url.is_file() and '"file:' in url.read_text()

    def link(src, dst):
        try:
            os.link(src, dst)
        except OSError:
            shutil.copy2(src, dst)

    for entry in here.iterdir():
        if local_install(entry.name) or entry.name == "__pycache__":
            continue
        if entry.is_dir():
            shutil.copytree(entry, there / entry.name, copy_function=link, symlinks=True)
        else:
            link(entry, there / entry.name)
    return dest / "bin" / "python"


def learner_file(checkout: Path, kata: str = "01_event_loop") -> Path:
    decl = catalog._declaration((ROOT / "katas" / kata / "kata.toml").resolve())
    return checkout / "katas" / kata / decl.files[0]


def env_for(course: Path, **extra) -> dict:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KATA_", "PYTEST_", "GITHUB_")) and k != "PYTHONPATH"
    }
    env.update(PYTHONPATH=str(course), PYTHONDONTWRITEBYTECODE="1", COLUMNS="200", NO_COLOR="1")
    env.update(extra)
    return env


def run(course: Path, *args: str, timeout: float = 300, **env) -> subprocess.CompletedProcess:
    """`python -m <args>` in the course copy, as its own user would run it."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=course,
        env=env_for(course, **env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
