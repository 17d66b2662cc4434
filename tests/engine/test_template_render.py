"""Card texts are rendered from lines read once (expressions.Template): the same text, part by part,
as matching each line's `{{ }}` parts as it goes (the way the engine rendered them before), for
every card text of the knowledge and for the shapes a text may take."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest

from fhir_module.engine import Engine
from fhir_module.engine.expressions import Expression, Template, _strings

# What a part may give: nothing, one value, several, values of other kinds, blanks.
VALUES: list[list[Any]] = [[], ["Fetzima"], ["a", "b", "c"], [1.5, True], [""], [{"evidence": "e"}, 2], ["x", ""],
                           ["two  \nlines  ", "b "], ["end  "]]
SHAPES = [
    "",
    "plain text  \nand more",
    "- {{%a}}",
    "- Stroke: {{%a}}",
    "  - nested {{%a}} and {{%b}}",
    "{{%a}} then {{%b}}\n- {{%c}}\n- Facts: {{%a}}; {{%b}}\n\nEnd {{%c}}",
    "{{%a\n}} {{%b}}",  # a part across lines: matched line by line, as ever
    "- {{%a}}\n- {{%b}}\n- {{%c}}\n- {{%d}}",
    "  text alone, ends trimmed  \n- A: {{%a}}   \n{{%b}}  end  \n\n- text listed  ",
]


def _knowledge_texts() -> list[str]:
    engine = Engine.default()
    resources = [*engine.kb.plan_definitions, *engine.kb.activity_definitions.values()]
    return sorted({text for text in _strings(resources) if "{{" in text})


def _rendered(text: str, render: str, shift: int) -> tuple[str, list[str]] | str:
    """The text rendered with the parts' values given in turn (from `shift` on), and the parts asked."""
    template = Template(text)
    asked: list[str] = []
    values = itertools.cycle(VALUES[shift:] + VALUES[:shift])

    def values_of(expression: Expression) -> list[Any]:
        asked.append(expression.text)
        return next(values)

    try:
        return getattr(template, render)(values_of), asked
    except StopIteration:
        return "runs out of parts"


@pytest.mark.parametrize("text", SHAPES + _knowledge_texts())
def test_lines_read_once_render_as_matching_as_it_goes(text: str) -> None:
    for shift in range(len(VALUES)):
        assert _rendered(text, "render", shift) == _rendered(text, "_render_matching", shift)


def test_the_knowledge_has_card_texts_with_list_lines() -> None:
    texts = _knowledge_texts()
    assert len(texts) > 50
    assert any(re.search(r"^\s*- .*\{\{", text, re.MULTILINE) for text in texts)
