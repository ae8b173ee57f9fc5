"""Import a learner file (or its reference solution) by path, with errors a learner can act on.

Learner files of different katas may share a name (two `app.py`), so each is imported under a
module name derived from its kata and path, never through sys.path.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import traceback
from pathlib import Path
from types import ModuleType

import pytest

from kata_tools.catalog import ROOT


class LearnerNameMissing(AttributeError):
    """A spec asked a learner module for a name the learner has not defined (yet)."""


def display(path: Path) -> str:
    """A path as a learner would type it: relative to the project root when possible."""
    try:
        return Path(path).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return str(path)


def module_name(kata: str, relpath: str) -> str:
    stem = relpath.removesuffix(".py").replace("/", "_").replace("-", "_")
    return f"kata_{kata}__{stem}"


def _missing_name_hook(module: ModuleType, shown: str):
    def __getattr__(name: str):
        if name.startswith("__"):
            raise AttributeError(name)
        raise LearnerNameMissing(
            f"{shown} defines no {name!r}: the specs call it. Define it there "
            f"(the kata's README says what it must do)."
        )

    return __getattr__


def import_file(path: Path, name: str) -> ModuleType:
    """Execute the file as a fresh module; turn any failure into one clear test failure."""
    shown = display(path)
    if not path.is_file():
        pytest.fail(
            f"{shown} is missing. Restore it (`kata reset`, or `git checkout -- {shown}`).",
            pytrace=False,
        )
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pydantic and pickle look modules up by name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(name, None)
        pytest.fail(
            f"{shown}:{e.lineno}: SyntaxError: {e.msg}. "
            f"Fix it: no spec of this kata can run until the file imports.",
            pytrace=False,
        )
    except Exception as e:  # the learner's module crashed at import time
        sys.modules.pop(name, None)
        frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename) == path]
        line = f":{frames[-1].lineno}" if frames else ""
        pytest.fail(
            f"{shown}{line}: importing the file raised {type(e).__name__}: {e}. "
            f"A learner module should only define things; fix the error so the specs can run.",
            pytrace=False,
        )
    module.__getattr__ = _missing_name_hook(module, shown)
    return module


def source_root(config: pytest.Config, spec_path: Path) -> Path:
    """The folder whose NN_name/ subfolders hold the files the specs run against."""
    option = config.getoption("kata_source") or os.environ.get("KATA_SOURCE")
    if option:
        return Path(option).resolve()
    if use_solutions(config):
        return spec_path.parent.parent.parent / "solutions"
    return spec_path.parent.parent


def use_solutions(config: pytest.Config) -> bool:
    if config.getoption("solutions"):
        return True
    return os.environ.get("KATA_SOLUTIONS", "").lower() in ("1", "true", "yes")
