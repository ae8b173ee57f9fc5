"""The Korean edition is whole: a Korean run of the stubs teaches in Korean, every kata README and
doc has its other-language twin and links the glossary, every rule and hint exists in both.

README structure (sections, order, generated blocks) and the message catalogs' keys and
placeholders are checked by kata_tools.readme.problems and kata_tools.i18n (tests/test_catalog.py,
tests/test_messages.py); this file checks what a Korean learner would see.
"""

from __future__ import annotations

import re

import pytest

from conftest import kata_paths, run_specs
from kata_tools import catalog, i18n

pytestmark = pytest.mark.timeout(1800)

HANGUL = re.compile(r"[\uac00-\ud7a3]")
CODE = re.compile(r"`[^`]*`|'[^']*'|\"[^\"]*\"|\S*[_./:()=<>\[\]{}]\S*|\b[A-Z][A-Za-z]*[A-Z]\w*\b")
WORD = re.compile(r"\b[A-Za-z]{2,}\b")
FUNCTION_WORD = re.compile(
    r"\b(?:the|an?|of|to|in|at|on|is|are|was|were|and|or|not|no|with|for|from|by|its?)\b", re.I
)
PHRASE = re.compile(r"[A-Za-z]{2,}(?: [A-Za-z]{2,})+")
BACKTICKS = re.compile(r"`[^`]*`")  # code, left out first: a colon in it quotes nothing
# What a Korean line quotes as it came, never translated: the text after ": " or after an
# exception's name (a library's error message, a response body), up to the next Hangul.
QUOTED = re.compile(r"(?::\s|[A-Za-z]*(?:Error|Exception|Warning)\b\)?)[^\uac00-\ud7a3]*")
KATAS = catalog.katas()
MISTAKES = [m for kata in KATAS for m in catalog.mistakes(kata.name)]


def english_sentence(line: str) -> bool:
    """A line that reads as English prose: four or more plain English words and no Hangul.

    Code, identifiers, paths, quoted values and CamelCase names are left out before counting:
    they are never translated.
    """
    if HANGUL.search(line):
        return False
    return len(WORD.findall(CODE.sub(" ", line))) >= 4


def english_phrases(line: str) -> list[str]:
    """English phrases inside a Korean line: two or more words with an English function word
    ("the first run"), or three or more lowercase words; code, names and what the line quotes
    (QUOTED: an error's own message) left out."""
    if not HANGUL.search(line):
        return []
    return [
        p
        for p in PHRASE.findall(CODE.sub(" ", QUOTED.sub(" ", BACKTICKS.sub(" ", line))))
        if FUNCTION_WORD.search(p) or (len(p.split()) >= 3 and p.islower())
    ]


@pytest.fixture(scope="session")
def korean_stub_run(tmp_path_factory, inner_env):
    tmp = tmp_path_factory.mktemp("stubs-ko")
    return run_specs(kata_paths(KATAS), tmp, env={**inner_env, "KATA_LANG": "ko"})


def test_the_english_detector_tells_prose_from_code():
    assert english_sentence("query_database blocked the event loop for 0.3 s; await it instead")
    assert not english_sentence("query_database가 이벤트 루프를 0.3초 동안 막았다")
    assert not english_sentence("`await asyncio.sleep(latency)` · pool_size=5, max_overflow=10")
    assert not english_sentence("MissingGreenlet: post.comments (sqlalchemy.exc)")


@pytest.mark.parametrize("kata", KATAS)
def test_a_korean_run_of_the_stubs_prints_no_english_teaching_sentence(kata, korean_stub_run):
    failed = korean_stub_run.failed(kata.name)
    assert failed, f"no spec of {kata.name} failed on the stubs in the Korean run"
    english = [
        f"{r['nodeid']}: {line.strip()}"
        for r in failed
        for line in r["message"].splitlines()
        if english_sentence(line)
    ]
    assert not english, "English teaching text in a Korean run (KATA_LANG=ko):\n  " + "\n  ".join(
        english[:20]
    )


def test_the_phrase_detector_finds_english_phrases_in_korean_lines():
    assert english_phrases("서버의 the first run에서 요청이 실패했다") == ["the first run"]
    assert english_phrases("댓글 엔드포인트: await 없이 호출했다 (위치: katas/08/x.py:3)") == []
    assert english_phrases("lazy loading 대신 eager loading을 쓴다: selectinload(Post.comments)") == []
    assert english_phrases("GET 요청 5개: 5초 안에 끝나지 않았다 · Internal Server Error") == []
    assert english_phrases("The comment endpoints: await 없이 호출한 것이 있다") == ["The comment endpoints"]
    assert (
        english_phrases("pool_settings(64, 10, 6)이(가) ValueError를 냈다: 4 connections cannot give 6") == []
    )
    assert (
        english_phrases("풀의 커넥션을 끊었다: InterfaceError: (sqlalchemy.exc) connection is closed") == []
    )


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_korean_run_of_each_declared_mistake_teaches_in_korean_only(mistake, mistake_runs):
    """What a Korean learner sees on the mistakes learners make (the stubs show only the TODO lines):
    no failure line is an English sentence, no Korean line embeds an English phrase."""
    # The session's one run of this mistake, made in Korean (tests/conftest.py's course_runs).
    run = mistake_runs.result(mistake)
    failed = run.failed(mistake.kata)
    assert failed or run.of(mistake.kata), f"the specs of {mistake.kata} did not run: {run.output[-600:]}"
    english = [
        f"{r['nodeid']}: {line.strip()}"
        for r in failed
        for line in r["message"].splitlines()
        if english_sentence(line) or english_phrases(line)
    ]
    assert not english, f"English in a Korean run of mistake {mistake.id!r}:\n  " + "\n  ".join(english[:20])


@pytest.mark.parametrize("kata", KATAS)
def test_every_kata_readme_links_the_glossary_in_both_languages(kata):
    for name in ("README.md", "README.ko.md"):
        text = (kata.path / name).read_text(encoding="utf-8")
        assert "docs/glossary.md" in text, f"katas/{kata.name}/{name} does not link docs/glossary.md"


@pytest.mark.parametrize("kata", KATAS)
def test_every_rule_title_text_note_and_hint_exists_in_both_languages(kata):
    missing = []
    for rule in kata.rules:
        for field in ("title", "text", "note"):
            value = getattr(rule, field)
            if field == "note" and not value:
                continue
            if not isinstance(value, dict) or any(not value.get(lang) for lang in i18n.LANGS):
                missing.append(f"rule {rule.id} {field}")
    for n, hint in enumerate(kata.hints(), 1):
        if any(not hint.text.get(lang) for lang in i18n.LANGS):
            missing.append(f"hint {n}")
    if any(not kata.declaration.title.get(lang) for lang in i18n.LANGS):
        missing.append("title")
    assert not missing, f"{kata.name}: in one language only: {missing}"


def test_every_doc_and_the_root_readme_have_a_korean_twin_linked_from_the_top():
    docs = [
        catalog.ROOT / "README.md",
        *sorted(
            p
            for p in (catalog.ROOT / "docs").glob("*.md")
            if not p.name.endswith(".ko.md") and p.name != "glossary.md"  # one page in both languages
        ),
    ]
    for english in docs:
        korean = english.with_name(english.stem + ".ko.md")
        rel = english.relative_to(catalog.ROOT).as_posix()
        assert korean.is_file(), f"{rel} has no Korean twin {korean.name}"
        assert korean.name in english.read_text(encoding="utf-8")[:400], (
            f"{rel} does not link {korean.name} at its top"
        )
        assert english.name in korean.read_text(encoding="utf-8")[:400], (
            f"{korean.name} does not link {english.name} at its top"
        )


def test_the_glossary_gives_every_term_in_english_and_korean_with_a_meaning():
    rows = [
        line
        for line in (catalog.ROOT / "docs" / "glossary.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| ") and not line.startswith("| ---") and not line.startswith("| English")
    ]
    assert len(rows) >= 30
    for row in rows:
        cells = [c.strip() for c in row.strip("|").split("|")]
        assert len(cells) == 3 and all(cells), row
        assert HANGUL.search(cells[2]), f"glossary row without a Korean meaning: {row}"
