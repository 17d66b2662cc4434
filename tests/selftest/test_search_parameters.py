"""The self-test's FHIR server reads a query's parameters as `parse_qsl(keep_blank_values=True)`
does; a query with nothing to decode takes a shorter way, which must give the same pairs."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qsl

from hypothesis import given
from hypothesis import strategies as st

from fhir_module.engine import Engine
from fhir_module.selftest import ehr
from tests.support.scenarios import module_requests


@given(st.text(alphabet="ab=&%+ |:,_.-é2", max_size=40))
def test_read_as_parse_qsl_reads_it(query_string: str) -> None:
    ehr._search_parameters.cache_clear()
    assert ehr._search_parameters(query_string) == tuple(parse_qsl(query_string, keep_blank_values=True))


def test_every_query_of_the_module_cases_is_read_as_parse_qsl_reads_it(monkeypatch) -> None:
    seen: list[str] = []
    read = ehr._search_parameters
    monkeypatch.setattr(ehr, "_search_parameters", lambda query_string: seen.append(query_string) or read(query_string))
    module_requests(Engine.default(), date(2026, 11, 26))
    assert len(seen) > 1000
    for query_string in set(seen):
        assert read(query_string) == tuple(parse_qsl(query_string, keep_blank_values=True)), query_string
