"""The grading child's originals: pytest's machinery as it was before any learner code ran.

kata_tools/grading/probe.py calls `snapshot()` before any conftest, spec or learner file is
loaded (pytest_load_initial_conftests; pytest's legacypath plugin patches its classes just
before, in the same hook). The snapshot holds, for every module of pytest, pluggy,
pytest-asyncio, pytest-timeout and kata_tools.grading already imported, each callable attribute
(a function, a class, a builtin) with a function's code, defaults and closure, and for each class
defined there every method, classmethod, staticmethod and property. The returned `changed()`
names what differs now: an attribute replaced (`pytest.TestReport.from_item_and_call = ...`), a
function's code swapped, a descriptor added to a class (`TestReport.outcome = property(...)`).

The snapshot lives in a closure, not in a module attribute, so replacing a name of this module
after the fact changes nothing. Code that reaches it anyway (through gc or frames) is on the
review list (kata_tools/grading/review.py). Libraries the specs measure with (time, asyncio) are
not watched: a learner file patching them is listed for review, not refused here.
"""

from __future__ import annotations

import sys
import types
from collections.abc import Callable
from typing import Any

PACKAGES = ("_pytest", "pytest", "pluggy", "pytest_asyncio", "pytest_timeout", "kata_tools.grading")
CHANGED_CAP = 5  # names reported at most


def watched(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in PACKAGES)


def _is_code(value) -> bool:
    return callable(value) or isinstance(value, (classmethod, staticmethod, property))


def _parts(value) -> tuple | None:
    """What a function runs (its code, defaults, closure), for a value that wraps one; else None."""
    func = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
    out: list = []
    if isinstance(func, property):
        out += [func.fget, func.fset, func.fdel]
        func = func.fget
    if isinstance(func, types.FunctionType):
        out += [func.__code__, func.__defaults__, func.__kwdefaults__]
        for cell in func.__closure__ or ():
            try:
                out.append(cell.cell_contents)
            except ValueError:  # an empty cell
                out.append(None)
    return tuple(out) if out else None


def _same(a: tuple | None, b: tuple | None) -> bool:
    if a is None or b is None:
        return a is b
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def snapshot() -> Callable[[], list[str]]:
    """A function naming what of the watched machinery changed since this call (empty: nothing)."""
    # Held by the closure below, so replacing this module's names later changes nothing here.
    parts_of, same, is_code, missing = _parts, _same, _is_code, object()
    entries: list[tuple] = []  # (namespace, name, value, what it runs, label)
    seen: set[tuple[int, str]] = set()
    classes: list[tuple[type, Any, int, set[str]]] = []  # (class, namespace, size, keys)

    def keep(owner, name: str, value, label: str) -> None:
        if (id(owner), name) not in seen:
            seen.add((id(owner), name))
            entries.append((vars(owner), name, value, parts_of(value), label))

    for modname, module in sorted(sys.modules.items()):
        if not watched(modname) or not isinstance(module, types.ModuleType):
            continue
        for name, value in list(vars(module).items()):
            if not is_code(value):
                continue
            keep(module, name, value, f"{modname}.{name}")
            if isinstance(value, type) and watched(getattr(value, "__module__", "")):
                if any(value is c for c, *_ in classes):
                    continue
                qual = f"{value.__module__}.{value.__qualname__}"
                namespace = vars(value)
                keys = set()
                for attr, member in list(namespace.items()):
                    if is_code(member) or hasattr(member, "__get__"):
                        keys.add(attr)
                        keep(value, attr, member, f"{qual}.{attr}")
                classes.append((value, namespace, len(namespace), keys))

    def changed() -> list[str]:
        found = []
        for namespace, name, value, runs, label in entries:
            now = namespace.get(name, missing)
            if now is not value or (runs is not None and not same(parts_of(now), runs)):
                found.append(label)
                if len(found) >= CHANGED_CAP:
                    return found
        for cls, namespace, size, keys in classes:
            if len(namespace) == size:
                continue  # nothing added (a removal is caught above)
            for attr, member in list(namespace.items()):
                if attr not in keys and (is_code(member) or hasattr(member, "__get__")):
                    found.append(f"{cls.__module__}.{cls.__qualname__}.{attr}")
                    if len(found) >= CHANGED_CAP:
                        return found
        return found

    return changed
