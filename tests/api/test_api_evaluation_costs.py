"""What the services route does per request, and where: small requests are evaluated on the event
loop, large ones in the thread pool; both give the engine's cards, as compact JSON."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path

import httpx
import orjson

from fhir_module.api.routes.services import INLINE_BODY_BYTES, evaluates_inline

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import workloads  # noqa: E402


def test_the_inline_limit_is_on_the_body_size():
    assert evaluates_inline(0) and evaluates_inline(INLINE_BODY_BYTES)
    assert not evaluates_inline(INLINE_BODY_BYTES + 1)


def test_small_and_large_requests_give_the_engines_cards(base_url, engine):
    today = date.today()
    for request in (workloads.relevant(today), workloads.scaled(400, today)):
        body = json.dumps(request).encode()
        response = httpx.post(f"{base_url}/cds-services/{workloads.SERVICE}", content=body,
                              headers={"content-type": "application/json"}, timeout=60)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        expected = engine.evaluate(workloads.SERVICE, request, today=today)
        cards = response.json()["cards"]
        assert [c["source"]["topic"]["code"] for c in cards] == [c["source"]["topic"]["code"] for c in expected["cards"]]
        # Same cards (their uuids differ: the service signs them for feedback, api/cardids.py).
        assert [c["summary"] for c in cards] == [c["summary"] for c in expected["cards"]]
        assert response.content == orjson.dumps(response.json())  # compact JSON, as written
    assert len(json.dumps(workloads.relevant(today))) <= INLINE_BODY_BYTES < len(json.dumps(workloads.scaled(400, today)))


def test_a_prefetch_key_outside_the_templates_is_not_read_even_when_the_chart_is_reused(base_url, engine):
    """The chart read to judge the orders is reused only when the evaluated prefetch is the one
    sent: resources under a key no template names stay out of the evaluation, as before."""
    today = date.today()
    request = workloads.relevant(today)
    moved = request["prefetch"].pop("medicationRequests")  # the sertraline order (serotonergic card)
    request["prefetch"]["somethingElse"] = moved
    request["prefetch"]["medicationRequests"] = {"resourceType": "Bundle", "type": "searchset", "entry": []}
    response = httpx.post(f"{base_url}/cds-services/{workloads.SERVICE}", json=request, timeout=60)
    assert response.status_code == 200
    expected = engine.evaluate(workloads.SERVICE, {**request, "prefetch": {k: v for k, v in request["prefetch"].items()
                                                                           if k != "somethingElse"}}, today=today)
    assert [c["source"]["topic"]["code"] for c in response.json()["cards"]] == \
        [c["source"]["topic"]["code"] for c in expected["cards"]]


def test_what_is_loaded_at_start_is_out_of_the_garbage_collectors_sight(base_url):
    import gc

    assert httpx.get(f"{base_url}/healthz", timeout=10).status_code == 200
    assert gc.get_freeze_count() > 0


def test_a_large_requests_own_json_is_not_walked_by_the_garbage_collector(base_url):
    """Its ~12,600 objects die by reference counting when it is answered: no young collection runs
    meanwhile (at Python's default threshold ~18 would, each walking the tree again)."""
    import gc

    body = json.dumps(workloads.scaled(1000)).encode()
    collections: list[int] = []

    def count(phase: str, info: dict) -> None:
        if phase == "start":
            collections.append(info["generation"])

    gc.collect()  # counts from zero, whatever earlier tests left
    gc.callbacks.append(count)
    try:
        response = httpx.post(f"{base_url}/cds-services/{workloads.SERVICE}", content=body,
                              headers={"content-type": "application/json"}, timeout=60)
    finally:
        gc.callbacks.remove(count)
    assert response.status_code == 200 and response.json()["cards"]
    assert collections == []
