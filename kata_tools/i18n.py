"""Every learner-facing text in two languages, from one source per text.

A text lives once, in a TOML catalog, keyed by id, with one string per language:

    [stub-blocks]
    en = "query_database held the loop for {gap:.2f} s ({ticks} heartbeat ticks).\\nAwait ..."
    ko = "query_database가 이벤트 루프를 {gap:.2f}초 동안 붙잡았다 (하트비트 {ticks}번).\\n..."

Catalogs: `katas/NN_name/messages.toml` (a kata's failure messages), `kata_tools/messages/*.toml`
(the plugin, the `kata` command, the lab, grading). Placeholders use str.format syntax; both
languages of a key must use the same placeholders (the self-test checks it).

A message's first line says what the code did, its second what to change. Text after a blank
line is the longer explanation: the plugin shows it only with `pytest -v`.

The language: `set_lang()` (the `--lang` option), else KATA_LANG, else `.kata/lang` in the course
(`kata lang ko`), else the system locale (LC_ALL, LC_MESSAGES, LANG starting with "ko"), else English.
"""

from __future__ import annotations

import contextlib
import os
import string
import sys
from functools import cache
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

LANGS = ("en", "ko")
DEFAULT = "en"
ROOT = Path(__file__).resolve().parent.parent
TOOL_CATALOGS = Path(__file__).resolve().parent / "messages"
LANG_FILE = Path(".kata") / "lang"

_override: str | None = None


class I18nError(Exception):
    """A catalog is malformed, or a key is missing: the message names the file and the key."""


def normalize(value: str | None) -> str | None:
    """'ko', 'ko_KR.UTF-8', 'KO' -> 'ko'; 'en_US' -> 'en'; anything else -> None."""
    if not value:
        return None
    head = value.strip().lower().replace("-", "_").split("_")[0].split(".")[0]
    return head if head in LANGS else None


def set_lang(lang: str | None) -> None:
    """Fix the language for this process (and, through KATA_LANG, for its child processes)."""
    global _override
    _override = normalize(lang)
    if _override:
        os.environ["KATA_LANG"] = _override


@contextlib.contextmanager
def using(lang: str):
    """Texts in `lang` inside the block (drawing the Korean picture beside the English one)."""
    global _override
    previous, _override = _override, normalize(lang)
    try:
        yield
    finally:
        _override = previous


def saved_lang(root: Path = ROOT) -> str | None:
    try:
        return normalize((root / LANG_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def save_lang(lang: str, root: Path = ROOT) -> Path:
    path = root / LANG_FILE
    path.parent.mkdir(exist_ok=True)
    path.write_text(lang + "\n", encoding="utf-8")
    return path


def current() -> str:
    if _override:
        return _override
    chosen = normalize(os.environ.get("KATA_LANG")) or saved_lang()
    if chosen:
        return chosen
    for var in ("LC_ALL", "LC_MESSAGES", "LANG"):
        value = os.environ.get(var)
        if value:  # the first one set decides, as in POSIX
            return "ko" if value.lower().startswith("ko") else DEFAULT
    return DEFAULT


def pick(value: str | dict, lang: str | None = None) -> str:
    """A text that is either one string (same in every language) or a table of languages."""
    if isinstance(value, str):
        return value
    lang = lang or current()
    return value.get(lang) or value.get(DEFAULT) or next(iter(value.values()), "")


def fields_of(template: str) -> set[str]:
    return {name.split(".")[0].split("[")[0] for _, name, _, _ in string.Formatter().parse(template) if name}


class Catalog:
    """One TOML file of messages: `catalog("key", **fields)` gives the text in the current language."""

    def __init__(self, path: Path):
        self.path = Path(path)
        try:
            with self.path.open("rb") as f:
                data = tomllib.load(f)
        except FileNotFoundError:
            data = {}
        except tomllib.TOMLDecodeError as e:
            raise I18nError(f"{self.path}: not valid TOML: {e}") from None
        self.entries: dict[str, dict[str, str]] = {}
        for key, entry in data.items():
            if not isinstance(entry, dict) or not all(isinstance(v, str) for v in entry.values()):
                raise I18nError(f'{self.path}: [{key}] must be a table of language = "text"')
            self.entries[key] = entry

    def __contains__(self, key: str) -> bool:
        return key in self.entries

    def text(self, key: str, lang: str | None = None) -> str:
        try:
            return pick(self.entries[key], lang)
        except KeyError:
            raise I18nError(f"{self.path}: no message [{key}]") from None

    def __call__(self, key: str, /, **fields) -> str:
        template = self.text(key)
        try:
            return template.format(**fields)
        except (KeyError, IndexError, ValueError) as e:
            raise I18nError(f"{self.path}: [{key}] needs {e} (given: {sorted(fields)})") from None

    def problems(self) -> list[str]:
        """What the self-test reports: a key lacking a language, placeholders that differ."""
        out = []
        for key, entry in self.entries.items():
            missing = [lang for lang in LANGS if not entry.get(lang, "").strip()]
            if missing:
                out.append(f"{self.path}: [{key}] lacks {', '.join(missing)}")
                continue
            en, *others = (fields_of(entry[lang]) for lang in LANGS)
            for lang, fields in zip(LANGS[1:], others):
                if fields != en:
                    out.append(
                        f"{self.path}: [{key}] placeholders differ: en {sorted(en)}, {lang} {sorted(fields)}"
                    )
        return out


@cache
def catalog(path: str | Path) -> Catalog:
    """The catalog at `path`, loaded once. A spec file passes `__file__`: its kata's messages.toml."""
    path = Path(path)
    if path.suffix == ".py":
        path = path.parent / "messages.toml"
    return Catalog(path)


def tool(name: str) -> Catalog:
    """A catalog of the tooling: tool("plugin"), tool("cli"), tool("lab"), tool("grading")."""
    return catalog(TOOL_CATALOGS / f"{name}.toml")


def all_catalogs(root: Path = ROOT) -> list[Catalog]:
    paths = sorted((root / "katas").glob("*/messages.toml")) + sorted(TOOL_CATALOGS.glob("*.toml"))
    return [catalog(p) for p in paths]
