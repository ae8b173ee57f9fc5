"""The grading child's originals: pytest's machinery as it was before any learner code ran.

kata_tools/grading/probe.py calls `snapshot()` when pytest imports it (`-p`, before any conftest,
spec or learner file is imported). The snapshot holds, for every module of pytest, pluggy,
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

PACKAGES = ("_pytest", "pytest", "pluggy", "pytest_asyncio", "pytest_timeout", "kata_tools.grading")
CHANGED_CAP = 5  # names reported at most


def watched(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in PACKAGES)


def _is_code(value) -> bool:
    return callable(value) or isinstance(value, (classmethod, staticmethod, property))


def _parts(value) -> tuple:
    """The objects a replacement would change: the value, and what a function runs."""
    out = [value]
    func = value.__func__ if isinstance(value, (classmethod, staticmethod)) else value
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
    return tuple(out)


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def snapshot() -> Callable[[], list[str]]:
    """A function naming what of the watched machinery changed since this call (empty: nothing)."""
    # Held by the closure below, so replacing this module's names later changes nothing here.
    parts_of, same, is_code, getdict, missing = _parts, _same, _is_code, vars, object()
    attrs: dict[tuple[int, str], tuple[object, str, tuple]] = {}  # (id(owner), name) -> ...
    classes: dict[int, tuple[type, set[str]]] = {}
    for modname, module in sorted(sys.modules.items()):
        if not watched(modname) or not isinstance(module, types.ModuleType):
            continue
        for name, value in list(vars(module).items()):
            if not _is_code(value):
                continue
            attrs[(id(module), name)] = (module, f"{modname}.{name}", _parts(value))
            if isinstance(value, type) and watched(getattr(value, "__module__", "")):
                if id(value) in classes:
                    continue
                qual = f"{value.__module__}.{value.__qualname__}"
                keys = set()
                for attr, member in list(vars(value).items()):
                    if _is_code(member) or hasattr(member, "__get__"):
                        keys.add(attr)
                        attrs[(id(value), attr)] = (value, f"{qual}.{attr}", _parts(member))
                classes[id(value)] = (value, keys)

    def changed() -> list[str]:
        found = []
        for (_, name), (owner, label, parts) in attrs.items():
            now = getdict(owner).get(name, missing)
            if now is missing or not same(parts_of(now), parts):
                found.append(label)
                if len(found) >= CHANGED_CAP:
                    return found
        for cls, keys in classes.values():
            for attr, member in list(getdict(cls).items()):
                if attr not in keys and (is_code(member) or hasattr(member, "__get__")):
                    found.append(f"{cls.__module__}.{cls.__qualname__}.{attr}")
                    if len(found) >= CHANGED_CAP:
                        return found
        return found

    return changed
