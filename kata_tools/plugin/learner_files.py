"""The `kata_module` fixture: a spec imports the learner's file (or the reference) through it.

PYTEST_DONT_REWRITE: registered through kata_tools.pytest_plugin's pytest_plugins.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from kata_tools.loader import LearnerImportFailed, import_file, module_name, source_root
from kata_tools.plugin.shared import IMPORT_FAILED, MODULES, MSG


@pytest.fixture
def kata_module(request: pytest.FixtureRequest):
    """Import a file of this kata: the learner's (katas/), or the reference one (--solutions).

        mod = kata_module("event_loop.py")            # cached for the session
        mod = kata_module("app.py", fresh=True)       # a new module object, executed again

    A missing file, a syntax error or a crash at import (SystemExit too) fails the spec with the
    file and line; the kata's later specs fail with one line pointing to that message.
    """
    spec_path = Path(request.path)
    kata = spec_path.parent.name
    root = source_root(request.config, spec_path)
    cache = request.config.stash[MODULES]
    failed = request.config.stash[IMPORT_FAILED]

    def load(relpath: str, fresh: bool = False):
        path = (root / kata / relpath).resolve()
        key = str(path)
        if key in failed and not fresh:
            raise _repeated(failed[key])
        if fresh or key not in cache:
            try:
                cache[key] = import_file(path, module_name(kata, relpath))
            except LearnerImportFailed as e:
                earlier = failed.get(key)
                if earlier is not None and str(earlier) == str(e):
                    raise _repeated(earlier) from None
                failed[key] = e
                raise
        return cache[key]

    return load


def _repeated(first: LearnerImportFailed) -> LearnerImportFailed:
    again = LearnerImportFailed(
        MSG("import-skipped", file=first.file),
        file=first.file,
        where=first.where,
        error=first.error,
        kind=first.kind,
    )
    again.first = first  # the record keeps the full message: `kata` and grading show it
    return again


def pytest_unconfigure(config: pytest.Config) -> None:
    # The learner's modules are let go before the interpreter's own teardown: a module-level
    # ProcessPoolExecutor is then finalized while concurrent.futures still works (held to the
    # end, its finalizer printed "AttributeError: 'NoneType' object has no attribute 'util'").
    config.stash.get(MODULES, {}).clear()
