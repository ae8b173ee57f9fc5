"""Bytecode folders of inner runs: fresh for the course's files, shared for the libraries'.

An inner run (kata_tools.runner) sets PYTHONPYCACHEPREFIX, so that no bytecode lands in katas/,
solutions/ or a learner's copy, and no __pycache__ shipped with a tree is loaded in place of a
spec. Python then reads and writes *all* bytecode under that folder, the libraries' too, and
ignores the __pycache__ folders next to them: with a fresh folder per run, every run compiled
pytest, FastAPI, SQLAlchemy and pydantic from source again, and so did every worker process a
spec starts. Measured 2026-12-03 (quiet 2-core VM): `pytest katas/07_async_router --solutions`
6.0 s with a fresh folder, 2.4 s with a kept one or none; `import sqlalchemy, psycopg2` in a
kata 13 worker 1.3 s instead of 0.3 s.

So `share_libraries` puts, at the place of each library folder (the standard library,
site-packages) inside a run's folder, a link to one folder per user kept between runs
(<temp>/kata-pyc-<uid>/<digest of the library's path>/): the libraries compile once per
machine, and their bytecode is checked against its source (mtime and size) as in any
__pycache__; the cache of a library folder that is gone (a test's virtualenv) is dropped.
Everything else, the course's own files included, stays in the run's own folder.
Where a link cannot be made (Windows without the symlink right, a shared folder owned by someone
else), the folder stays as it was: the run is slower, its results the same.
"""

from __future__ import annotations

import contextlib
import getpass
import hashlib
import os
import shutil
import site
import sysconfig
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

SHARED_NAME = "kata-pyc-{user}"
MARKER = "library.txt"  # in each library's cache: the folder it holds the bytecode of
_pruned = False  # once per process


def library_dirs(course: Iterable[Path | None]) -> list[Path]:
    """The folders Python imports libraries from, outermost only; none that holds a course folder."""
    # Only the interpreter's own library folders: sys.path also holds the script's folder, a
    # test run's rootdir or /tmp, where a course's or a learner's files live.
    paths = sysconfig.get_paths()
    found = [paths.get(key) for key in ("stdlib", "platstdlib", "purelib", "platlib")]
    with contextlib.suppress(AttributeError):  # site may be trimmed (-S, embedded interpreters)
        found += [*site.getsitepackages(), site.getusersitepackages()]
    course_dirs = [Path(os.path.abspath(c)) for c in course if c is not None]
    chosen: list[Path] = []
    for entry in sorted({os.path.abspath(p) for p in found if p and os.path.isdir(p)}, key=len):
        path = Path(entry)
        if any(path == c or path in c.parents for c in course_dirs):
            continue  # e.g. a course cloned inside site-packages: its files must stay fresh
        if not any(parent in chosen for parent in path.parents):
            chosen.append(path)
    return chosen


def shared_path() -> Path:
    """<temp>/kata-pyc-<uid> (Windows has no uid: the user's name)."""
    user = os.getuid() if hasattr(os, "getuid") else getpass.getuser()
    return Path(tempfile.gettempdir()) / SHARED_NAME.format(user=user)


def shared_dir() -> Path | None:
    """shared_path(), made private to this user; None when it is not ours to use."""
    base = shared_path()
    try:
        base.mkdir(mode=0o700, exist_ok=True)
        info = base.lstat()
    except OSError:
        return None
    # Bytecode is code: a folder someone else made (or a link planted there) is never loaded from.
    if base.is_symlink() or (hasattr(os, "getuid") and info.st_uid != os.getuid()):
        return None
    return base


def _mirrored(prefix: Path, path: Path) -> Path:
    """Where Python looks for the bytecode of `path`'s files under `prefix` (drive and root dropped,
    as importlib's cache_from_source does)."""
    return prefix.joinpath(*path.parts[1:])


def _library_cache(shared: Path, library: Path) -> Path:
    """The shared folder of one library folder, named by a digest of its path, which it records."""
    cache = shared / hashlib.sha256(str(library).encode()).hexdigest()[:16]
    cache.mkdir(exist_ok=True)  # again, too, if a temp cleaner removed it under a kept link
    marker = cache / MARKER
    if not marker.exists():
        marker.write_text(str(library), encoding="utf-8")
    return cache


def _prune(shared: Path) -> None:
    """Drop the caches of library folders that are gone (a test's or a grader's virtualenv)."""
    for cache in shared.iterdir():
        with contextlib.suppress(OSError):
            marker = cache / MARKER
            if marker.exists():
                gone = not Path(marker.read_text(encoding="utf-8")).is_dir()
            else:  # not one of ours, or one being made this instant: only once it is old
                gone = time.time() - cache.lstat().st_mtime > 3600
            if gone:
                shutil.rmtree(cache, ignore_errors=True)


def share_libraries(folder: Path, course: Iterable[Path | None] = ()) -> None:
    """Link each library folder's place inside `folder` to its shared cache (see the docstring)."""
    global _pruned
    shared = shared_dir()
    if shared is None:
        return
    if not _pruned:
        _pruned = True
        _prune(shared)
    for library in library_dirs(course):
        link = _mirrored(folder, library)
        with contextlib.suppress(OSError):
            cache = _library_cache(shared, library)
            if link.is_symlink() or link.exists():
                continue  # a kept folder that has it already: a link, or bytecode compiled there
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(cache, target_is_directory=True)
