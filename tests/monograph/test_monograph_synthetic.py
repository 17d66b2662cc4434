"""Monographs other than the packaged one: a small hand-written one, and generated ones."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_module.monograph import FAQ, BulletList, Paragraph, parse_monograph, slugify

# A fictional drug in the same template, with the variations the template allows: no blank line
# after headings, multi-line paragraphs, '-' bullets, continuation lines, other bands.
SYNTHETIC = """\
---
title: Quentavir
layout: minimal-medicine
---
# Quentavir

### Usage
Quentavir treats condition X in adults.  Dr. Example advises taking it with food, i.e. with a
meal. Its effect vs. placebo was modest (about 0.5 points).

### Dosage
**Adults:** Start with 0.5 mg twice daily.  Increase to 1.5 mg twice daily after 7 days.

**Dose Limits:**

- **Renal Impairment:** For creatinine clearance <30 mL/min, do not exceed 1 mg daily.
- Hepatic Impairment: Avoid in severe disease
  (Child-Pugh C).

### Side Effects
**Very Common (≥20%):**
* Headache, nausea (mild), dizziness

**Uncommon (0.1–1%):**
* Skin: Rash, urticaria (hives)

### FAQs
* **Q: Can I take it with food?** A: Yes. Take it with a meal.
* **Q: Is it safe in pregnancy?**
  A: Ask your doctor first.
"""


def test_synthetic_monograph_parses() -> None:
    mono = parse_monograph(SYNTHETIC, source="quentavir.md")
    assert mono.title == "Quentavir" and mono.front_matter["layout"] == "minimal-medicine"
    assert [s.id for s in mono.sections] == ["usage", "dosage", "side-effects", "faqs"]

    usage = mono.section("usage")
    assert [(s.text, s.line) for s in usage.sentences] == [
        ("Quentavir treats condition X in adults.", 8),
        ("Dr. Example advises taking it with food, i.e. with a meal.", 8),
        ("Its effect vs. placebo was modest (about 0.5 points).", 9),
    ]

    adults, limits = mono.section("dosage").blocks
    assert isinstance(adults, Paragraph) and adults.label == "Adults" and len(adults.sentences) == 2
    assert isinstance(limits, BulletList) and limits.heading == "Dose Limits" and limits.band is None
    renal, hepatic = limits.items
    assert (renal.category, renal.line) == ("Renal Impairment", 16)
    assert (hepatic.category, hepatic.text, hepatic.terms) == (
        "Hepatic Impairment", "Avoid in severe disease (Child-Pugh C).", ())
    assert mono.find("severe disease (Child-Pugh C)").id == "dosage.4"

    common, uncommon = mono.section("side-effects").blocks
    assert (common.band, common.band_low, common.band_high) == ("≥20%", 20.0, None)
    assert (uncommon.band, uncommon.band_low, uncommon.band_high) == ("0.1–1%", 0.1, 1.0)
    assert common.items[0].terms == ("Headache", "nausea (mild)", "dizziness")
    assert common.items[0].category is None
    assert uncommon.items[0].category == "Skin" and uncommon.items[0].terms == ("Rash", "urticaria (hives)")

    food, pregnancy = mono.section("faqs").blocks
    assert isinstance(food, FAQ) and food.answer == "Yes. Take it with a meal."
    assert [s.text for s in food.sentences] == ["Can I take it with food?", "Yes.", "Take it with a meal."]
    assert pregnancy.question == "Is it safe in pregnancy?" and pregnancy.answer == "Ask your doctor first."
    assert pregnancy.sentences[-1].line == 30 and pregnancy.sentences[-1].id == "faqs.5"


def test_without_front_matter() -> None:
    mono = parse_monograph("# Drug\n### Notes\nShort note.\n")
    assert mono.front_matter == {} and mono.section("notes").sentences[0].text == "Short note."


# --- generated monographs: render a structure, parse it, get the structure back -----------------

WORD = st.sampled_from(["alpha", "beta", "dose", "renal", "mild", "tablet", "liver", "night", "risk"])
NAME = st.lists(WORD, min_size=1, max_size=3).map(lambda ws: " ".join(ws).capitalize())
SENTENCE = st.lists(st.one_of(WORD, st.sampled_from(["20 mg", "1.5", "(e.g., x, y)", "*not*"])),
                    min_size=1, max_size=8).map(lambda ws: "It " + " ".join(ws) + ".")
PARAGRAPH = st.tuples(st.just("para"), st.one_of(st.none(), NAME), st.lists(SENTENCE, min_size=1, max_size=4))
# Every generated list has a heading: two headless lists in a row are one list in Markdown.
BULLETS = st.tuples(st.just("list"), NAME,
                    st.lists(st.tuples(NAME, st.lists(NAME, min_size=1, max_size=4)), min_size=1, max_size=4))
SECTIONS = st.lists(st.tuples(NAME, st.lists(st.one_of(PARAGRAPH, BULLETS), min_size=1, max_size=4)),
                    min_size=1, max_size=5, unique_by=lambda s: slugify(s[0]))


def render(title: str, sections) -> str:
    out = [f"# {title}", ""]
    for name, blocks in sections:
        out += [f"### {name}", ""]
        for kind, label, body in blocks:
            if kind == "para":
                out += [(f"**{label}:** " if label else "") + "  ".join(body), ""]
            else:
                if label:
                    out += [f"**{label} (1-10%):**", ""]
                out += [f"* **{cat}:** {', '.join(terms)}" for cat, terms in body] + [""]
    return "\n".join(out)


@settings(max_examples=60, deadline=None)
@given(NAME, SECTIONS)
def test_generated_monographs_round_trip(title: str, sections) -> None:
    mono = parse_monograph(render(title, sections))
    assert mono.title == title
    assert [s.id for s in mono.sections] == [slugify(name) for name, _ in sections]
    for section, (_, blocks) in zip(mono.sections, sections):
        assert len(section.blocks) == len(blocks)
        for block, (kind, label, body) in zip(section.blocks, blocks):
            if kind == "para":
                assert block.label == label
                assert [s.text for s in block.sentences] == [b.replace("*", "") for b in body]
            else:
                assert block.heading == (f"{label} (1-10%)" if label else None)
                assert (block.band_low, block.band_high) == ((1.0, 10.0) if label else (None, None))
                assert [(b.category, list(b.terms)) for b in block.items] == [(c, t) for c, t in body]
        for n, sentence in enumerate(section.sentences, 1):
            assert sentence.id == f"{section.id}.{n}"
            assert mono.find(sentence.text) is not None


def test_plain_faq_form_and_plain_categories() -> None:
    mono = parse_monograph("# D\n### FAQs\n* Q: Plain form? A: Yes. Sure.\n* **Q: Bold?**  A: No.\n"
                           "### Notes\n* Note: one, two\n* 20 mg: not a category\n")
    plain, bold = mono.section("faqs").blocks
    assert (plain.question, plain.answer, len(plain.sentences)) == ("Plain form?", "Yes. Sure.", 3)
    assert (bold.question, bold.answer, bold.sentences[-1].id) == ("Bold?", "No.", "faqs.5")
    note, number = mono.section("notes").blocks[0].items
    assert (note.category, note.terms) == ("Note", ("one", "two"))
    assert (number.category, number.text) == (None, "20 mg: not a category")
