"""Latency and throughput of order-select, against a bare FastAPI endpoint on the same machine.

Starts two uvicorn processes on loopback (the service on its built-in knowledge, and a bare app
that answers `{"cards": []}`), sends the same hook request to each from one client, and prints
latency percentiles, throughput and the ratios. Machines here are shared and noisy: compare the
ratios and medians of one run, not absolute numbers across runs.

    python benchmarks/order_select.py [--requests 400] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

import httpx

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
BARE_APP = textwrap.dedent("""
    from fastapi import FastAPI, Request
    app = FastAPI()
    @app.post("/cds-services/{service_id}")
    async def answer(service_id: str, request: Request):
        await request.json()
        return {"cards": []}
    @app.get("/healthz")
    async def health():
        return {"status": "ok"}
""")


def hook_request() -> dict:
    """A realistic order-select: a 160 mg draft on a chart with renal data and co-medications."""
    today = date.today()
    med = lambda rid, code, text, status="active": {  # noqa: E731
        "resourceType": "MedicationRequest", "id": rid, "status": status, "intent": "order",
        "subject": {"reference": "Patient/p"}, "authoredOn": today.isoformat(),
        "medicationCodeableConcept": {"coding": [{"system": RXNORM, "code": code}], "text": text},
        "dosageInstruction": [{"timing": {"repeat": {"frequency": 1, "period": 1, "periodUnit": "d"}},
                               "doseAndRate": [{"doseQuantity": {"value": 40, "unit": "mg", "code": "mg"}}]}]}
    draft = med("draft", "1433239", "levomilnacipran 80 mg", status="draft")
    draft["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = 160
    chart = [med("levo", "1433233", "levomilnacipran 40 mg"), med("ssri", "36437", "Sertraline"),
             med("nsaid", "5640", "Ibuprofen")]
    observation = {"resourceType": "Observation", "id": "crcl", "status": "final", "subject": {"reference": "Patient/p"},
                   "code": {"coding": [{"system": "http://loinc.org", "code": "2164-2"}]},
                   "effectiveDateTime": today.isoformat(), "valueQuantity": {"value": 45, "unit": "mL/min", "code": "mL/min"}}
    bundle = lambda rs: {"resourceType": "Bundle", "type": "searchset", "entry": [{"resource": r} for r in rs]}  # noqa: E731
    return {
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea", "hook": "order-select",
        "context": {"userId": "Practitioner/u", "patientId": "p", "selections": ["MedicationRequest/draft"],
                    "draftOrders": {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": draft}]}},
        "prefetch": {"patient": {"resourceType": "Patient", "id": "p", "gender": "female", "birthDate": "1970-05-01"},
                     "medicationRequests": bundle(chart), "medicationStatements": bundle([]), "conditions": bundle([]),
                     "allergyIntolerances": bundle([]), "observations": bundle([observation])},
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], cwd: str | None = None, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen([*args, "--port", str(port)], cwd=cwd, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{args} did not start")


async def measure(url: str, body: bytes, requests: int, concurrency: int) -> tuple[list[float], float]:
    latencies: list[float] = []
    async with httpx.AsyncClient(timeout=30) as client:
        for _ in range(20):  # warm-up
            (await client.post(url, content=body, headers={"content-type": "application/json"})).raise_for_status()
        queue = iter(range(requests))

        async def worker() -> None:
            for _ in queue:
                started = time.perf_counter()
                response = await client.post(url, content=body, headers={"content-type": "application/json"})
                latencies.append(time.perf_counter() - started)
                response.raise_for_status()

        began = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return latencies, requests / (time.perf_counter() - began)


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    pick = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000  # noqa: E731
    return {"p50": statistics.median(ordered) * 1000, "p90": pick(0.90), "p99": pick(0.99)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    options = parser.parse_args()
    body = json.dumps(hook_request()).encode()
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "bare.py").write_text(BARE_APP)
        env = dict(os.environ, FHIR_MODULE_DATABASE_URL=f"sqlite:///{tmp}/fb.sqlite3")
        env.pop("FHIR_MODULE_TRUSTED_CLIENTS", None)
        service, service_url = start([sys.executable, "-m", "fhir_module.cli", "serve"], env=env)
        bare, bare_url = start([sys.executable, "-m", "uvicorn", "bare:app", "--log-level", "warning"], cwd=tmp)
        try:
            check = httpx.post(f"{service_url}/cds-services/levomilnacipran-order-select", content=body,
                               headers={"content-type": "application/json"}, timeout=30).json()
            print(f"cards in the benchmark response: {[c['source']['topic']['code'] for c in check['cards']]}")
            results = {}
            for name, url in (("bare FastAPI", f"{bare_url}/cds-services/x"),
                              ("order-select", f"{service_url}/cds-services/levomilnacipran-order-select")):
                latencies, throughput = asyncio.run(measure(url, body, options.requests, options.concurrency))
                results[name] = (percentiles(latencies), throughput)
                p = results[name][0]
                print(f"{name:13s} p50 {p['p50']:7.2f} ms  p90 {p['p90']:7.2f} ms  p99 {p['p99']:7.2f} ms  "
                      f"{throughput:7.1f} req/s  ({options.requests} requests, concurrency {options.concurrency})")
            (service_p, service_t), (bare_p, bare_t) = results["order-select"], results["bare FastAPI"]
            print(f"ratio to bare FastAPI: p50 x{service_p['p50'] / bare_p['p50']:.1f}, "
                  f"throughput x{service_t / bare_t:.2f}")
        finally:
            for process in (service, bare):
                process.terminate()
                process.wait(timeout=20)


if __name__ == "__main__":
    main()
