"""Where things live: the katas, their learner files, the rule catalog and the mistake catalog.

Everything else (the pytest plugin, the `kata` command, the project's own tests) asks this module,
so a kata is described in exactly one place: its folder name, its README, `katas/rules.toml`,
the files that `solutions/NN_name/` mirrors, and `tests/mistakes/NN_name.toml`.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
KATAS = ROOT / "katas"
SOLUTIONS = ROOT / "solutions"
RULES_FILE = KATAS / "rules.toml"
MISTAKES = ROOT / "tests" / "mistakes"

KATA_DIR = re.compile(r"^(\d\d)_[a-z0-9_]+$")


class CatalogError(Exception):
    """A catalog file is missing or malformed; the message says which and how."""


@dataclass(frozen=True)
class Rule:
    id: str
    kata: str
    title: str
    text: str
    seed: str
    note: str = ""  # where the seed notes are wrong or silent


@dataclass(frozen=True)
class Kata:
    name: str  # "01_event_loop"

    @property
    def number(self) -> str:
        return self.name[:2]

    @property
    def title(self) -> str:
        return self.name[3:].replace("_", " ")

    @property
    def path(self) -> Path:
        return KATAS / self.name

    @property
    def solution_path(self) -> Path:
        return SOLUTIONS / self.name

    @property
    def readme(self) -> Path:
        return self.path / "README.md"

    @property
    def learner_files(self) -> list[str]:
        """The files a learner edits: exactly those that solutions/NN_name/ mirrors."""
        return sorted(
            p.relative_to(self.solution_path).as_posix()
            for p in self.solution_path.rglob("*.py")
            if "__pycache__" not in p.parts
        )

    @property
    def spec_files(self) -> list[Path]:
        return sorted(self.path.glob("test_*.py"))

    @property
    def rules(self) -> list[Rule]:
        return [r for r in rules().values() if r.kata == self.name]


@dataclass(frozen=True)
class Mistake:
    """A common wrong solution: the reference solution with one edit applied."""

    kata: str
    id: str
    rule: str
    why: str
    file: str
    replace: str
    with_: str = field(metadata={"toml": "with"})
    prepend: str = ""  # e.g. an import the wrong version needs

    def apply(self, solution_text: str) -> str:
        count = solution_text.count(self.replace)
        if count != 1:
            raise CatalogError(
                f"mistake {self.kata}/{self.id}: the text to replace occurs {count} times in "
                f"solutions/{self.kata}/{self.file} (must be exactly once); update "
                f"tests/mistakes/{self.kata}.toml to match the solution."
            )
        edited = solution_text.replace(self.replace, self.with_)
        return f"{self.prepend}\n{edited}" if self.prepend else edited


def _load_toml(path: Path) -> dict:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise CatalogError(f"{path.relative_to(ROOT)} is missing") from None
    except tomllib.TOMLDecodeError as e:
        raise CatalogError(f"{path.relative_to(ROOT)} is not valid TOML: {e}") from None


@lru_cache(maxsize=None)
def rules() -> dict[str, Rule]:
    data = _load_toml(RULES_FILE)
    out = {}
    for rule_id, entry in data.get("rules", {}).items():
        try:
            out[rule_id] = Rule(id=rule_id, **entry)
        except TypeError as e:
            raise CatalogError(f"katas/rules.toml, rule {rule_id}: {e}") from None
    return out


def katas() -> list[Kata]:
    return sorted(
        (Kata(p.name) for p in KATAS.iterdir() if p.is_dir() and KATA_DIR.match(p.name)),
        key=lambda k: k.name,
    )


def find_kata(key: str) -> Kata:
    """Find a kata by number ("1", "01") or name ("01_event_loop", "event_loop")."""
    key = key.strip().rstrip("/").split("/")[-1]
    for kata in katas():
        if key in (kata.name, kata.number, kata.name[3:]) or (
            key.isdigit() and int(key) == int(kata.number)
        ):
            return kata
    known = ", ".join(k.name for k in katas())
    raise CatalogError(f"no kata {key!r}; the katas are: {known}")


def kata_of(path: Path) -> Kata | None:
    """The kata a file belongs to, whether it lies in katas/, solutions/ or a copy of either."""
    for part in reversed(Path(path).parts):
        if KATA_DIR.match(part):
            return Kata(part)
    return None


def mistakes(kata: str | None = None) -> list[Mistake]:
    files = [MISTAKES / f"{kata}.toml"] if kata else sorted(MISTAKES.glob("*.toml"))
    out = []
    for path in files:
        if not path.exists():
            continue
        for entry in _load_toml(path).get("mistake", []):
            entry = dict(entry)
            entry["with_"] = entry.pop("with", None)
            try:
                out.append(Mistake(kata=path.stem, **entry))
            except TypeError as e:
                raise CatalogError(f"{path.relative_to(ROOT)}: {e}") from None
    return out
