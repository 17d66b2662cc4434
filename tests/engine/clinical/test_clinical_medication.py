"""medication_concepts and the resolvers: codeable concepts, contained, bundle and URL references."""

from fhir_module.engine.clinical import (
    chain_resolvers,
    contained_resolver,
    medication_concepts,
    resources_resolver,
)
from fhir_module.engine.clinical.medication import MedicationConcepts

RX = "http://www.nlm.nih.gov/research/umls/rxnorm"


def no_resolve(_reference):
    return None


def test_codeable_concept():
    resource = {
        "resourceType": "MedicationRequest",
        "medicationCodeableConcept": {
            "coding": [{"system": RX, "code": "1433239", "display": "24 HR levomilnacipran 80 MG Extended Release Oral Capsule"}],
            "text": "Fetzima 80 mg",
        },
    }
    concepts = medication_concepts(resource, no_resolve)
    assert concepts.codings == ((RX, "1433239", "24 HR levomilnacipran 80 MG Extended Release Oral Capsule"),)
    assert concepts.ingredient_codings == ()
    assert concepts.names == ("24 HR levomilnacipran 80 MG Extended Release Oral Capsule", "Fetzima 80 mg")


def test_contained_medication_with_ingredients():
    resource = {
        "resourceType": "MedicationRequest",
        "contained": [
            {"resourceType": "Medication", "id": "med", "code": {"text": "house capsule"},
             "ingredient": [
                 {"itemCodeableConcept": {"coding": [{"system": RX, "code": "111", "display": "drug a"}]}},
                 {"itemReference": {"reference": "#sub", "display": "drug b substance"}},
             ]},
            {"resourceType": "Substance", "id": "sub", "code": {"coding": [{"system": RX, "code": "222"}]}},
        ],
        "medicationReference": {"reference": "#med", "display": "House capsule 40"},
    }
    concepts = medication_concepts(resource, contained_resolver(resource))
    assert concepts.codings == ()
    assert concepts.ingredient_codings == ((RX, "111", "drug a"), (RX, "222", None))
    assert concepts.names == ("House capsule 40", "house capsule", "drug a", "drug b substance")


def test_bundle_reference_forms():
    medication = {"resourceType": "Medication", "id": "m1", "code": {"coding": [{"system": RX, "code": "1433217"}]}}
    bundle_entries = [
        {"fullUrl": "urn:uuid:6f1c", "resource": {"resourceType": "Medication", "code": {"coding": [{"system": RX, "code": "333"}]}}},
        {"fullUrl": "http://ehr.example/fhir/Medication/m1", "resource": medication},
    ]
    resolve = resources_resolver(bundle_entries)
    for reference in ("Medication/m1", "http://ehr.example/fhir/Medication/m1", "https://other.example/Medication/m1",
                      "Medication/m1/_history/3"):
        concepts = medication_concepts({"resourceType": "MedicationStatement", "medicationReference": {"reference": reference}}, resolve)
        assert concepts.codings == ((RX, "1433217", None),), reference
    concepts = medication_concepts({"resourceType": "MedicationRequest", "medicationReference": {"reference": "urn:uuid:6f1c"}}, resolve)
    assert concepts.codings == ((RX, "333", None),)


def test_plain_resources_are_resolved_by_type_and_id():
    resolve = resources_resolver([{"resourceType": "Medication", "id": "x", "code": {"text": "thing"}}])
    assert resolve("Medication/x")["code"]["text"] == "thing"
    assert resolve("Medication/y") is None
    assert resolve("") is None
    assert resolve(None) is None


def test_chain_resolvers_asks_in_turn():
    resource = {"contained": [{"resourceType": "Medication", "id": "c", "code": {"text": "contained one"}}]}
    bundle = resources_resolver([{"resourceType": "Medication", "id": "b", "code": {"text": "bundle one"}}])
    resolve = chain_resolvers(contained_resolver(resource), bundle)
    assert resolve("#c")["code"]["text"] == "contained one"
    assert resolve("Medication/b")["code"]["text"] == "bundle one"
    assert resolve("#b") is None


def test_unresolved_reference_keeps_its_display():
    resource = {"resourceType": "MedicationAdministration", "medicationReference": {"reference": "Medication/404", "display": "Nardil"}}
    concepts = medication_concepts(resource, no_resolve)
    assert concepts.codings == () and concepts.names == ("Nardil",)


def test_medication_dispense_and_direct_medication():
    dispense = {"resourceType": "MedicationDispense", "medicationCodeableConcept": {"coding": [{"system": RX, "code": "9"}]}}
    assert medication_concepts(dispense, no_resolve).codings == ((RX, "9", None),)
    medication = {"resourceType": "Medication", "code": {"coding": [{"system": RX, "code": "8"}]}}
    assert medication_concepts(medication, no_resolve).codings == ((RX, "8", None),)


def test_a_medication_is_read_by_its_code_whatever_else_it_carries():
    # A Medication with a stray medicationCodeableConcept (not a Medication element) is still read
    # by its code and ingredients: the code-only shortcut of the order resources is not for it.
    medication = {"resourceType": "Medication", "code": {"coding": [{"system": RX, "code": "8"}], "text": "Fetzima"},
                  "ingredient": [{"itemCodeableConcept": {"coding": [{"system": RX, "code": "1"}]}}],
                  "medicationCodeableConcept": {"coding": [{"system": RX, "code": "99"}]}}
    concepts = medication_concepts(medication, no_resolve)
    assert concepts.codings == ((RX, "8", None),)
    assert concepts.ingredient_codings == ((RX, "1", None),)
    assert concepts.names == ("Fetzima",)


def test_reference_cycles_stop():
    a = {"resourceType": "Medication", "id": "a", "code": {"text": "A"}, "ingredient": [{"itemReference": {"reference": "Medication/b"}}]}
    b = {"resourceType": "Medication", "id": "b", "code": {"text": "B"}, "ingredient": [{"itemReference": {"reference": "Medication/a"}}]}
    resolve = resources_resolver([a, b])
    concepts = medication_concepts({"resourceType": "MedicationRequest", "medicationReference": {"reference": "Medication/a"}}, resolve)
    assert concepts.names == ("A", "B")


def test_resolver_returning_garbage_is_ignored():
    resource = {"resourceType": "MedicationRequest", "medicationReference": {"reference": "Medication/x"}}
    assert medication_concepts(resource, lambda _r: "not a dict").codings == ()
    assert medication_concepts(resource, None).codings == ()


def test_odd_input_gives_empty():
    for odd in (None, "x", [], {"medicationCodeableConcept": "aspirin"}, {"medicationReference": "Medication/1"},
                {"medicationCodeableConcept": {"coding": "x"}}, {"medicationCodeableConcept": {"coding": [{"code": 5}]}}):
        concepts = medication_concepts(odd, no_resolve)
        assert concepts.codings == () and concepts.ingredient_codings == () and concepts.names == ()


def test_a_drug_named_by_its_code_alone_reads_as_through_the_collector():
    """The fast path for `medicationCodeableConcept` alone gives what the reference collector gives
    (an empty reference sends a resource through the collector), and equal drugs hash alike."""
    rx = RX
    concepts = [
        {"coding": [{"system": rx, "code": "36437", "display": "Sertraline"}], "text": "Zoloft"},
        {"coding": [{"system": f" {rx} ", "code": " 36 437 ", "display": "  "}, {"system": rx, "code": "36437"},
                    "not a coding", {"code": 5}, {"system": rx, "code": "36437", "display": "Sertraline"}],
         "text": "Sertraline"},
        {"text": "  sertraline 50 mg  "},
        {"coding": "not a list", "text": 7},
        {},
    ]
    for concept in concepts:
        fast = medication_concepts({"resourceType": "MedicationRequest", "medicationCodeableConcept": concept}, lambda r: None)
        slow = medication_concepts({"resourceType": "MedicationRequest", "medicationCodeableConcept": concept,
                                    "medicationReference": {}}, lambda r: None)
        assert fast == slow and hash(fast) == hash(slow)
        assert hash(fast) == hash(MedicationConcepts(fast.codings, fast.ingredient_codings, fast.names))
