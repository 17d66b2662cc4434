"""The benchmark workloads give the cards the speed report says they give (the knowledge may change
under them), and the wrk output reader understands wrk's report."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import harness  # noqa: E402
import workloads  # noqa: E402

from fhir_module.engine.service import Engine  # noqa: E402


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.default()


def topics(engine: Engine, request: dict) -> list[str]:
    return [card["source"]["topic"]["code"] for card in engine.evaluate(workloads.SERVICE, request)["cards"]]


def test_relevant_order_gives_two_cards_on_about_twenty_resources(engine):
    request = workloads.relevant()
    assert 15 <= workloads.prefetched(request) <= 25
    assert topics(engine, request) == ["serotonergic", "starting-dose"]


def test_unrelated_order_gives_no_card(engine):
    assert topics(engine, workloads.unrelated()) == []


@pytest.mark.parametrize("resources", [10, 300])
def test_scaled_chart_has_its_size_and_the_same_cards(engine, resources):
    request = workloads.scaled(resources)
    assert workloads.prefetched(request) == resources
    assert topics(engine, request) == ["serotonergic", "starting-dose"]


WRK_OUTPUT = """Running 5s test @ http://127.0.0.1:1/cds-services/x
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     4.01ms    1.20ms  20.00ms   90.00%
    Req/Sec     4.00k   100.00     4.20k    70.00%
  Latency Distribution
     50%    3.62ms
     75%    4.10ms
     90%    5.00ms
     99%    1.20s
  20000 requests in 5.00s, 2.00MB read
Requests/sec:   3999.50
Transfer/sec:    400.00KB
"""


def test_wrk_report_is_read(monkeypatch):
    class Done:
        stdout = WRK_OUTPUT

    monkeypatch.setattr(harness.subprocess, "run", lambda *args, **kwargs: Done())
    load = harness.wrk("http://127.0.0.1:1/x", "body.json", "post.lua", connections=16, seconds=5, pin=[])
    assert (load.requests_per_second, load.p50, load.p99, load.requests) == (3999.5, 3.62, 1200.0, 20000)


def test_wrk_failures_stop_the_benchmark(monkeypatch):
    class Failed:
        stdout = WRK_OUTPUT + "  Non-2xx or 3xx responses: 12\n"

    monkeypatch.setattr(harness.subprocess, "run", lambda *args, **kwargs: Failed())
    with pytest.raises(SystemExit, match="failed requests"):
        harness.wrk("http://127.0.0.1:1/x", "body.json", "post.lua", connections=16, seconds=5, pin=[])


def test_the_bare_endpoint_runs_under_the_services_uvicorn_settings():
    # The floor the service is compared to pays what uvicorn pays for the service: an access line
    # per request, no proxy headers, no Server header, the same keep-alive. It once ran with
    # --log-level warning and uvicorn's defaults, so the service alone paid for its access line.
    from uvicorn.main import main as uvicorn_command

    from fhir_module.api import server

    command = harness.bare_command()
    assert command[:3] == [sys.executable, "-m", "uvicorn"]
    options = uvicorn_command.make_context("uvicorn", command[3:]).params
    assert options["log_level"] == "info" and options["access_log"]
    assert options["proxy_headers"] is False and options["server_header"] is False
    assert options["timeout_keep_alive"] == server.KEEP_ALIVE_SECONDS
