"""Prometheus metrics at /metrics (requests, latency, cards by topic, evaluation failures, fetches,
validations, feedback, refused tokens), summed over `serve --workers`; JSON log lines carrying the
hookInstance of the call they belong to."""

from __future__ import annotations

import json
import os
import re
import socket
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from fhir_module.api import create_app
from fhir_module.api.metrics import Metrics
from fhir_module.config import Settings, load_trusted_clients
from tests.api.helpers import free_port, post, running_service, scenario_request, serve_app
from tests.engine.test_evaluation_failures import UNREADABLE_ROUTE, _fragile, _request
from tests.support.jwt_clients import JwtClient, write_trusted_clients

SAMPLE = re.compile(r"^([a-z_]+)(\{.*\})? (\S+)$")


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value of every sample line (and the format checked on the way)."""
    found = {}
    for line in text.splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a Prometheus sample line: {line!r}"
        found[f"{match[1]}{match[2] or ''}"] = float(match[3])
    return found


def value(found: dict[str, float], name: str, **labels: str) -> float:
    """The sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for key, number in found.items():
        if key == name or key.startswith(name + "{"):
            if all(f'{label}="{text}"' in key for label, text in labels.items()):
                total += number
    return total


def test_metrics_count_what_the_service_did(tmp_path: Path, discovery: dict[str, Any], jwt_client_factory: Any) -> None:
    engine = _fragile("D1")  # a check that cannot be evaluated on an odd route text
    client: JwtClient = jwt_client_factory()
    trusted = load_trusted_clients(str(write_trusted_clients(tmp_path / "clients.json", [client])))
    dead = f"http://127.0.0.1:{free_port()}/fhir"
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'f.sqlite3'}", trusted_clients=trusted,
                        allowed_fhir_servers=(dead,))
    with serve_app(create_app(settings, engine)) as url:
        def call(body: dict[str, Any], sid: str) -> httpx.Response:
            target = f"{url}/cds-services/{sid}"
            return httpx.post(target, json=body, headers=client.authorization(target), timeout=30)

        sid, dose = scenario_request("pub-max-dose", discovery)
        answer = call(dose, sid)
        assert answer.status_code == 200
        card = answer.json()["cards"][0]
        _, odd = _request(engine, "pub-clean", UNREADABLE_ROUTE)
        assert call(odd, sid).status_code == 200
        _, bare = scenario_request("pub-clean", discovery, fhir_server=dead, prefetch=False)
        assert call(bare, sid).status_code == 412
        assert httpx.get(f"{url}/cds-services").status_code == 401  # no token
        feedback = f"{url}/cds-services/{sid}/feedback"
        item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-11-26T10:00:00Z"}
        for _ in range(2):
            assert httpx.post(feedback, json={"feedback": [item]}, headers=client.authorization(feedback)).status_code == 200
        assert httpx.post(f"{url}/fhir/$validate", json={"resourceType": "Patient"},
                          headers=client.authorization(f"{url}/fhir/$validate"), timeout=60).status_code == 200
        response = httpx.get(f"{url}/metrics")  # open, like /healthz
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain; version=0.0.4")
    found = samples(response.text)
    route = "/cds-services/{service_id}"
    assert value(found, "fhir_module_requests_total", route=route, method="POST", status="200") == 2
    assert value(found, "fhir_module_requests_total", route=route, status="412") == 1
    assert value(found, "fhir_module_requests_total", route="/cds-services", status="401") == 1
    assert value(found, "fhir_module_request_duration_seconds_count", route=route) == 3
    assert value(found, "fhir_module_request_duration_seconds_bucket", route=route, le="+Inf") == 3
    assert value(found, "fhir_module_cards_total", service=sid, topic="dose-limit", indicator="warning") == 1
    assert value(found, "fhir_module_cards_total", topic="not-evaluated") == 1
    assert value(found, "fhir_module_evaluation_failures_total") == engine.evaluation_failures.total >= 1
    assert value(found, "fhir_module_fetches_total", server=dead, outcome="failed") >= 1
    assert value(found, "fhir_module_fetches_in_flight", server=dead) == 0
    assert value(found, "fhir_module_validations_total", outcome="ok") >= 1
    assert value(found, "fhir_module_feedback_items_total", service=sid, outcome="overridden") == 2
    assert value(found, "fhir_module_feedback_resent_items_total", service=sid) == 1
    assert value(found, "fhir_module_auth_failures_total") == 1
    for secret in (dose["context"]["patientId"], card["uuid"], dose["hookInstance"]):
        assert secret not in response.text  # no patient or request identifiers in labels


def test_metrics_render_escapes_labels_and_sums_snapshots(tmp_path: Path) -> None:
    first, second = Metrics(tmp_path), Metrics(tmp_path)
    first.inc("fhir_module_auth_failures_total", {}, 2)
    first.inc("fhir_module_cards_total", {"service": 's"1', "topic": "a\\b", "indicator": "info"})
    first.flush()
    # `second` stands for another live worker: it reads the first one's snapshot under another pid.
    (tmp_path / f"{os.getpid()}.json").rename(tmp_path / f"{os.getppid()}.json")
    second.inc("fhir_module_auth_failures_total", {}, 3)
    found = samples(second.render())
    assert found["fhir_module_auth_failures_total"] == 5
    assert found['fhir_module_cards_total{indicator="info",service="s\\"1",topic="a\\\\b"}'] == 1
    (tmp_path / "999999999.json").write_text("{}")  # a worker that is gone
    second.render()
    assert not (tmp_path / "999999999.json").exists()


def test_a_scrape_while_the_snapshot_is_flushed_does_not_fail(tmp_path: Path) -> None:
    # CI once answered /metrics with a 500: the one-second flush (event loop) and the scrape (thread
    # pool) wrote the same temporary file and one renamed the other's away (FileNotFoundError).
    metrics = Metrics(tmp_path)
    metrics.inc("fhir_module_auth_failures_total", {}, 1)
    failures: list[BaseException] = []
    stop = threading.Event()

    def hammer(work: Any) -> None:
        while not stop.is_set():
            try:
                work()
            except BaseException as exc:  # noqa: BLE001 - the test reports it
                failures.append(exc)
                stop.set()

    threads = [threading.Thread(target=hammer, args=(work,)) for work in (metrics.flush, metrics.render) * 2]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    stop.set()
    for thread in threads:
        thread.join()
    assert failures == []
    assert samples(metrics.render())["fhir_module_auth_failures_total"] == 1
    assert [path.name for path in tmp_path.iterdir()] == [f"{os.getpid()}.json"]  # no temporary left


def test_workers_answer_the_sum_and_log_json_with_the_hook_instance(tmp_path: Path, discovery: dict[str, Any]) -> None:
    port = free_port()
    env = {**os.environ, "FHIR_MODULE_DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite3'}",
           "FHIR_MODULE_LOG_FORMAT": "json"}
    env.pop("FHIR_MODULE_TRUSTED_CLIENTS", None)
    command = [sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(port), "--workers", "2"]
    log = tmp_path / "serve.log"
    sid, body = scenario_request("pub-max-dose", discovery)
    hook_instance = str(uuid.uuid4())
    body["hookInstance"] = hook_instance
    with running_service(command, env, port, log) as base:
        for _ in range(20):  # a connection each: the two workers share them
            assert post(f"{base}/cds-services/{sid}?key=s3cr3t", body).status_code == 200

        def total() -> float:
            return value(samples(httpx.get(f"{base}/metrics").text), "fhir_module_requests_total",
                         route="/cds-services/{service_id}")

        # Each worker writes its snapshot every second: polled, a loaded machine may be late.
        deadline = time.monotonic() + 15
        while total() != 20.0 and time.monotonic() < deadline:
            time.sleep(0.25)
        totals = [total() for _ in range(4)]  # whichever worker answers the scrape
    assert totals == [20.0] * 4, totals
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    calls = [line for line in lines if line.get("logger") == "uvicorn.access" and line.get("hookInstance") == hook_instance]
    assert len(calls) == 20, lines[-5:]
    assert all(c["service"] == sid and c["cards"] == 1 and c["status"] == 200 and c["method"] == "POST" for c in calls)
    assert all(c["path"] == f"/cds-services/{sid}?key=[REDACTED]" for c in calls)
    assert {line["level"] for line in lines} <= {"INFO", "WARNING"} and all("time" in line for line in lines)
    assert "s3cr3t" not in log.read_text()


def test_label_values_are_bounded_whatever_clients_send(base_url: str) -> None:
    """Any token is a valid HTTP method: made-up ones (once each a series of its own, for good, no
    token needed) are counted as "other"; unknown paths as "unmatched"."""
    port = int(base_url.rsplit(":", 1)[1])
    for number in range(5):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(f"M{number}X /no/such/place{number} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := sock.recv(65536):  # Connection: close: read to the end
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 4")
    text = httpx.get(f"{base_url}/metrics").text
    assert "M0X" not in text and "place0" not in text
    found = samples(text)
    assert value(found, "fhir_module_requests_total", method="other") == 5
    assert value(found, "fhir_module_requests_total", route="unmatched") >= 5


def test_cards_are_counted_by_service_topic_and_indicator() -> None:
    metrics = Metrics()
    response = {"cards": [{"source": {"topic": {"code": "a"}}, "indicator": "info"}, {"indicator": "warning"},
                          {"source": {"topic": {"code": "a"}}, "indicator": "info"}]}
    metrics.count_cards("s", response)
    metrics.count_cards("t", response)
    lines = metrics.render().splitlines()
    for service in ("s", "t"):
        assert f'fhir_module_cards_total{{indicator="info",service="{service}",topic="a"}} 2' in lines
        assert f'fhir_module_cards_total{{indicator="warning",service="{service}",topic="none"}} 1' in lines
