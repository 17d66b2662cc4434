"""One slow FHIR server must not take fetching down: after an overload of requests that need it,
the healthy server answers in its normal time, client keys can still be refreshed, no fetch slot is
leaked, and readiness tells the truth during and after (issue 11, "High").

Once, with one shared httpx pool, cancelled fetches queued in the pool leaked its slots: the healthy
server's fetches then timed out (412) until restart and a token with a new key id got 401, while
/healthz said ok. The soak in benchmarks/soak.py runs the same situation for a minute at 64
connections; this is the bounded version."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path
from typing import Any

import httpx

from fhir_module.config import load_trusted_clients
from fhir_module.engine.chart import Chart
from tests.api.helpers import FhirJsonServer, scenario_request
from tests.api.test_api_prefetch_fetch import authorization, card_keys, chart
from tests.support.jwt_clients import JwtClient, write_trusted_clients

TIMEOUT = 1.0  # the service's fetch timeout
OVERLOAD = 40  # concurrent requests that need the slow server: 240 fetches, more than any pool holds


def test_a_slow_server_does_not_take_fetching_down(live: Any, discovery: dict[str, Any], tmp_path: Path,
                                                   jwt_client_factory: Any) -> None:
    healthy, slow = FhirJsonServer(), FhirJsonServer(delay=6.0)
    healthy.start()
    slow.start()
    client: JwtClient = jwt_client_factory()
    trusted = load_trusted_clients(str(write_trusted_clients(tmp_path / "clients.json", [client])))
    try:
        chart(healthy, "pub-clean")
        chart(slow, "pub-clean")
        service_id, to_slow = scenario_request("pub-clean", discovery, fhir_server=slow.base, prefetch=False)
        _, to_healthy = scenario_request("pub-clean", discovery, fhir_server=healthy.base, prefetch=False)
        _, complete = scenario_request("pub-clean", discovery)
        for body in (to_slow, to_healthy):
            body["fhirAuthorization"] = authorization()
        with live(allowed_fhir_servers=(healthy.base, slow.base), fetch_timeout=TIMEOUT,
                  trusted_clients=trusted, jwks_refetch_interval=0.1) as base:
            call = f"{base}/cds-services/{service_id}"

            def headers() -> dict[str, str]:
                return client.authorization(call)

            async def scenario() -> dict[str, Any]:
                async with httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=OVERLOAD + 10)) as http:
                    normal_started = time.monotonic()
                    normal = await http.post(call, json=to_healthy, headers=headers())
                    normal_seconds = time.monotonic() - normal_started
                    assert normal.status_code == 200, normal.text

                    overload = [asyncio.create_task(http.post(call, json=to_slow, headers=headers()))
                                for _ in range(OVERLOAD)]
                    # Until the slow lane is full (polled: a loaded machine takes a while to start 40 calls).
                    full_by = time.monotonic() + 2 * TIMEOUT
                    while True:
                        during = await http.get(f"{base}/readyz")
                        lane = during.json()["checks"]["fhirServers"][slow.base]
                        if lane["inFlight"] == lane["concurrency"] or time.monotonic() > full_by:
                            break
                        await asyncio.sleep(0.05)
                    started = time.monotonic()
                    healthy_during = await http.post(call, json=to_healthy, headers=headers())
                    healthy_seconds = time.monotonic() - started
                    # A new key id: the JWK Set must be fetched again, now. The old key stays published:
                    # on a loaded machine some overload calls are still being authenticated (their tokens
                    # signed by it), and a 401 for them would not be the slow server's doing.
                    client.rotate("ES384", keep_previous=True)
                    rotated = await http.post(call, json=complete, headers=headers())
                    answers = await asyncio.gather(*overload)

                    await asyncio.sleep(TIMEOUT)
                    started = time.monotonic()
                    healthy_after = await http.post(call, json=to_healthy, headers=headers())
                    after_seconds = time.monotonic() - started
                    after = await http.get(f"{base}/readyz")
                    return locals()

            seen = asyncio.run(scenario())
    finally:
        healthy.stop()
        slow.stop()

    statuses = [answer.status_code for answer in seen["answers"]]
    assert set(statuses) == {412}, statuses  # said, promptly: never a 5xx, never a hang
    assert all(("did not answer in time" in a.text or "busy" in a.text) for a in seen["answers"])
    assert seen["rotated"].status_code == 200, seen["rotated"].text
    normal = max(seen["normal_seconds"], 0.2)
    for name in ("healthy_during", "healthy_after"):
        assert card_keys(seen[name]) == card_keys(seen["normal"]), name
    assert seen["healthy_seconds"] < 3 * normal + 2.0, (seen["healthy_seconds"], normal)
    assert seen["after_seconds"] < 3 * normal + 2.0, (seen["after_seconds"], normal)

    during = seen["during"].json()
    assert seen["during"].status_code == 200 and during["status"] == "degraded", during
    lanes = during["checks"]["fhirServers"]
    assert lanes[slow.base]["status"] in ("busy", "failing"), lanes
    assert lanes[slow.base]["inFlight"] == lanes[slow.base]["concurrency"]
    assert lanes[healthy.base]["status"] == "ok", lanes
    after = seen["after"].json()["checks"]["fhirServers"]
    assert after[slow.base]["inFlight"] == 0 and after[slow.base]["waiting"] == 0  # no slot leaked
    assert after[slow.base]["status"] == "failing" and "no answer in time" in after[slow.base]["lastProblem"]
    assert after[healthy.base] == {**after[healthy.base], "status": "ok", "inFlight": 0}


def test_requests_held_by_a_slow_server_leave_nothing_for_the_garbage_collector(live: Any, discovery: dict[str, Any]) -> None:
    """Every request, answered or refused 412 after its fetches timed out, is freed by reference
    counting alone. The soak once grew 118 -> 210 MiB in a minute of a slow server: each request's
    chart was held in a reference cycle (the applier and its scopes), requests waiting on the slow
    server lived long enough to be moved to the collector's oldest generation, and the service
    collects that one rarely (app.py). Here the collector is off while the requests run: what a
    cycle holds stays, and is counted."""
    slow = FhirJsonServer(delay=3.0)
    slow.start()
    try:
        chart(slow, "pub-clean")
        service_id, to_slow = scenario_request("pub-clean", discovery, fhir_server=slow.base, prefetch=False)
        _, complete = scenario_request("pub-clean", discovery)
        with live(allowed_fhir_servers=(slow.base,), fetch_timeout=0.3) as base:
            call = f"{base}/cds-services/{service_id}"
            with httpx.Client(timeout=30) as http:
                assert http.post(call, json=complete).status_code == 200  # everything loaded once

                async def load() -> list[int]:
                    async with httpx.AsyncClient(timeout=30) as client:
                        answers = await asyncio.gather(*(client.post(call, json=body)
                                                         for body in [to_slow, complete] * 10))
                    return [answer.status_code for answer in answers]

                gc.collect()
                charts_before = _alive(Chart)
                gc.disable()
                try:
                    statuses = asyncio.run(load())
                    left = _alive(Chart) - charts_before
                finally:
                    gc.enable()
    finally:
        slow.stop()
    assert sorted(set(statuses)) == [200, 412], statuses
    assert left == 0, f"{left} request charts are kept alive by reference cycles"


def _alive(kind: type) -> int:
    return sum(1 for thing in gc.get_objects() if isinstance(thing, kind))
