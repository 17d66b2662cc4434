"""A drug's value set holds every verified code of its products and packs, and names its brands
(clinical-rules.md, decisions: codes of the drug, names)."""

from __future__ import annotations

from fhir_module.knowledge import builtin_module_dir, load_knowledge

NDC = "http://hl7.org/fhir/sid/ndc"
KNOWLEDGE = load_knowledge(builtin_module_dir("levomilnacipran"))


def _valueset(vs_id: str):
    return next(vs for vs in KNOWLEDGE.valuesets if vs.id == vs_id)


def test_the_drug_value_set_holds_every_product_and_pack_ndc() -> None:
    expected = {ndc for item in (*KNOWLEDGE.products, *KNOWLEDGE.packs) for ndc in item.ndc}
    assert expected, "the knowledge lists NDCs for its products"
    listed = {code for include in _valueset(KNOWLEDGE.drug["valueset"]).includes if include.system == NDC
              for code, _ in include.concepts}
    assert listed == expected


def test_class_value_sets_name_the_brands_the_terminology_lists() -> None:
    assert {"Ultram", "Subsys"} <= set(_valueset("serotonergic").names)  # "Subsys 1200 MCG" -> "Subsys"
    assert "Parnate" in _valueset("maoi").names
    assert "Percodan" in _valueset("bleeding-risk").names  # "Percodan Reformulated May 2009"
    assert not any(name[0].isdigit() or "Reformulated" in name for vs in KNOWLEDGE.valuesets for name in vs.names)
