"""`kata dev new NN_name`: every file a kata needs, as a small working example to replace.

Written (nothing is overwritten; the kata must not exist yet):

    katas/NN_name/kata.toml          the declaration: titles, learner file, rule, hints
    katas/NN_name/README.md          English, the sections in order, generated blocks filled
    katas/NN_name/README.ko.md       Korean, the same sections
    katas/NN_name/messages.toml      the failure messages, both languages
    katas/NN_name/<name>.py          the stub, with a TODO
    katas/NN_name/test_<name>.py     the spec, with a rule mark
    solutions/NN_name/<name>.py      the reference solution
    tests/mistakes/NN_name.toml      an empty mistake list (a commented example)
    tests/variants/NN_name/variants.toml  an empty variant list (a commented example)
    katas/rules.toml                 a rule entry stub appended, both languages

Right after `kata dev new`, `kata dev check NN` reports one problem: no declared mistake.
"""

from __future__ import annotations

import re
from pathlib import Path

from kata_tools import catalog, readme


class ScaffoldError(Exception):
    """The kata cannot be scaffolded (bad name, already there); one line says why."""


def rule_id_for(name: str, taken) -> str:
    letters = re.sub(r"[^a-z]", "", name[3:]).upper() or "KT"
    prefix = letters[:2] if len(letters) >= 2 else letters + "X"
    n = 1
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}"


def _closing(number: int) -> tuple[str, str, str]:
    if number <= 9:
        return (
            readme.SECTIONS["notes-differ"]["en"],
            readme.SECTIONS["notes-differ"]["ko"],
            "",
        )
    return (
        readme.SECTIONS["beyond-notes"]["en"],
        readme.SECTIONS["beyond-notes"]["ko"],
        "beyond_notes = true\n",
    )


def files_for(name: str, rule: str) -> dict[str, str]:
    """path (relative to the course root) -> text, for a new kata `name` teaching `rule`."""
    number, topic = name[:2], name[3:]
    title = topic.replace("_", " ").capitalize()
    module = f"{topic}.py"
    diff_en, diff_ko, beyond = _closing(int(number))
    marker = (
        "<!-- generated: {0} (from {1}; `python -m kata_tools.readme --write`) -->\n<!-- end generated -->"
    )
    rules_block = marker.format("rules", "katas/rules.toml")
    hints_block = marker.format("hints", "kata.toml")
    s = readme.SECTIONS
    return {
        f"katas/{name}/kata.toml": f'''# Kata {number}: the one declaration of this kata (CONTRIBUTING.md).
title.en = "{title}"
title.ko = "{title} (TODO: 한국어 제목)"
files = ["{module}"]
rules = ["{rule}"]
database = false
points = 10

[[hint]]
rules = ["{rule}"]
en = "TODO: a question that points at the rule, not at the answer."
ko = "TODO: 답이 아니라 규칙을 가리키는 질문."

[[hint]]
rules = ["{rule}"]
en = "TODO: the API or the idea to use."
ko = "TODO: 써야 할 API나 생각."

[[hint]]
rules = []
en = "TODO: nearly the answer."
ko = "TODO: 답에 가까운 힌트."
''',
        f"katas/{name}/README.md": f"""[한국어](README.ko.md) · [Glossary](../../docs/glossary.md)

# Kata {number} · {title}

Rule **{rule}** · TODO: the course notes' section this kata cites, and a short summary of it in
our own words.

## {s["rules"]["en"]}

{rules_block}

## {s["why"]["en"]}

TODO: why the rule holds, in a paragraph.

## {s["task"]["en"]}

Edit `{module}` (only that file) until `pytest katas/{name}` passes:

1. `answer(x)`: TODO: what the learner writes.

## {s["run"]["en"]}

    pytest katas/{name}              # your code
    pytest katas/{name} --solutions  # the reference solution

## {s["hints"]["en"]}

{hints_block}

## {diff_en}

TODO.
""",
        f"katas/{name}/README.ko.md": f"""[English](README.md) · [용어집](../../docs/glossary.md)

# 카타 {number} · {title}

규칙 **{rule}** · TODO: 이 카타가 인용하는 노트의 절과, 그 내용을 우리 말로 짧게 요약한 것.

## {s["rules"]["ko"]}

{rules_block}

## {s["why"]["ko"]}

TODO: 규칙이 왜 성립하는지 한 문단으로.

## {s["task"]["ko"]}

`pytest katas/{name}`이 통과할 때까지 `{module}`만 고친다:

1. `answer(x)`: TODO: 학습자가 쓸 것.

## {s["run"]["ko"]}

    pytest katas/{name}              # 내 코드
    pytest katas/{name} --solutions  # 참고 풀이

## {s["hints"]["ko"]}

{hints_block}

## {diff_ko}

TODO.
""",
        f"katas/{name}/messages.toml": f"""# Failure messages of kata {number}, both languages, the same placeholders (CONTRIBUTING.md).
# Line 1: what the code did; line 2: what to change.

[wrong-answer]
en = \"\"\"answer({{x}}) returned {{got!r}}, not {{want}}.
TODO: say what to change ({rule}).\"\"\"
ko = \"\"\"answer({{x}})가 {{want}}가 아니라 {{got!r}}를 돌려줬다.
TODO: 무엇을 바꿀지 쓴다 ({rule}).\"\"\"
""",
        f"katas/{name}/{module}": f'''"""Kata {number}: {title}. Edit this file until `pytest katas/{name}` passes (README.md)."""


async def answer(x: int) -> int:
    """TODO: what it must do."""
    # TODO: write it (rule {rule}); the specs say what it must do.
    raise NotImplementedError("answer")
''',
        f"solutions/{name}/{module}": f'''"""Kata {number}: {title}. The reference solution."""


async def answer(x: int) -> int:
    """TODO: what it must do."""
    return 2 * x
''',
        f"katas/{name}/test_{topic}.py": f'''"""Specs of kata {number}: {title} (rule {rule}). Do not edit: edit {module}."""

import pytest

from kata_tools.i18n import catalog

MSG = catalog(__file__)
pytestmark = pytest.mark.asyncio


@pytest.fixture
def kata(kata_module):
    return kata_module("{module}")


@pytest.mark.rule("{rule}")
@pytest.mark.parametrize("x", [0, 3, 7])  # varied inputs: a hard-coded answer fails
async def test_answer_doubles_its_input(kata, x):
    """TODO: the rule, in one line."""
    got = await kata.answer(x)
    assert got == 2 * x, MSG("wrong-answer", x=x, got=got, want=2 * x)
''',
        f"tests/mistakes/{name}.toml": f"""# Common wrong solutions of kata {number}, each the reference solution with one edit.
# Declare at least one: `kata dev check {number}` asks for it. For example:
#
# [[mistake]]
# id = "squares-instead"
# rule = "{rule}"
# why = "What the learner believed."
# file = "{module}"
# replace = "return 2 * x"   # must occur exactly once in solutions/{name}/{module}
# with = "return x * x"
""",
        f"tests/variants/{name}/variants.toml": f"""# Solutions written independently of the reference, as a learner would, each as FULL learner
# files in tests/variants/{name}/<id>/. `kata dev check {number}` runs them. For example:
#
# [[variant]]
# id = "plus-itself"          # tests/variants/{name}/plus-itself/{module}
# expect = "pass"             # or "fail", with rule = "{rule}"
# why = "Adds x to itself: right, written differently."
""",
        "katas/rules.toml": f"""
[rules.{rule}]
title.en = "TODO: the rule of kata {number} in one line"
title.ko = "TODO: 카타 {number}의 규칙 한 줄"
text.en = "TODO: the rule, stated once, for the README and the messages."
text.ko = "TODO: README와 메시지에 쓰이는 규칙, 한 번만 적는다."
seed = ""
{beyond}""",
    }


def new(root: Path, name: str, rule: str | None = None) -> list[Path]:
    """Write the kata `name` ("NN_topic") into the course at `root`; the paths written."""
    root = Path(root)
    if not catalog.KATA_DIR.match(name):
        raise ScaffoldError(f"{name!r} is not a kata name: two digits, '_', lower-case words (10_retries)")
    if (root / "katas" / name).exists() or (root / "solutions" / name).exists():
        raise ScaffoldError(f"katas/{name} already exists")
    if any(p.name[:2] == name[:2] for p in (root / "katas").glob("[0-9][0-9]_*")):
        raise ScaffoldError(f"a kata numbered {name[:2]} already exists")
    taken = set(catalog.rules())
    rule = rule or rule_id_for(name, taken)
    if rule in taken:
        raise ScaffoldError(f"rule {rule} already exists in katas/rules.toml")
    written = []
    for rel, text in files_for(name, rule).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if rel == "katas/rules.toml":
            with path.open("a", encoding="utf-8") as f:
                f.write(text)
        else:
            path.write_text(text, encoding="utf-8")
        written.append(path)
    catalog.rules.cache_clear()
    readme.write([catalog.Kata(name)])  # fill the generated blocks from the declarations
    return written
