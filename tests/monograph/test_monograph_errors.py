"""Broken copies of the real monograph must fail with a MonographError naming the right line."""

from __future__ import annotations

from typing import Callable

import pytest

from fhir_module.knowledge import builtin_module_dir
from fhir_module.monograph import MonographError, parse_monograph

REAL = (builtin_module_dir("levomilnacipran") / "levomilnacipran.md").read_text(encoding="utf-8")


def line_of(prefix: str, lines: list[str] | None = None) -> int:
    """1-based number of the first line starting with *prefix*."""
    lines = REAL.splitlines() if lines is None else lines
    return next(i for i, line in enumerate(lines, 1) if line.startswith(prefix))


def edit(change: Callable[[list[str]], None]) -> str:
    lines = REAL.splitlines()
    change(lines)
    return "\n".join(lines) + "\n"


def replace(prefix: str, new: str) -> Callable[[list[str]], None]:
    def change(lines: list[str]) -> None:
        lines[line_of(prefix, lines) - 1] = new
    return change


def insert_after(prefix: str, *new: str) -> Callable[[list[str]], None]:
    def change(lines: list[str]) -> None:
        at = line_of(prefix, lines)
        lines[at:at] = list(new)
    return change


def delete(prefix: str) -> Callable[[list[str]], None]:
    def change(lines: list[str]) -> None:
        del lines[line_of(prefix, lines) - 1]
    return change


FAQ_MISS = "* **Q: What should I do if I miss a dose?**"
CASES = [
    # (id, change, expected line as (prefix of the line in the *broken* text), section, message part)
    ("no title", delete("# Levomilnacipran"), "### Generic Name", None, "before the title"),
    ("bullet outside a section", insert_after("# Levomilnacipran", "* stray bullet"),
     "* stray bullet", None, "bullet outside any section"),
    ("text outside a section", insert_after("# Levomilnacipran", "", "Some words."),
     "Some words.", None, "text outside any section"),
    ("FAQ without an answer", replace(FAQ_MISS, FAQ_MISS), FAQ_MISS, "faqs", "FAQ item without an answer"),
    ("FAQ with an empty answer", replace(FAQ_MISS, FAQ_MISS + " A:   "), FAQ_MISS, "faqs",
     "FAQ item without an answer"),
    ("unbalanced bold", replace("**Children:**", "**Children: The safety has not been established."),
     "**Children:", "dosage", "unbalanced '**'"),
    ("unbalanced emphasis", replace("Levomilnacipran is primarily", "It is *not approved."),
     "It is *not", "usage", "unbalanced '*'"),
    ("bold heading without a list", insert_after("Levomilnacipran is a selective", "", "**Orphan:**"),
     "**Orphan:**", "how-it-works", "bold heading 'Orphan' has no bullet list"),
    ("duplicate section", replace("### Precautions", "### Dosage"), "### Dosage\n", None,
     "duplicate section id 'dosage' (first heading on line 13)"),
    ("second title", insert_after("### Usage", "# Another Drug"), "# Another Drug", None, "second title"),
    ("empty section", insert_after("Levomilnacipran", "", "### Empty Part"), "### Empty Part",
     "empty-part", "has no content"),
    ("empty bullet", insert_after("* Nausea", "* "), "* \n", "side-effects", "empty bullet"),
    ("category without text", replace("* **Hepatic Impairment:**", "* **Hepatic Impairment:**"),
     "* **Hepatic Impairment:**", "dosage", "has no text"),
    ("nested bullet", insert_after("* Nausea", "  * Severe nausea"), "  * Severe nausea",
     "side-effects", "nested lists"),
    ("table", insert_after("### How it Works", "| a | b |"), "| a | b |", "how-it-works", "tables"),
    ("code block", insert_after("### How it Works", "```"), "```", "how-it-works", "code blocks"),
    ("numbered list", insert_after("### How it Works", "1. First step"), "1. First step",
     "how-it-works", "numbered lists"),
    ("horizontal rule", insert_after("### How it Works", "", "***"), "***", "how-it-works",
     "horizontal rules"),
    ("FAQ mixed with plain bullets", insert_after(FAQ_MISS, "* Plain bullet"), "* Plain bullet", "faqs",
     "mixes FAQ items"),
    ("heading without an anchor", replace("### Usage", "### !!!"), "### !!!", None, "no letters or digits"),
    ("title differs from front matter", replace("# Levomilnacipran", "# Milnacipran"), "# Milnacipran",
     None, "differs from the front matter title"),
    ("empty heading", replace("### Usage", "###"), "###\n", None, "empty heading"),
]


@pytest.mark.parametrize("name, change, at, section, message", CASES, ids=[c[0] for c in CASES])
def test_broken_copy(name: str, change, at: str | None, section: str | None, message: str | None) -> None:
    text = edit(change)
    with pytest.raises(MonographError) as info:
        parse_monograph(text, source="broken.md")
    error = info.value
    if at is not None:
        lines = text.splitlines()
        if at.endswith("\n"):  # the exact line (its last occurrence), not a prefix
            expected = len(lines) - lines[::-1].index(at[:-1])
        else:
            expected = line_of(at, lines)
        assert error.line == expected, str(error)
        assert f"line {expected}" in str(error)
    assert error.section == section, str(error)
    if section:
        assert f"section '{section}'" in str(error)
    if message:
        assert message in str(error)
    assert str(error).startswith("broken.md")


def test_unclosed_front_matter_names_line_1() -> None:
    lines = REAL.splitlines()
    closing = [i for i, line in enumerate(lines) if line == "---"][1]
    del lines[closing]
    with pytest.raises(MonographError, match="never closed") as info:
        parse_monograph("\n".join(lines))
    assert info.value.line == 1 and info.value.section is None


def test_text_before_title() -> None:
    text = REAL.replace("# Levomilnacipran\n", "Levomilnacipran monograph\n# Levomilnacipran\n", 1)
    with pytest.raises(MonographError, match="text before the title") as info:
        parse_monograph(text)
    assert info.value.line == line_of("Levomilnacipran monograph", text.splitlines())


@pytest.mark.parametrize("text, line, message", [
    ("", 1, "no title"),
    ("\n\n", 1, "no title"),
    ("---\nlayout: x\n---\n", 3, "no title"),
    ("---\nlayout: x\n---\n# Drug\n", 4, "no sections"),
    ("# Drug\n\n", 1, "no sections"),
    ("---\ntitle: [unclosed\n---\n# Drug\n### A\nText.\n", 2, "not valid YAML"),
    ("---\n- a\n- b\n---\n# Drug\n### A\nText.\n", 2, "must be a mapping"),
    ("---\n---\n### A\nText.\n", 3, "before the title"),
])
def test_small_broken_documents(text: str, line: int, message: str) -> None:
    with pytest.raises(MonographError, match=message) as info:
        parse_monograph(text)
    assert info.value.line == line


def test_not_a_string() -> None:
    with pytest.raises(MonographError, match="must be a string"):
        parse_monograph(b"# Drug\n### A\nText.\n")  # type: ignore[arg-type]


def test_all_cases_really_change_the_text() -> None:
    # A case whose edit did nothing would test the real monograph, which parses fine.
    unchanged = edit(lambda lines: None)
    parse_monograph(unchanged)
    for name, change, *_ in CASES:
        assert edit(change) != unchanged, name


# --- fuzzing: any text either parses or fails with a MonographError ---------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

LINE_PARTS = ["---", "# T", "### S", "* ", "- ", "**L:**", "**Q: q?**", " A: a.", "Cat: x, y", "text.",
              "  ", "(e.g., a)", "*", "**", "1. ", "| ", "title: T", ": :", "[", "Dr. X", "(>10%)", "…"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.lists(st.sampled_from(LINE_PARTS), max_size=4).map("".join), max_size=25))
def test_any_text_parses_or_fails_cleanly(lines: list[str]) -> None:
    text = "\n".join(lines)
    try:
        mono = parse_monograph(text)
    except MonographError as error:
        assert error.line is None or 1 <= error.line <= max(len(lines), 1)
    else:
        assert mono.sections
        for sentence in mono.sentences():
            assert sentence.text and 1 <= sentence.line <= len(lines)
            assert mono.find(sentence.text) is not None


@settings(max_examples=200, deadline=None)
@given(st.integers(0, REAL.count("\n")), st.sampled_from(["", "* ", "**", "### ", "# X", "Q: ", "---"]))
def test_real_monograph_with_a_line_damaged(index: int, prefix: str) -> None:
    lines = REAL.splitlines()
    if index < len(lines):
        lines[index] = prefix + lines[index]
    try:
        parse_monograph("\n".join(lines))
    except MonographError as error:
        assert error.line is not None
