"""Where things live: the katas, their declarations, the rule catalog and the mistake catalog.

A kata is declared once, in `katas/NN_name/kata.toml` (title, learner files, rule ids, database,
points, hints tied to rules). A rule's statement lives once, in `katas/rules.toml`. Everything else
(the pytest plugin, the `kata` command, grading, the project's own tests, the READMEs' generated
sections) asks this module.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from kata_tools import i18n

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
KATAS = ROOT / "katas"
SOLUTIONS = ROOT / "solutions"
RULES_FILE = KATAS / "rules.toml"
MISTAKES = ROOT / "tests" / "mistakes"
VARIANTS = ROOT / "tests" / "variants"

KATA_DIR = re.compile(r"^(\d\d)_[a-z0-9_]+$")


class CatalogError(Exception):
    """A catalog file is missing or malformed; the message says which and how."""


@dataclass(frozen=True)
class Rule:
    id: str
    title: str | dict
    text: str | dict
    seed: str
    note: str | dict = ""  # where the seed notes are wrong or silent
    beyond_notes: bool = False  # a rule the notes never state (katas 10 and on)

    @property
    def kata(self) -> str:
        """The kata that teaches it: the first whose kata.toml lists it."""
        for kata in katas():
            if self.id in kata.declaration.rules:
                return kata.name
        return ""

    def title_in(self, lang: str | None = None) -> str:
        return i18n.pick(self.title, lang)

    def text_in(self, lang: str | None = None) -> str:
        return i18n.pick(self.text, lang)

    def note_in(self, lang: str | None = None) -> str:
        return i18n.pick(self.note, lang) if self.note else ""


@dataclass(frozen=True)
class Hint:
    rules: tuple[str, ...]  # the rules it helps with; empty: every rule of the kata
    text: dict  # language -> text

    def helps_with(self, rule_ids) -> bool:
        return not self.rules or bool(set(self.rules) & set(rule_ids))

    def text_in(self, lang: str | None = None) -> str:
        return i18n.pick(self.text, lang)


@dataclass(frozen=True)
class Declaration:
    """katas/NN_name/kata.toml, validated."""

    title: dict
    files: tuple[str, ...]
    rules: tuple[str, ...]
    database: bool
    points: float
    hints: tuple[Hint, ...]
    runs_alone: bool = False  # its specs hold most of the server's connections (see Kata)


DECLARATION_KEYS = {"title", "files", "rules", "database", "points", "hint", "runs_alone"}


@cache
def _declaration(path: Path) -> Declaration:
    data = _load_toml(path)
    where = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
    unknown = set(data) - DECLARATION_KEYS
    if unknown:
        raise CatalogError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(DECLARATION_KEYS)}")
    try:
        title = data["title"]
        files = data["files"]
        rule_ids = data["rules"]
    except KeyError as e:
        raise CatalogError(f"{where}: {e.args[0]!r} is required") from None
    if isinstance(title, str):
        title = {i18n.DEFAULT: title}
    if not files or not all(isinstance(f, str) for f in files):
        raise CatalogError(f'{where}: files must list the learner file(s), e.g. ["app.py"]')
    if not rule_ids or not all(isinstance(r, str) for r in rule_ids):
        raise CatalogError(f"{where}: rules must list rule ids of katas/rules.toml")
    hints = []
    for n, entry in enumerate(data.get("hint", []), 1):
        entry = dict(entry)
        helps = tuple(entry.pop("rules", ()))
        if not entry:
            raise CatalogError(f'{where}: hint {n} has no text (en = "...")')
        hints.append(Hint(rules=helps, text=entry))
    return Declaration(
        title=title,
        files=tuple(files),
        rules=tuple(rule_ids),
        database=bool(data.get("database", False)),
        points=float(data.get("points", 10)),
        hints=tuple(hints),
        runs_alone=bool(data.get("runs_alone", False)),
    )


@dataclass(frozen=True)
class Kata:
    name: str  # "01_event_loop"

    @property
    def number(self) -> str:
        return self.name[:2]

    @property
    def declaration_path(self) -> Path:
        return self.path / "kata.toml"

    @property
    def declaration(self) -> Declaration:
        return _declaration(self.declaration_path)

    @property
    def title(self) -> str:
        return i18n.pick(self.declaration.title)

    @property
    def needs_database(self) -> bool:
        return self.declaration.database

    @property
    def points(self) -> float:
        return self.declaration.points

    @property
    def runs_alone(self) -> bool:
        """Its specs hold most of the server's connections: the project's own tests run its
        inner runs one at a time (kata_tools.dev.check.jobs_for)."""
        return self.declaration.runs_alone

    def hints(self, rule_ids=None) -> list[Hint]:
        """The hint ladder; with rule ids, only the steps that help with those rules."""
        hints = self.declaration.hints
        return [h for h in hints if rule_ids is None or h.helps_with(rule_ids)]

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
        """The files a learner edits, as kata.toml declares them (solutions/NN_name/ mirrors them)."""
        return sorted(self.declaration.files)

    @property
    def spec_files(self) -> list[Path]:
        return sorted(self.path.glob("test_*.py"))

    @property
    def rules(self) -> list[Rule]:
        """The rules its specs encode, in the order kata.toml lists them."""
        known = rules()
        return [known[r] for r in self.declaration.rules if r in known]


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


@cache
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


def match_kata_name(key: str, names) -> str | None:
    """The one place a key becomes a kata: the name among `names` that the key means, or None.

    A key is a number ("1", "01"), a folder name ("01_event_loop"), the name without its number
    ("event_loop"), or a path ending in one of those ("katas/01_event_loop/").
    """
    key = str(key).strip().rstrip("/\\").replace("\\", "/").split("/")[-1]
    for name in names:
        if key in (name, name[:2], name[3:]) or (key.isdigit() and int(key) == int(name[:2])):
            return name
    return None


def find_kata(key: str) -> Kata:
    """Find a kata by number ("1", "01") or name ("01_event_loop", "event_loop")."""
    known = [k.name for k in katas()]
    name = match_kata_name(key, known)
    if name is not None:
        return Kata(name)
    key = str(key).strip().rstrip("/").split("/")[-1]
    raise CatalogError(f"no kata {key!r}; the katas are: {', '.join(known)}")


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


@dataclass(frozen=True)
class Variant:
    """A learner's solution written independently of the reference, as full learner files in
    tests/variants/NN_name/<id>/, with the verdict the specs must give it."""

    kata: str
    id: str
    expect: str  # "fail": a spec tagged `rule` rejects it; "pass": every spec passes
    why: str
    rule: str = ""  # only for expect = "fail"
    python: str = ""  # the oldest Python its code runs on ("3.11" for asyncio.TaskGroup), if newer

    @property
    def path(self) -> Path:
        return VARIANTS / self.kata / self.id

    @property
    def runs_here(self) -> bool:
        """Whether this interpreter is new enough for the variant's code (see `python`)."""
        if not self.python:
            return True
        return sys.version_info[:2] >= tuple(int(p) for p in self.python.split(".")[:2])


VARIANT_KEYS = {"id", "expect", "rule", "why", "python"}


def variants(kata: str | None = None) -> list[Variant]:
    """The variants of tests/variants/NN_name/variants.toml (of one kata, or all)."""
    files = [VARIANTS / kata / "variants.toml"] if kata else sorted(VARIANTS.glob("*/variants.toml"))
    out = []
    for path in files:
        if not path.exists():
            continue
        for entry in _load_toml(path).get("variant", []):
            where = f"{path.relative_to(ROOT)}, variant {entry.get('id', '?')!r}"
            unknown = set(entry) - VARIANT_KEYS
            if unknown:
                raise CatalogError(f"{where}: unknown key(s) {sorted(unknown)}")
            if entry.get("expect") not in ("fail", "pass"):
                raise CatalogError(f'{where}: expect must be "fail" or "pass"')
            if entry["expect"] == "fail" and not entry.get("rule"):
                raise CatalogError(f'{where}: expect = "fail" needs the rule a spec must reject')
            if not re.fullmatch(r"(3\.\d+)?", str(entry.get("python", ""))):
                raise CatalogError(f'{where}: python must look like "3.11"')
            if "id" not in entry or "why" not in entry:
                raise CatalogError(f"{where}: id and why are required")
            out.append(Variant(kata=path.parent.name, **entry))
    return out
