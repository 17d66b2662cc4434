"""The monograph parsed once per text (the loader and the knowledge check read the same one at
every start) is the monograph `parse_monograph` gives, under the name each caller gives it."""

from __future__ import annotations

import pytest

from fhir_module.knowledge import builtin_module_dirs
from fhir_module.monograph import MonographError, parse_monograph, parse_monograph_once
from fhir_module.monograph import parser


def _texts() -> list[str]:
    return [path.read_text(encoding="utf-8") for folder in builtin_module_dirs()
            for path in sorted(folder.glob("*.md")) if path.stem == folder.name]


@pytest.mark.parametrize("text", _texts())
def test_the_same_monograph_under_each_name(text: str) -> None:
    for source in ("<monograph>", "modules/x/x.md", "<monograph>", "other.md"):
        once = parse_monograph_once(text, source)
        assert once == parse_monograph(text, source) and once.source == source
        assert once.sentence(next(once.sentences()).id) == parse_monograph(text).sentence(next(once.sentences()).id)
        with pytest.raises(KeyError, match=f"no sentence 'nowhere.1' in {source}"):
            once.sentence("nowhere.1")
    parser._parsed.cache_clear()
    parse_monograph_once(text, "a.md")
    parse_monograph_once(text, "b.md")
    parse_monograph_once(text)
    assert parser._parsed.cache_info().misses == 1  # parsed once


def test_a_monograph_that_cannot_be_read_names_each_source() -> None:
    text = "# Title\n\ntext outside any section\n"
    for source in ("a.md", "b.md"):
        with pytest.raises(MonographError) as once:
            parse_monograph_once(text, source)
        with pytest.raises(MonographError) as direct:
            parse_monograph(text, source)
        assert str(once.value) == str(direct.value) and str(once.value).startswith(f"{source}, line 3")
