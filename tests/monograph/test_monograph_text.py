"""Sentence splitting, emphasis removal, slugs, terms and numbers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_module.monograph import numbers_in, slugify, split_sentences, strip_emphasis
from fhir_module.monograph.text import split_terms


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in split_sentences(text)]


@pytest.mark.parametrize("text, expected", [
    ("Strong inhibitors (e.g., ketoconazole, clarithromycin, ritonavir) may require a reduction. Next one.",
     ["Strong inhibitors (e.g., ketoconazole, clarithromycin, ritonavir) may require a reduction.",
      "Next one."]),
    ("Use a strong inhibitor, e.g. Ketoconazole, with care. Then stop.",
     ["Use a strong inhibitor, e.g. Ketoconazole, with care.", "Then stop."]),
    ("Take it once, i.e. Daily at night. Done.", ["Take it once, i.e. Daily at night.", "Done."]),
    ("Ask Dr. Smith first. It's fine.", ["Ask Dr. Smith first.", "It's fine."]),
    ("Drug A vs. Placebo differed. Good.", ["Drug A vs. Placebo differed.", "Good."]),
    ("Give 0.5 mg. Then 1.5 mg daily.", ["Give 0.5 mg.", "Then 1.5 mg daily."]),
    ("Moderate (creatinine clearance 30–59 mL/min) needs care.  Mild (≥60 mL/min) does not.",
     ["Moderate (creatinine clearance 30–59 mL/min) needs care.", "Mild (≥60 mL/min) does not."]),
    ("It's used in adults.  It's an SNRI.", ["It's used in adults.", "It's an SNRI."]),
    ("Is it safe? Yes! Mostly.", ["Is it safe?", "Yes!", "Mostly."]),
    ("Dose is 20 mg. 40 mg follows.", ["Dose is 20 mg.", "40 mg follows."]),
    ("Levomilnacipran is *not* approved. *Really* not.", ["Levomilnacipran is *not* approved.",
                                                           "*Really* not."]),
    ("He said \"stop.\" Then he left.", ["He said \"stop.\"", "Then he left."]),
    ("No full stop at the end", ["No full stop at the end"]),
    ("   ", []),
])
def test_split_sentences(text: str, expected: list[str]) -> None:
    assert sentences(text) == expected


def test_strip_emphasis() -> None:
    assert strip_emphasis("is *not*  approved") == "is not approved"
    assert strip_emphasis("**Children:**   The  safety\n of") == "Children: The safety of"
    assert strip_emphasis(" a * b ") == "a b"


@pytest.mark.parametrize("title, slug", [
    ("How it Works", "how-it-works"), ("Side Effects", "side-effects"), ("FAQs", "faqs"),
    ("Generic Name", "generic-name"), ("Q&A / Notes (2024)", "q-a-notes-2024"), ("!!!", ""),
])
def test_slugify(title: str, slug: str) -> None:
    assert slugify(title) == slug


def test_split_terms_keeps_glosses() -> None:
    assert split_terms("Dry mouth, fatigue,  blurred vision, sexual dysfunction (e.g., a, b)") == (
        "Dry mouth", "fatigue", "blurred vision", "sexual dysfunction (e.g., a, b)")
    assert split_terms("One") == ("One",)
    assert split_terms("a,, b ,") == ("a", "b")


@pytest.mark.parametrize("text, expected", [
    ("creatinine clearance 30–59 mL/min", [30, 59]),
    ("creatinine clearance ≥60 mL/min", [60]),
    ("Less Common Side Effects (1-10%)", [1, 10]),
    ("up to a maximum of 120 mg once daily", [120]),
    ("after 2 days", [2]),
    ("for two days, then increased to 40 mg", [2, 40]),
    ("increments of 20 or 40 mg at intervals of two or more days", [20, 40, 2]),
    ("0.5 mg and 1,000 mg and 120mg", [0.5, 1000, 120]),
    ("cytochrome P450 3A4 enzyme, CYP3A4", []),
    ("At least 14 days ... at least 7 days", [14, 7]),
    ("Twelve (12) and None", [12, 12]),
    ("no numbers here, someone", []),
])
def test_numbers_in(text: str, expected: list[float]) -> None:
    assert numbers_in(text) == [float(x) for x in expected]


def test_numbers_in_without_words() -> None:
    assert numbers_in("for two days, then 40 mg", words=False) == [40.0]


# --- properties -------------------------------------------------------------------------------

@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("aZ9 .?!\n\t'\"()*e.g–≥,")), max_size=120))
def test_spans_cover_text_in_order(text: str) -> None:
    spans = split_sentences(text)
    position = 0
    for start, end in spans:
        assert position <= start < end <= len(text)
        assert not text[start].isspace() and not text[end - 1].isspace()
        assert text[position:start].strip() == ""  # nothing but whitespace is dropped
        position = end
    assert text[position:].strip() == ""


WORDS = ["dose", "mg", "daily", "the", "renal", "e.g.", "i.e.", "vs.", "1.5", "30–59", "≥60",
         "(e.g., ketoconazole, ritonavir)", "it's", "Dr. Smith", "120", "(note)"]
FIRST = ["Levomilnacipran", "The", "It's", "Patients", "Dr. Jones", "Use", "A", "20"]
LAST = ["mg", "patients", "daily", "(ESRD)", "mL/min"]


@st.composite
def sentence_text(draw) -> str:
    middle = draw(st.lists(st.sampled_from(WORDS), max_size=8))
    return " ".join([draw(st.sampled_from(FIRST)), *middle, draw(st.sampled_from(LAST))]) + draw(
        st.sampled_from([".", "?", "!"]))


@given(st.lists(sentence_text(), min_size=1, max_size=6), st.sampled_from([" ", "  ", "\n"]))
def test_built_sentences_split_back(parts: list[str], gap: str) -> None:
    assert sentences(gap.join(parts)) == parts


@given(st.lists(st.one_of(st.integers(0, 100000), st.decimals(0, 1000, places=2).map(float)),
                max_size=6))
def test_numbers_round_trip(values: list[float]) -> None:
    text = " and ".join(f"{v:g} mg" for v in values)
    assert numbers_in(text) == pytest.approx([float(f"{v:g}") for v in values])
