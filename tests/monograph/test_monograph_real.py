"""Parse the packaged levomilnacipran monograph and check its structure and sentences."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from fhir_module.monograph import (
    FAQ, BulletList, Monograph, MonographError, Paragraph, load_monograph, strip_emphasis,
)
from fhir_module.knowledge import builtin_module_dir


def default_monograph_path():
    return builtin_module_dir("levomilnacipran") / "levomilnacipran.md"


@pytest.fixture(scope="module")
def mono() -> Monograph:
    return load_monograph(default_monograph_path())


def test_title_front_matter_and_hash(mono: Monograph) -> None:
    path = default_monograph_path()
    assert path.is_file() and path.parent.name == "levomilnacipran"
    assert mono.title == "Levomilnacipran"
    assert mono.front_matter == {"layout": "minimal-medicine", "title": "Levomilnacipran"}
    assert mono.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert mono.source == str(path)


def test_section_ids_and_sentence_counts(mono: Monograph) -> None:
    assert [s.id for s in mono.sections] == [
        "generic-name", "usage", "dosage", "side-effects", "how-it-works", "precautions", "faqs"]
    assert mono.section("how-it-works").title == "How it Works"
    assert all(s.level == 3 for s in mono.sections)
    counts = {s.id: len(s.sentences) for s in mono.sections}
    assert counts == {"generic-name": 1, "usage": 4, "dosage": 15, "side-effects": 14,
                      "how-it-works": 4, "precautions": 12, "faqs": 16}
    assert len(list(mono.sentences())) == sum(counts.values())


def test_sentence_ids_are_running_numbers(mono: Monograph) -> None:
    for section in mono.sections:
        assert [s.id for s in section.sentences] == [
            f"{section.id}.{n}" for n in range(1, len(section.sentences) + 1)]
        assert all(s.section_id == section.id for s in section.sentences)
    assert mono.sentence("dosage.3").text.endswith("up to a maximum of 120 mg once daily.")
    with pytest.raises(KeyError, match="dosage.99"):
        mono.sentence("dosage.99")
    with pytest.raises(KeyError, match="no section 'contraindications'"):
        mono.section("contraindications")


def test_every_sentence_starts_on_its_line(mono: Monograph) -> None:
    raw = mono.text.splitlines()
    for sentence in mono.sentences():
        opening = " ".join(sentence.text.split()[:3])
        assert opening in strip_emphasis(raw[sentence.line - 1]), sentence.id


def test_dosage_labelled_paragraphs_and_adjustments(mono: Monograph) -> None:
    blocks = mono.section("dosage").blocks
    assert [type(b) for b in blocks] == [Paragraph, Paragraph, BulletList]
    assert blocks[0].label == "Adults (Major Depressive Disorder)"
    assert blocks[0].text.startswith("Levomilnacipran is administered orally.")
    assert blocks[0].line == 15 and len(blocks[0].sentences) == 4
    assert blocks[1].label == "Children"
    adjustments = blocks[2]
    assert adjustments.heading == "Dosage Adjustments" and adjustments.band is None
    assert [b.category for b in adjustments.items] == [
        "Hepatic Impairment", "Renal Impairment", "CYP3A4 Inhibitors",
        "Monoamine Oxidase Inhibitors (MAOIs)"]
    renal = adjustments.items[1]
    assert renal.terms == ()  # prose, not a list line
    assert [s.label for s in renal.sentences] == ["Renal Impairment"] * 4
    assert renal.line == 22


def test_side_effect_bands_and_terms(mono: Monograph) -> None:
    lists = [b for b in mono.section("side-effects").blocks if isinstance(b, BulletList)]
    assert [(l.heading, l.band, l.band_low, l.band_high) for l in lists] == [
        ("Common Side Effects (>10%)", ">10%", 10.0, None),
        ("Less Common Side Effects (1-10%)", "1-10%", 1.0, 10.0),
        ("Serious but Less Common Side Effects (<1%, post-marketing and/or case reports)", "<1%", None, 1.0),
    ]
    common, less, serious = lists
    assert [b.terms for b in common.items] == [
        ("Orthostatic hypotension (low blood pressure upon standing)",), ("Nausea",)]
    assert common.items[0].category is None
    assert common.items[1].sentences[0].label == "Common Side Effects (>10%)"
    by_cat = {b.category: b for b in less.items}
    assert list(by_cat) == ["Nervous system", "Cardiovascular", "Gastrointestinal", "Dermatologic", "Other"]
    assert by_cat["Nervous system"].terms == (
        "Agitation", "aggression", "insomnia", "migraine", "dizziness", "tremor", "anxiety",
        "extrapyramidal symptoms")
    assert by_cat["Cardiovascular"].terms[0] == "Increased heart rate (tachycardia)"
    assert by_cat["Other"].terms[-1] == "sexual dysfunction (e.g., erectile dysfunction, decreased libido)"
    assert len(serious.items) == 6 and serious.items[0].terms == (
        "Serotonin syndrome (a potentially life-threatening condition)",)
    closing = mono.section("side-effects").blocks[-1]
    assert isinstance(closing, Paragraph) and closing.label is None


def test_precaution_categories(mono: Monograph) -> None:
    (precautions,) = mono.section("precautions").blocks
    assert precautions.heading is None
    assert [b.category for b in precautions.items] == [
        "Contraindications", "Interactions", "Pregnancy and Lactation", "Specific Populations",
        "Suicidal Ideation", "Discontinuation Syndrome"]


def test_faqs(mono: Monograph) -> None:
    blocks = mono.section("faqs").blocks
    faqs = [b for b in blocks if isinstance(b, FAQ)]
    assert len(faqs) == 5
    assert all(f.question.endswith("?") and f.answer for f in faqs)
    assert faqs[0].question == "Can I drink alcohol while taking Levomilnacipran?"
    assert faqs[2].answer == ("Take the missed dose as soon as you remember, unless it's almost time for "
                              "the next dose. Do not take a double dose.")
    assert [s.text for s in faqs[2].sentences][1:] == [
        "Take the missed dose as soon as you remember, unless it's almost time for the next dose.",
        "Do not take a double dose."]
    assert faqs[2].sentences[0].text == faqs[2].question
    assert {s.label for s in faqs[2].sentences} == {faqs[2].question}
    assert isinstance(blocks[-1], Paragraph) and blocks[-1].label == "Disclaimer"


@pytest.mark.parametrize("quote, sid", [
    ("up to a maximum of 120 mg once daily", "dosage.3"),
    ("starting dose is 20 mg once daily for two days, then increased to 40 mg", "dosage.2"),
    ("increments of 20 or 40 mg at intervals of two or more days", "dosage.3"),
    ("The maintenance dose typically ranges from 40 mg to 120 mg once daily.", "dosage.4"),
    ("Levomilnacipran is *not* approved for the treatment of fibromyalgia", "usage.4"),
    ("is not approved for the treatment of fibromyalgia", "usage.4"),
    ("creatinine clearance 30–59 mL/min) may necessitate a maximum dose of 80 mg daily", "dosage.11"),
    ("(creatinine clearance ≥60 mL/min)", "dosage.10"),
    ("strong inhibitors ... (e.g., ketoconazole, clarithromycin, ritonavir) ... maximum of 80 mg daily",
     "dosage.13"),
    ("At least 14 days…before initiating Levomilnacipran", "dosage.15"),
    ("at least 7 days should pass after stopping Levomilnacipran before starting an MAOI", "dosage.15"),
    ("recent   myocardial\n infarction", "precautions.1"),
    ("**Category C**", "precautions.4"),
    ("It's not known whether Levomilnacipran is excreted in human milk.", "precautions.6"),
    ("Nausea", "side-effects.2"),
    ("Do not take a double dose", "faqs.7"),
    ("Pregnancy and Lactation", "precautions.4"),  # a category: its first sentence
    ("**Renal Impairment**", "dosage.9"),
])
def test_find_by_quote(mono: Monograph, quote: str, sid: str) -> None:
    found = mono.find(quote)
    assert found is not None and found.id == sid


@pytest.mark.parametrize("quote", [
    "up to a maximum of 100 mg once daily",  # changed number
    "once daily for two days. The dose",  # spans two sentences
    "then increased to 40 mg ... The usual starting dose",  # parts out of order
    "Levomilnacipran is administered orally. The usual",  # crosses a sentence boundary
    "approved for the treatment of depression",
    "Pregnancy and",  # part of a label is not a label
])
def test_find_misses(mono: Monograph, quote: str) -> None:
    assert mono.find(quote) is None


def test_find_rejects_empty_quote(mono: Monograph) -> None:
    for quote in ("", "   ", "...", "**"):
        with pytest.raises(ValueError):
            mono.find(quote)


def test_every_sentence_finds_itself(mono: Monograph) -> None:
    texts = [s.text for s in mono.sentences()]
    assert len(set(texts)) == len(texts)
    for sentence in mono.sentences():
        assert mono.find(sentence.text) == sentence
    assert mono.find_all("once daily")[0].id == "dosage.2"
    assert {s.id for s in mono.find_all("once daily")} == {"dosage.2", "dosage.3", "dosage.4"}


def test_model_is_frozen(mono: Monograph) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        mono.title = "Other"  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        mono.sections[0].sentences[0].text = "changed"  # type: ignore[misc]


def test_load_errors_are_monograph_errors(tmp_path) -> None:
    with pytest.raises(MonographError, match="cannot read monograph file") as info:
        load_monograph(tmp_path / "missing.md")
    assert info.value.line is None
    bad = tmp_path / "latin1.md"
    bad.write_bytes("# Caf\xe9\n".encode("latin-1"))
    with pytest.raises(MonographError, match="cannot read"):
        load_monograph(bad)
