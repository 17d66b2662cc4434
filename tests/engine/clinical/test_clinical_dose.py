"""daily_dose: dose quantity forms, every timing form, several instructions, and refusals."""

import pytest

from fhir_module.engine.clinical import DoseResult, DoseUnknown, daily_dose


def strength_40(_request):
    return 40.0


def no_strength(_request):
    return None


def order(*instructions):
    return {"resourceType": "MedicationRequest", "id": "o1", "dosageInstruction": list(instructions)}


def mg(value, unit="mg", code=None):
    quantity = {"value": value, "unit": unit}
    if code is not None:
        quantity.update(system="http://unitsofmeasure.org", code=code)
    return [{"doseQuantity": quantity}]


def dose(quantity_list, timing=None, **extra):
    entry = {"doseAndRate": quantity_list, **extra}
    if timing is not None:
        entry["timing"] = timing
    return entry


def repeat(**fields):
    return {"repeat": fields}


def compute(*instructions, strength=strength_40):
    return daily_dose(order(*instructions), strength)


def assert_dose(result, mg_per_day, per_day, per_admin=None):
    assert isinstance(result, DoseResult), result
    assert result.mg_per_day == pytest.approx(mg_per_day)
    assert result.administrations_per_day == pytest.approx(per_day)
    if per_admin is not None:
        assert result.per_administration_mg == pytest.approx(per_admin)


# -- dose per administration ---------------------------------------------------------------------

def test_mg_once_daily_from_repeat():
    result = compute(dose(mg(80, code="mg"), repeat(frequency=1, period=1, periodUnit="d")))
    assert_dose(result, 80, 1, 80)
    assert result.evidence == "80 mg once daily = 80 mg/day"


def test_grams_and_micrograms():
    assert_dose(compute(dose(mg(0.12, "g"), repeat(frequency=1, period=1, periodUnit="d"))), 120, 1)
    assert_dose(compute(dose(mg(40000, "mcg"), repeat(frequency=1, period=1, periodUnit="d"))), 40, 1)


def test_code_wins_over_unit_text():
    result = compute(dose([{"doseQuantity": {"value": 40, "unit": "milligram", "code": "mg"}}]))
    assert_dose(result, 40, 1)


def test_capsules_use_the_product_strength():
    result = compute(dose(mg(2, "capsule", code="{capsule}"), repeat(frequency=1, period=1, periodUnit="d")))
    assert_dose(result, 80, 1, 80)
    assert "2 capsules of 40 mg (80 mg)" in result.evidence


def test_ucum_one_is_a_unit_dose():
    assert_dose(compute(dose(mg(3, "1"))), 120, 1)


def test_capsules_without_strength_are_unknown():
    result = compute(dose(mg(1, "{capsule}")), strength=no_strength)
    assert isinstance(result, DoseUnknown)
    assert "product strength is not known" in result.reason


def test_strength_that_is_not_a_number_is_unknown():
    result = compute(dose(mg(1, "tab")), strength=lambda _r: "40")
    assert isinstance(result, DoseUnknown)


def test_dose_range_uses_the_high_bound():
    entry = {"doseAndRate": [{"doseRange": {"low": {"value": 20, "unit": "mg"}, "high": {"value": 40, "unit": "mg"}}}],
             "timing": repeat(frequency=2, period=1, periodUnit="d")}
    result = compute(entry)
    assert_dose(result, 80, 2, 40)


def test_dose_range_without_high_is_unknown():
    entry = {"doseAndRate": [{"doseRange": {"low": {"value": 20, "unit": "mg"}}}]}
    assert isinstance(compute(entry), DoseUnknown)


def test_ordered_dose_preferred_over_calculated():
    entry = {"doseAndRate": [
        {"type": {"coding": [{"code": "calculated"}]}, "doseQuantity": {"value": 999, "unit": "mg"}},
        {"type": {"coding": [{"code": "ordered"}]}, "doseQuantity": {"value": 40, "unit": "mg"}},
    ]}
    assert_dose(compute(entry), 40, 1)


@pytest.mark.parametrize(
    ("quantity", "reason"),
    [
        ({"value": 80, "unit": "mL"}, "neither a mass"),
        ({"value": "80", "unit": "mg"}, "not a number"),
        ({"value": 0, "unit": "mg"}, "not a positive amount"),
        ({"value": -40, "unit": "mg"}, "not a positive amount"),
        ({"value": 80}, "has no unit"),
        ({"value": 5e9, "unit": "mg"}, "not a plausible amount"),
        ({"value": 5000, "unit": "capsule"}, "not a plausible amount"),
    ],
)
def test_bad_dose_quantities(quantity, reason):
    result = compute({"doseAndRate": [{"doseQuantity": quantity}]})
    assert isinstance(result, DoseUnknown)
    assert reason in result.reason


# -- administrations per day ----------------------------------------------------------------------

@pytest.mark.parametrize(
    ("fields", "per_day"),
    [
        ({"frequency": 1, "period": 1, "periodUnit": "d"}, 1),
        ({"frequency": 2, "period": 1, "periodUnit": "d"}, 2),
        ({"frequency": 1, "period": 12, "periodUnit": "h"}, 2),
        ({"frequency": 1, "period": 8, "periodUnit": "h"}, 3),
        ({"frequency": 1, "period": 6, "periodUnit": "h"}, 4),
        ({"frequency": 1, "period": 720, "periodUnit": "min"}, 2),
        ({"frequency": 1, "frequencyMax": 3, "period": 1, "periodUnit": "d"}, 3),
        ({"frequency": 1, "period": 12, "periodMax": 24, "periodUnit": "h"}, 2),
        ({"period": 1, "periodUnit": "d"}, 1),  # frequency defaults to 1
        ({"frequency": 1, "period": 2, "periodUnit": "d"}, 1),  # every 2 days: dose of a dosing day
        ({"frequency": 1, "period": 1, "periodUnit": "wk"}, 1),
        ({"frequency": 4, "period": 2, "periodUnit": "d"}, 2),
        ({"frequency": 1, "period": 1, "periodUnit": "mo"}, 1),
        ({"when": ["MORN", "EVE"]}, 2),
        ({"when": ["HS"]}, 1),
        ({"timeOfDay": ["08:00:00", "14:00:00", "20:00:00"]}, 3),
        ({"frequency": 1, "period": 1, "periodUnit": "d", "when": ["MORN", "NIGHT"]}, 2),  # the larger
    ],
)
def test_timing_repeat(fields, per_day):
    assert_dose(compute(dose(mg(20), repeat(**fields))), 20 * per_day, per_day)


@pytest.mark.parametrize(
    ("code", "per_day"),
    [("QD", 1), ("BID", 2), ("TID", 3), ("QID", 4), ("AM", 1), ("PM", 1), ("QHS", 1), ("HS", 1),
     ("Q4H", 6), ("Q6H", 4), ("Q8H", 3), ("Q12H", 2), ("QOD", 1), ("WK", 1), ("bid", 2)],
)
def test_timing_code(code, per_day):
    timing = {"code": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-GTSAbbreviation", "code": code}]}}
    result = compute(dose(mg(20), timing))
    assert_dose(result, 20 * per_day, per_day)
    assert f"({code})" in result.evidence


@pytest.mark.parametrize(
    ("concept", "per_day"),
    [
        ({"text": "twice daily"}, 2),
        ({"text": "Once a day"}, 1),
        ({"coding": [{"code": "local-7", "display": "three times a day"}]}, 3),
        ({"text": "every 8 hours"}, 3),
        ({"text": "4x daily"}, 4),
        ({"text": "every other day"}, 1),
    ],
)
def test_timing_code_by_display_or_text(concept, per_day):
    assert_dose(compute(dose(mg(20), {"code": concept})), 20 * per_day, per_day)


def test_unknown_timing_code_is_unknown():
    result = compute(dose(mg(20), {"code": {"coding": [{"code": "XYZ"}]}}))
    assert isinstance(result, DoseUnknown)
    assert "XYZ" in result.reason


def test_repeat_wins_over_code():
    timing = {"code": {"coding": [{"code": "QD"}]}, "repeat": {"frequency": 2, "period": 1, "periodUnit": "d"}}
    assert_dose(compute(dose(mg(20), timing)), 40, 2)


def test_timing_events_count_the_busiest_day():
    timing = {"event": ["2026-11-20T08:00:00Z", "2026-11-20T20:00:00Z", "2026-11-21T08:00:00Z"]}
    assert_dose(compute(dose(mg(20), timing)), 40, 2)


def test_no_timing_assumes_once_daily_and_says_so():
    result = compute(dose(mg(160)))
    assert_dose(result, 160, 1)
    assert "no frequency given: taken as once daily" in result.evidence


def test_no_timing_but_text_names_frequency():
    result = compute(dose(mg(40), text="Take one capsule by mouth twice daily"))
    assert_dose(result, 80, 2)
    assert "twice daily" in result.evidence


def test_text_with_a_bare_count_is_not_a_frequency():
    assert_dose(compute(dose(mg(1, "capsule"), text="take 2 daily")), 40, 1)


def test_repeat_with_only_bounds_falls_back_to_once_daily():
    timing = repeat(boundsPeriod={"start": "2026-11-01"})
    assert_dose(compute(dose(mg(20), timing)), 20, 1)


@pytest.mark.parametrize(
    ("timing", "reason"),
    [
        (repeat(frequency=1, period=1), "not a time unit"),
        (repeat(frequency=1, period=1, periodUnit="fortnight"), "not a time unit"),
        (repeat(frequency=2), "no positive period"),
        (repeat(frequency=0, period=1, periodUnit="d"), "frequency is not a positive number"),
        (repeat(frequency="2", period=1, periodUnit="d"), "frequency is not a positive number"),
        (repeat(frequency=1, period=0, periodUnit="d"), "no positive period"),
        (repeat(frequency=1, period=1, periodUnit="s"), "not a plausible frequency"),
        ("BID", "timing is not an object"),
        ({"repeat": ["x"]}, "repeat is not an object"),
    ],
)
def test_bad_timing(timing, reason):
    result = compute(dose(mg(20), timing))
    assert isinstance(result, DoseUnknown)
    assert reason in result.reason


# -- several instructions ----------------------------------------------------------------------

def test_concurrent_entries_add_up():
    morning = dose(mg(40), repeat(when=["MORN"]))
    evening = dose(mg(20), repeat(when=["EVE"]))
    result = compute(morning, evening)
    assert_dose(result, 60, 2, 40)
    assert "together 60 mg/day" in result.evidence


def test_same_sequence_adds_up():
    result = compute(dose(mg(40), sequence=1), dose(mg(40), sequence=1))
    assert_dose(result, 80, 2)


def test_consecutive_sequences_take_the_largest():
    start = dose(mg(20), repeat(frequency=1, period=1, periodUnit="d", boundsDuration={"value": 2, "unit": "d"}), sequence=1)
    then = dose(mg(40), repeat(frequency=1, period=1, periodUnit="d"), sequence=2)
    result = compute(start, then)
    assert_dose(result, 40, 1)
    assert "the largest of 2 phases (phase 2)" in result.evidence


def test_text_only_instruction_is_ignored():
    assert_dose(compute(dose(mg(40)), {"text": "take with food"}), 40, 1)


def test_one_unknown_entry_makes_the_whole_dose_unknown():
    result = compute(dose(mg(40)), dose(mg(1, "puff")))
    assert isinstance(result, DoseUnknown)
    assert result.reason.startswith("dosage instruction 2:")


@pytest.mark.parametrize(
    "request_",
    [None, "x", [], {}, {"dosageInstruction": []}, {"dosageInstruction": "80 mg"},
     {"dosageInstruction": [{"text": "as directed"}]}, {"dosageInstruction": ["80 mg"]},
     {"dosageInstruction": [{"doseAndRate": "80 mg"}]}, {"dosageInstruction": [{"doseAndRate": [{"doseQuantity": 80}]}]}],
)
def test_unusable_orders_are_unknown(request_):
    assert isinstance(daily_dose(request_, strength_40), DoseUnknown)
