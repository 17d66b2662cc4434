"""therapy_status: every path of the therapy timeline in clinical-rules.md."""

from datetime import date

import pytest

from fhir_module.engine.clinical import days_since, therapy_status

TODAY = date(2026, 11, 26)


def request(status, **fields):
    return {"resourceType": "MedicationRequest", "id": "mr", "status": status, **fields}


def statement(status, **fields):
    return {"resourceType": "MedicationStatement", "id": "ms", "status": status, **fields}


def bounds(end, start="2026-01-01"):
    return [{"timing": {"repeat": {"boundsPeriod": {"start": start, "end": end}}}}]


@pytest.mark.parametrize("status", ["active", "on-hold"])
def test_request_current_statuses(status):
    result = therapy_status(request(status), TODAY)
    assert (result.counts, result.current, result.ended) == (True, True, None)
    assert result.evidence == f"{status}, no end date"


@pytest.mark.parametrize("status", ["active", "intended", "on-hold"])
def test_statement_current_statuses(status):
    result = therapy_status(statement(status), TODAY)
    assert (result.counts, result.current) == (True, True)


def test_intended_is_not_current_for_a_request():
    assert therapy_status(request("intended"), TODAY).counts is False


def test_end_today_is_still_current():
    result = therapy_status(request("active", dosageInstruction=bounds("2026-11-26")), TODAY)
    assert result.current is True
    assert "until 2026-11-26" in result.evidence


def test_active_with_past_bounds_end_ended_then():
    result = therapy_status(request("active", dosageInstruction=bounds("2026-11-20")), TODAY)
    assert (result.counts, result.current, result.ended) == (True, False, date(2026, 11, 20))
    assert result.evidence == "active, but ended 2026-11-20 (end of the last dosing period)"


def test_active_with_past_validity_end():
    resource = request("active", dispenseRequest={"validityPeriod": {"start": "2026-01-01", "end": "2026-10-31"}})
    assert therapy_status(resource, TODAY).ended == date(2026, 10, 31)


def test_statement_effective_period_end():
    resource = statement("active", effectivePeriod={"start": "2026-09-01", "end": "2026-11-01"})
    result = therapy_status(resource, TODAY)
    assert (result.current, result.ended) == (False, date(2026, 11, 1))


def test_earliest_end_date_wins():
    resource = statement(
        "active",
        effectivePeriod={"end": "2026-11-10"},
        dosageInstruction=bounds("2026-11-05"),
    )
    assert therapy_status(resource, TODAY).ended == date(2026, 11, 5)
    resource = request("active", dosageInstruction=bounds("2026-12-31"),
                       dispenseRequest={"validityPeriod": {"end": "2026-11-15"}})
    assert therapy_status(resource, TODAY).ended == date(2026, 11, 15)


def test_dosage_end_needs_every_instruction_bounded():
    one_open = bounds("2026-11-01") + [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}}}]
    assert therapy_status(request("active", dosageInstruction=one_open), TODAY).current is True
    both = bounds("2026-11-01") + bounds("2026-11-20")
    assert therapy_status(request("active", dosageInstruction=both), TODAY).ended == date(2026, 11, 20)


def test_partial_end_date_counts_as_its_last_day():
    assert therapy_status(statement("active", effectivePeriod={"end": "2026-11"}), TODAY).current is True
    assert therapy_status(statement("active", effectivePeriod={"end": "2026-10"}), TODAY).ended == date(2026, 10, 31)


@pytest.mark.parametrize("status", ["stopped", "completed"])
def test_stopped_with_end_date(status):
    result = therapy_status(request(status, dosageInstruction=bounds("2026-11-20")), TODAY)
    assert (result.counts, result.current, result.ended) == (True, False, date(2026, 11, 20))


def test_stopped_before_a_future_planned_end_is_ended_today_at_latest():
    result = therapy_status(request("stopped", dosageInstruction=bounds("2027-01-31")), TODAY)
    assert (result.counts, result.current, result.ended) == (True, False, TODAY)
    assert "at the latest" in result.evidence


@pytest.mark.parametrize(
    ("resource", "ended", "field"),
    [
        (request("stopped", authoredOn="2026-11-01"), date(2026, 11, 1), "the date it was ordered"),
        # A server stamps meta.lastUpdated on every write: the clinical date wins over it.
        (request("completed", authoredOn="2026-10-01", meta={"lastUpdated": "2026-11-15T10:00:00Z"}),
         date(2026, 10, 1), "the date it was ordered"),
        (request("completed", meta={"lastUpdated": "2026-11-15T10:00:00Z"}), date(2026, 11, 15), "the record's last update"),
        (statement("stopped", effectivePeriod={"start": "2026-11-03"}), date(2026, 11, 3), "the start of the recorded period"),
        (statement("completed", effectiveDateTime="2026-11-04T08:00:00Z"), date(2026, 11, 4), "the date it was recorded"),
    ],
)
def test_stopped_without_end_uses_last_known_date(resource, ended, field):
    result = therapy_status(resource, TODAY)
    assert (result.counts, result.current, result.ended) == (True, False, ended)
    assert field in result.evidence


def test_stopped_without_any_date():
    result = therapy_status(request("stopped"), TODAY)
    assert (result.counts, result.current, result.ended) == (True, False, None)
    assert "end date unknown" in result.evidence


@pytest.mark.parametrize(
    "resource",
    [
        request("entered-in-error"), request("cancelled"), request("draft"), request("unknown"),
        request(None), statement("not-taken"), statement("entered-in-error"), statement("unknown"),
        request("active", doNotPerform=True),
        {"resourceType": "MedicationDispense", "status": "completed"},
        {"status": "active"}, None, "active", [],
    ],
)
def test_never_counts(resource):
    result = therapy_status(resource, TODAY)
    assert (result.counts, result.current, result.ended) == (False, False, None)


def test_days_since():
    assert days_since(date(2026, 11, 12), TODAY) == 14
    assert days_since(TODAY, TODAY) == 0
    assert days_since(date(2026, 11, 27), TODAY) == -1


def phase(sequence, end=None):
    repeat = {"frequency": 1, "period": 1, "periodUnit": "d"}
    if end:
        repeat["boundsPeriod"] = {"start": "2026-01-01", "end": end}
    return {"sequence": sequence, "timing": {"repeat": repeat}}


def test_a_phased_order_whose_last_phase_has_no_end_is_current():
    """clinical-rules.md, phased orders: an order whose last phase has no end is current."""
    assert therapy_status(request("active", dosageInstruction=[phase(1, "2026-01-03"), phase(2)]), TODAY).current


def test_a_phased_order_ends_with_its_last_phase():
    ended = therapy_status(request("active", dosageInstruction=[phase(2, "2026-11-10"), phase(1)]), TODAY)
    assert (ended.current, ended.ended) == (False, date(2026, 11, 10))


def test_stopped_without_end_takes_the_first_present_date_not_the_latest():
    """clinical-rules.md, ended without an end date: the first present of authoredOn and
    effectivePeriod.start; meta.lastUpdated only when neither exists."""
    resource = statement("stopped", authoredOn="2026-10-01", effectivePeriod={"start": "2026-11-10"},
                         meta={"lastUpdated": "2026-11-20T10:00:00Z"})
    assert therapy_status(resource, TODAY).ended == date(2026, 10, 1)
    resource = statement("stopped", effectivePeriod={"start": "2026-11-10"}, meta={"lastUpdated": "2026-11-20T10:00:00Z"})
    assert therapy_status(resource, TODAY).ended == date(2026, 11, 10)
