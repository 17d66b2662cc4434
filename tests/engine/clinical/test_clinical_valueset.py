"""ValueSetIndex: concept lists, nested includes, excludes, filters, ICD normalisation, names."""

import pytest

from fhir_module.engine.clinical import MedicationConcepts, ValueSetIndex, name_matches, normalise_code, range_regex

ICD = "http://hl7.org/fhir/sid/icd-10-cm"
SCT = "http://snomed.info/sct"
RX = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
NAME_EXT = "http://fhir-module.org/fhir/StructureDefinition/recognition-name"
BASE = "http://example.org/ValueSet/"


def vs(name, include=(), exclude=(), names=(), expansion=None):
    resource = {"resourceType": "ValueSet", "url": BASE + name, "status": "active",
                "compose": {"include": list(include)}}
    if exclude:
        resource["compose"]["exclude"] = list(exclude)
    if names:
        resource["extension"] = [{"url": NAME_EXT, "valueString": n} for n in names]
    if expansion is not None:
        resource["expansion"] = {"contains": expansion}
    return resource


def flt(prop, op, value):
    return {"property": prop, "op": op, "value": value}


INDEX = ValueSetIndex([
    vs("mdd", include=[
        {"system": SCT, "concept": [{"code": "370143000"}, {"code": "36923009"}]},
        {"system": ICD, "filter": [flt("concept", "regex", range_regex("F32.0", "F32.5"))]},
        {"system": ICD, "concept": [{"code": "F32.9"}]},
    ]),
    vs("mi", include=[
        {"system": ICD, "filter": [flt("code", "regex", range_regex("I21.01", "I21.4"))]},
        {"system": ICD, "concept": [{"code": "I21.9"}, {"code": "I21.A1"}]},
    ]),
    vs("stroke", include=[{"system": ICD, "filter": [flt("concept", "is-a", "I63")]}]),
    vs("stroke-below", include=[{"system": ICD, "filter": [flt("concept", "descendent-of", "I63")]}]),
    vs("hepatic", include=[{"system": ICD, "filter": [flt("concept", "regex", range_regex("K72.00", "K72.91"))]}]),
    vs("snomed-isa", include=[{"system": SCT, "filter": [flt("concept", "is-a", "57054005")]}]),
    vs("snomed-desc", include=[{"system": SCT, "filter": [flt("concept", "descendent-of", "57054005")]}]),
    vs("equals", include=[{"system": SCT, "filter": [flt("concept", "=", "46177005")]}]),
    vs("atc", include=[{"system": ATC, "filter": [flt("concept", "is-a", "N06AX")]}]),
    vs("ssri", include=[{"system": RX, "concept": [{"code": "36437"}]}], names=["sertraline", "Zoloft"]),
    vs("amph", include=[{"system": RX, "concept": [{"code": "725"}]}], names=["amphetamine"]),
    vs("sjw", include=[{"system": RX, "concept": [{"code": "1"}]}], names=["St John's wort"]),
    vs("serotonergic", include=[{"valueSet": [BASE + "ssri"]}, {"valueSet": [BASE + "amph"]},
                                {"valueSet": [BASE + "sjw"]}, {"system": RX, "concept": [{"code": "999"}]}],
       exclude=[{"system": RX, "concept": [{"code": "999"}]}], names=["tramadol"]),
    vs("intersect", include=[{"valueSet": [BASE + "serotonergic", BASE + "ssri"]}]),
    vs("whole-system", include=[{"system": "http://example.org/local"}]),
    vs("expanded", expansion=[{"system": RX, "code": "5", "contains": [{"system": RX, "code": "6"}]}]),
    vs("bad-regex", include=[{"system": ICD, "filter": [flt("concept", "regex", "F32.(")]}]),
    vs("unknown-property", include=[{"system": SCT, "filter": [flt("parent", "=", "1")]}]),
    vs("cycle-a", include=[{"valueSet": [BASE + "cycle-b"]}]),
    vs("cycle-b", include=[{"valueSet": [BASE + "cycle-a"]}]),
])


@pytest.mark.parametrize("code", ["F32.0", "F32.1", "F32.4", "F32.5", "F32.9", "f32.1", "F321", " F32.2 "])
def test_mdd_range_and_listed_code(code):
    assert INDEX.contains(BASE + "mdd", ICD, code)


@pytest.mark.parametrize("code", ["F32.A", "F32.8", "F32.81", "F32.89", "F33.0", "F32", "F32.50"])
def test_mdd_excludes(code):
    assert not INDEX.contains(BASE + "mdd", ICD, code)


@pytest.mark.parametrize(("code", "member"), [
    ("I21.01", True), ("I21.09", True), ("I21.1", True), ("I21.11", True), ("I21.3", True), ("I21.4", True),
    ("I21.9", True), ("I21.A1", True), ("I21.A9", False), ("I21.0", False), ("I21.B", False), ("I22.0", False),
])
def test_mi_range(code, member):
    assert INDEX.contains(BASE + "mi", ICD, code) is member


@pytest.mark.parametrize(("code", "member"), [("K72.9", True), ("K72.90", True), ("K72.91", True), ("K72.00", True),
                                              ("K72.92", False), ("K72.0", False), ("K74.60", False)])
def test_hepatic_range(code, member):
    assert INDEX.contains(BASE + "hepatic", ICD, code) is member


@pytest.mark.parametrize(("code", "isa", "desc"), [
    ("I63", True, False), ("I63.0", True, True), ("I63.011", True, True), ("I63011", True, True),
    ("i63.9", True, True), ("I64", False, False), ("I6", False, False),
])
def test_icd_hierarchy_filters(code, isa, desc):
    assert INDEX.contains(BASE + "stroke", ICD, code) is isa
    assert INDEX.contains(BASE + "stroke-below", ICD, code) is desc


def test_hierarchy_filters_without_local_hierarchy():
    assert INDEX.contains(BASE + "snomed-isa", SCT, "57054005")
    assert not INDEX.contains(BASE + "snomed-isa", SCT, "570540051")  # no prefix logic for SNOMED
    assert not INDEX.contains(BASE + "snomed-desc", SCT, "57054005")


def test_atc_is_prefix_hierarchical():
    assert INDEX.contains(BASE + "atc", ATC, "N06AX28")
    assert not INDEX.contains(BASE + "atc", ATC, "N06AB06")


def test_equals_filter_and_system_must_match():
    assert INDEX.contains(BASE + "equals", SCT, "46177005")
    assert not INDEX.contains(BASE + "equals", ICD, "46177005")
    assert not INDEX.contains(BASE + "equals", SCT, "46177006")


def test_nested_includes_excludes_and_intersection():
    assert INDEX.contains(BASE + "serotonergic", RX, "36437")
    assert INDEX.contains(BASE + "serotonergic", RX, "725")
    assert not INDEX.contains(BASE + "serotonergic", RX, "999")  # excluded
    assert INDEX.contains(BASE + "intersect", RX, "36437")
    assert not INDEX.contains(BASE + "intersect", RX, "725")


def test_whole_system_expansion_and_versioned_url():
    assert INDEX.contains(BASE + "whole-system", "http://example.org/local", "anything")
    assert INDEX.contains(BASE + "expanded", RX, "6")
    assert INDEX.contains(BASE + "ssri|1.2.0", RX, "36437")


def test_broken_and_unknown_things_match_nothing():
    assert not INDEX.contains(BASE + "bad-regex", ICD, "F32.1")
    assert not INDEX.contains(BASE + "unknown-property", SCT, "1")
    assert not INDEX.contains(BASE + "cycle-a", RX, "1")
    assert not INDEX.contains(BASE + "nope", RX, "36437")
    assert not INDEX.contains(None, RX, "36437")
    assert not INDEX.contains(BASE + "ssri", RX, None)
    assert not INDEX.contains(BASE + "ssri", RX, 36437)


def test_icd_code_normalisation():
    assert normalise_code(ICD, "n186") == "N18.6"
    assert normalise_code(ICD, "N18.6") == "N18.6"
    assert normalise_code(ICD, "I10") == "I10"
    assert normalise_code(SCT, " 4617 7005 ") == "46177005"
    assert normalise_code(SCT, "") is None


def test_names_include_nested_value_sets():
    assert INDEX.names(BASE + "ssri") == ("sertraline", "Zoloft")
    assert INDEX.names(BASE + "serotonergic") == ("tramadol", "sertraline", "Zoloft", "amphetamine", "St John's wort")
    assert INDEX.names(BASE + "nope") == ()


def test_match_by_code_ingredient_and_name():
    by_code = INDEX.match(BASE + "ssri", {"coding": [{"system": RX, "code": "36437"}], "text": "x"})
    assert (by_code.how, by_code.coding) == ("code", (RX, "36437", None))
    concepts = MedicationConcepts(codings=((RX, "123", "house sertraline"),), ingredient_codings=((RX, "36437", None),),
                                  names=("house sertraline",))
    by_ingredient = INDEX.match(BASE + "ssri", concepts)
    assert (by_ingredient.how, by_ingredient.coding) == ("ingredient", (RX, "36437", None))
    by_name = INDEX.match(BASE + "serotonergic", {"text": "Sertraline 50 mg tab"})
    assert (by_name.how, by_name.name) == ("name", "sertraline")
    assert INDEX.match(BASE + "ssri", [{"system": RX, "code": "36437"}]).how == "code"
    assert INDEX.match(BASE + "ssri", (RX, "36437")).how == "code"
    assert INDEX.match(BASE + "ssri", "ZOLOFT 25MG").name == "Zoloft"


def test_no_match():
    assert INDEX.match(BASE + "amph", {"text": "Dextroamphetamine 10 mg"}) is None
    assert INDEX.match(BASE + "ssri", {"coding": [{"system": RX, "code": "1"}]}) is None
    assert INDEX.match(BASE + "ssri", None) is None
    assert INDEX.match("nope", "sertraline") is None


@pytest.mark.parametrize(("name", "text", "expected"), [
    ("sertraline", "Sertraline 50 mg tab", True),
    ("sertraline", "SERTRALINE HCL", True),
    ("amphetamine", "dextroamphetamine sulfate", False),
    ("amphetamine", "amphetamine/dextroamphetamine", True),
    ("St John's wort", "St. John's Wort extract", True),
    ("St John's wort", "St Johns wort 300 mg", True),
    ("St John's wort", "st. john\u2019s wort", True),
    ("St John's wort", "St.John's-wort", True),
    ("St John's wort", "John's wort", False),
    ("tramadol", "tramadolxyz", False),
    ("Fetzima", "FETZIMA® 40 mg", True),
    ("levomilnacipran", "Lévomilnacipran", True),
    ("", "anything", False),
    ("x", None, False),
])
def test_name_matching(name, text, expected):
    assert name_matches(name, text) is expected


def test_index_skips_garbage():
    index = ValueSetIndex([None, "x", {"resourceType": "CodeSystem", "url": BASE + "cs"}, {"resourceType": "ValueSet"},
                           {"url": BASE + "odd", "compose": {"include": [{"system": RX, "concept": "x", "filter": [{"op": "="}]}]}}])
    assert index.urls == (BASE + "odd",)
    assert not index.contains(BASE + "odd", RX, "1")


def test_a_name_naming_what_a_product_lacks_is_no_match():
    from fhir_module.engine.clinical.valueset import name_matches

    assert not name_matches("aspirin", "Aspirin-free Tylenol")
    assert not name_matches("aspirin", "Non-aspirin pain reliever")
    assert name_matches("aspirin", "Aspirin 81 mg chewable")
    assert name_matches("aspirin", "aspirin-free cream; aspirin 81 mg")


@pytest.mark.parametrize(("written", "eleven"), [
    ("0456-2220-30", "00456222030"),   # 4-4-2
    ("00456-2220-30", "00456222030"),  # 5-4-2
    ("00456222030", "00456222030"),    # 11 digits as billing systems send them
    ("12345-678-90", "12345067890"),   # 5-3-2
    ("12345-6789-1", "12345678901"),   # 5-4-1
    ("0456222030", "0456222030"),      # 10 digits without hyphens: ambiguous, kept as written
])
def test_ndc_codes_compare_in_their_11_digit_form(written, eleven):
    assert normalise_code("http://hl7.org/fhir/sid/ndc", written) == eleven


def test_an_ndc_matches_whatever_its_layout():
    index = ValueSetIndex([{"resourceType": "ValueSet", "url": "http://x/vs", "compose": {"include": [
        {"system": "http://hl7.org/fhir/sid/ndc", "concept": [{"code": "0456-2220-30"}]}]}}])
    for code in ("0456-2220-30", "00456-2220-30", "00456222030"):
        assert index.contains("http://x/vs", "http://hl7.org/fhir/sid/ndc", code)
    assert not index.contains("http://x/vs", "http://hl7.org/fhir/sid/ndc", "0456-2220-31")


@pytest.mark.parametrize(("name", "text"), [
    ("St John's wort", "Saint John's Wort 300 mg capsule (OTC)"),
    ("St. John's wort", "ST JOHNS-WORT extract"),
    ("St John's wort", "St.-John's-wort"),
    ("levomilnacipran", "Levo-milnacipran ER"),
])
def test_names_match_across_saint_st_hyphens_and_apostrophes(name, text):
    """clinical-rules.md, names: "St.", "St" and "Saint"; hyphens and apostrophes."""
    assert name_matches(name, text)
