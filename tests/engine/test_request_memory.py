"""A request's chart is freed as soon as its evaluation is done, without the garbage collector.

The service runs its full garbage collections rarely (app.py), so anything a request leaves in a
reference cycle stays in memory until one runs. Once, the applier's scopes held the applier's own
bound method: applier -> scope -> method -> applier kept every request's chart, with all its JSON,
alive; under a slow FHIR server (requests held across their fetches, then promoted to the oldest
generation) the service grew by 90 MiB in a minute (benchmarks/soak.py, issue 11)."""

from __future__ import annotations

import gc
import weakref
from datetime import date
from typing import Iterator

import pytest

from fhir_module.engine import Engine, KnowledgeBase
from fhir_module.fhir.builtin import module_resources
from fhir_module.knowledge import builtin_module_dir
from tests.engine.test_evaluation_failures import UNREADABLE_ROUTE, _fragile, _request

TODAY = date.today()
CASES = sorted(path.stem for path in (builtin_module_dir("levomilnacipran") / "cases" / "public").glob("*.json"))


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine(KnowledgeBase(list(module_resources("levomilnacipran"))))


@pytest.fixture
def collector_off() -> Iterator[None]:
    """Only reference counting frees anything while the test runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def _left_alive(engine: Engine, case: str, route: object = None) -> list[str]:
    """What of one request's evaluation is still alive once it is done (prepared as the service
    does: judged first, then evaluated)."""
    service_id, request = _request(engine, case, route)
    prepared = engine.prepare(service_id, request, today=TODAY)
    engine.kinds_that_may_apply(service_id, prepared)
    engine.evaluate(service_id, request, today=TODAY, prepared=prepared)
    _, chart, _, applier = prepared
    watched = {"chart": weakref.ref(chart), "applier": weakref.ref(applier), "facts": weakref.ref(applier.facts)}
    del prepared, chart, applier
    return [name for name, ref in watched.items() if ref() is not None]


@pytest.mark.parametrize("case", CASES)
def test_a_requests_chart_is_freed_when_its_evaluation_is_done(engine: Engine, case: str, collector_off: None) -> None:
    assert _left_alive(engine, case) == []


def test_also_when_a_check_could_not_be_evaluated(collector_off: None) -> None:
    engine = _fragile("D4")  # the report of the failed check is what made the cycle
    assert _left_alive(engine, "pub-max-dose", UNREADABLE_ROUTE) == []
    assert engine.evaluation_failures.total == 1
