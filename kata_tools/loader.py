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
from typing import TYPE_CHECKING

import pytest

from kata_tools import i18n
from kata_tools.catalog import ROOT

if TYPE_CHECKING:  # pytest's class of test failures, public only as pytest.fail.Exception
    from _pytest.outcomes import Failed
else:
    Failed = pytest.fail.Exception


class LearnerNameMissing(AttributeError):
    """A spec asked a learner module for a name the learner has not defined (yet)."""


class LearnerImportFailed(Failed):
    """The learner's file is missing, has a syntax error or crashed at import.

    A pytest failure (pytrace=False) whose text is the teaching message; `file` is the file as
    the learner types it, `where` its file:line ("" if unknown), `error` the error in one line
    ("RuntimeError: boom"), `kind` one of "missing", "syntax", "crash". Specs that import files
    themselves read these attributes instead of parsing the (translated) text."""

    first: LearnerImportFailed | None = None  # on a repeat: the kata's first, full failure

    def __init__(self, msg: str, *, file: str, where: str = "", error: str = "", kind: str = ""):
        super().__init__(msg, pytrace=False)
        self.file, self.where, self.error, self.kind = file, where, error, kind


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
        raise LearnerNameMissing(i18n.tool("plugin")("name-missing", file=shown, name=name))

    return __getattr__


def import_file(path: Path, name: str) -> ModuleType:
    """Execute the file as a fresh module; turn any failure into one clear test failure.

    Raises LearnerImportFailed (a pytest failure) when the file is missing, does not parse, or
    raises anything at import, SystemExit included (a learner's `exit()` or `sys.exit()`)."""
    shown = display(path)
    msg = i18n.tool("plugin")
    if not path.is_file():
        raise LearnerImportFailed(msg("file-missing", file=shown), file=shown, kind="missing")
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None  # a .py file always has a source loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses, pydantic and pickle look modules up by name
    try:
        spec.loader.exec_module(module)
    except SyntaxError as e:
        sys.modules.pop(name, None)
        where = f"{shown}:{e.lineno}"
        raise LearnerImportFailed(
            msg("syntax-error", where=where, error=e.msg),
            file=shown,
            where=where,
            error=f"SyntaxError: {e.msg}",
            kind="syntax",
        ) from None
    except (KeyboardInterrupt, GeneratorExit):
        sys.modules.pop(name, None)
        raise
    except BaseException as e:  # the learner's module crashed at import time (SystemExit too)
        sys.modules.pop(name, None)
        frames = [f for f in traceback.extract_tb(e.__traceback__) if Path(f.filename) == path]
        where = f"{shown}:{frames[-1].lineno}" if frames else shown
        text = str(e).strip().splitlines()[0] if str(e).strip() else ""
        error = f"{type(e).__name__}: {text}" if text else type(e).__name__
        raise LearnerImportFailed(
            msg("import-crash", where=where, error=error),
            file=shown,
            where=where if frames else "",
            error=error,
            kind="crash",
        ) from None
    # PEP 562: a module-level __getattr__, set in the module's namespace
    module.__dict__["__getattr__"] = _missing_name_hook(module, shown)
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
