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


@pytest.mark.parametrize("text", _texts())
def test_a_quote_found_again_is_found_as_the_first_time(text: str) -> None:
    # find_all keeps its answer per quote: the same sentences as a scan of a monograph that never
    # answered it, whatever was asked before; the list handed out is the caller's.
    monograph = parse_monograph(text)
    sentences = list(monograph.sentences())
    quotes = [s.text for s in sentences[::3]] + [s.text[:20] for s in sentences[1::5]]
    quotes += [f"{s.text[:10]} ... {s.text[-10:]}" for s in sentences[2::7] if len(s.text) > 30]
    quotes += ["not a sentence of any monograph", "mg", *(s.label for s in sentences if s.label)]
    for quote in quotes * 2:
        fresh = parse_monograph(text)
        answer = monograph.find_all(quote)
        assert answer == fresh.find_all(quote) and monograph.find(quote) == fresh.find(quote)
        answer.clear()
        assert monograph.find_all(quote) == fresh.find_all(quote)
    for _ in range(2):
        with pytest.raises(ValueError, match="empty quote"):
            monograph.find_all(" ... ")


def test_the_same_text_and_source_give_the_same_monograph_with_its_quotes() -> None:
    # The loader and the knowledge check share one object per text and source: its quote lookups
    # (Monograph.find_all, kept per object) are made once for both.
    text = _texts()[0]
    assert parse_monograph_once(text, "x.md") is parse_monograph_once(text, "x.md")
    assert parse_monograph_once(text, "y.md").source == "y.md"
