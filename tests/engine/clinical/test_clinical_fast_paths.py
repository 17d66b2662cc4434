"""The helpers every rule reads the chart through, written for speed, give exactly what their plain
forms give: codings, json_copy, fmt_rounded of a whole number, dates read from text, and the drug
a resource names (one object per drug per request)."""

from __future__ import annotations

import copy
import math
from datetime import date
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_module.engine import Engine
from fhir_module.engine.chart import Chart
from fhir_module.engine.clinical._json import as_dict, as_str, codings, dicts, fmt_rounded, json_copy
from fhir_module.engine.clinical.dates import _text_bounds, fhir_date_bounds
from fhir_module.engine.facts import ChartFacts

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"

texts = st.one_of(st.none(), st.integers(), st.sampled_from(["", " ", " 8867-4 ", "8867 - 4", "http://loinc.org", "Heart rate",
                                                                 "\t\n", "8867-4\u2003", "\u00a0 K72 .00\x1c"]),
                  st.text(max_size=6))
coding = st.one_of(st.dictionaries(st.sampled_from(["system", "code", "display", "other"]), texts, max_size=4), texts)
concepts = st.one_of(texts, st.lists(coding, max_size=3),
                     st.dictionaries(st.sampled_from(["coding", "text"]), st.one_of(st.lists(coding, max_size=4), coding, texts)))


def _plain_codings(concept: Any) -> list[tuple[str, str, str | None]]:
    """codings() as it was written before it was inlined."""
    out = []
    for item in dicts(as_dict(concept).get("coding")):
        code = as_str(item.get("code"))
        if code is None:
            continue
        out.append((as_str(item.get("system")) or "", "".join(code.split()), as_str(item.get("display"))))
    return out


@settings(max_examples=400, deadline=None)
@given(concepts)
def test_codings_reads_what_the_plain_helpers_read(concept: Any) -> None:
    assert codings(concept) == _plain_codings(concept)


json_values = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=4)),
                           lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
                           max_leaves=15)


@settings(max_examples=200, deadline=None)
@given(json_values)
def test_json_copy_is_a_deep_copy(value: Any) -> None:
    copied = json_copy(value)
    assert copied == copy.deepcopy(value)
    if isinstance(value, (dict, list)):
        assert copied is not value
        shared = [id(v) for v in _containers(value)]
        assert not set(shared) & {id(v) for v in _containers(copied)}


def _containers(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [value, *(c for item in value.values() for c in _containers(item))]
    if isinstance(value, list):
        return [value, *(c for item in value for c in _containers(item))]
    return []


def _quantized(value: float, cut: bool) -> str:
    tenths = Decimal(repr(value)).quantize(Decimal("0.1"), rounding=ROUND_DOWN if cut else ROUND_HALF_UP)
    return str(int(tenths)) if tenths == tenths.to_integral_value() else str(tenths)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.integers(-10**14, 10**14), st.integers(-10**6, 10**6).map(float),
                 st.floats(-1e12, 1e12, allow_nan=False)), st.booleans())
def test_fmt_rounded_of_a_whole_number_is_what_quantizing_gives(value: float, cut: bool) -> None:
    assert fmt_rounded(value, cut=cut) == _quantized(value, cut)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(["2024", "2024-02", "2024-02-29", "2023-02-29", "2024-01-02T10:00:00Z", " 2024-03-01 ",
                                  "2024-13-01", "0000-01-01", "2024-01-02T25:00:00Z", "garbage"]),
                 st.dates().map(date.isoformat), st.text(max_size=12)))
def test_a_date_text_reads_the_same_every_time(text: str) -> None:
    first = fhir_date_bounds(text)
    assert first == _text_bounds.__wrapped__(text)  # what reading it anew gives
    assert fhir_date_bounds(text) == first


def _order(rid: str, code: str) -> dict:
    return {"resourceType": "MedicationRequest", "id": rid, "status": "active", "intent": "order",
            "subject": {"reference": "Patient/p1"},
            "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}]}}


def test_resources_naming_the_same_drug_share_what_is_known_of_it() -> None:
    engine = Engine.default()
    first, second, other = _order("a", "36437"), _order("b", "36437"), _order("c", "5640")
    chart = Chart.from_request({"patientId": "p1", "draftOrders": {"resourceType": "Bundle", "entry": []}},
                               {"all": {"resourceType": "Bundle", "entry": [{"resource": r} for r in (first, second, other)]}})
    facts = ChartFacts(engine.kb, chart, date(2026, 11, 26))
    assert facts.concepts(first) is facts.concepts(second) is not facts.concepts(other)
    for vs in ("levomilnacipran-serotonergic", "levomilnacipran-bleeding-risk"):
        for resource in (first, second, other):
            found = engine.kb.match(vs, facts.concepts(resource))
            assert (facts.match(vs, resource) is None) == (found is None)
            if found is not None:
                assert (facts.match(vs, resource)["how"], facts.match(vs, resource)["text"]) == found
    assert facts.match("levomilnacipran-serotonergic", first) is facts.match("levomilnacipran-serotonergic", second)


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.integers(-10**7, 10**7), st.integers(-10**7, 10**7).map(float), st.floats(-1e8, 1e8, allow_nan=False),
                 st.sampled_from([0, 0.0, -0.0, 999999.0, 1e6, -1e6, True, float("inf")])))
def test_as_written_of_a_whole_number_is_what_six_digits_give(value: float) -> None:
    from fhir_module.engine.clinical._json import as_written

    written = value if value == 0 or not math.isfinite(value) else float(f"{value:.6g}")
    assert as_written(value) == written and type(as_written(value)) is type(written)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.sampled_from(["mg", " MG ", "µg", "μg", "mm[Hg]", "", "  ", "Milligram(s)"]), st.text(max_size=8), st.integers()))
def test_a_unit_text_normalises_the_same_every_time(unit: Any) -> None:
    from fhir_module.engine.clinical.units import _normalised, normalise_unit

    plain = _normalised.__wrapped__(unit) if isinstance(unit, str) else None
    assert normalise_unit(unit) == plain and normalise_unit(unit) == plain


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.sampled_from(["St John's-wort", "levo-milnacipran", "Aspirin-free", "non-aspirin", "Ñame–x", ""]),
                 st.text(max_size=12), st.integers(), st.none()))
def test_a_names_forms_are_worked_out_the_same_every_time(text: Any) -> None:
    # valueset._forms keeps each text's forms; a name is read the same the first time and after.
    from fhir_module.engine.clinical import valueset

    def plain(value: Any) -> tuple[str, ...]:
        if not isinstance(value, str):
            return ()
        spaced, joined = valueset._normalised(value), valueset._normalised(valueset._HYPHENS.sub("", value))
        return (spaced,) if joined == spaced else (spaced, joined)

    assert valueset._forms(text) == plain(text)
    assert valueset._forms(text) == plain(text)
    assert valueset.name_matches(text, f"x {text} y") == valueset.name_matches(text, f"x {text} y")
