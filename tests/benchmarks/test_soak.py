"""The soak's parts (benchmarks/soak.py): its FHIR server answers the workload's chart, wrk's report
and the status lines of its script are read, and memory is judged flat or growing."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import soak  # noqa: E402
import workloads  # noqa: E402

WRK_OUTPUT = """Running 1m test @ http://127.0.0.1:1/cds-services/x
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    10.01s     3.00ms  10.02s    90.00%
  Latency Distribution
     50%   10.01s\x20
     75%   10.01s\x20
     90%   10.02s\x20
     99%   10.02s\x20
  190 requests in 1.00m, 190.00KB read
  Socket errors: connect 0, read 0, write 0, timeout 2
  Non-2xx or 3xx responses: 188
Requests/sec:      3.16
Transfer/sec:      3.16KB
STATUS 412 187
STATUS 500 1
"""


def test_wrk_report_and_statuses_are_read() -> None:
    """Times in seconds as wrk prints them, a space after the unit (once read as no percentile at
    all: the slow-server load's p99 was reported as 0.0 ms)."""
    run = soak.parse_wrk(WRK_OUTPUT)
    assert (run.requests, run.rate, run.p50, run.p99) == (190, 3.16, 10010.0, 10020.0)
    assert run.statuses == {412: 187, 500: 1} and run.socket_errors["timeout"] == 2
    assert run.unexpected({412}) == 3  # the 500 and the two timeouts
    assert "errors: 3" in run.line("x", {412})


def test_the_chart_server_answers_the_workload() -> None:
    server = soak.ChartServer()
    try:
        prefetch = workloads.relevant()["prefetch"]
        assert httpx.get(f"{server.base}/Patient/{workloads.PATIENT}").json() == prefetch["patient"]
        searched = httpx.get(f"{server.base}/Observation?patient={workloads.PATIENT}&code=x").json()
        assert searched == prefetch["observations"]
        assert httpx.get(f"{server.base}/Medication/m1").status_code == 404
    finally:
        server.stop()


def test_memory_is_judged_on_the_second_half() -> None:
    flat = soak.Memory(main=[100, 180, 181, 182, 181, 183], workers=[0] * 6)
    assert "flat" in flat.summary() and "GROWING" not in flat.summary()
    growing = soak.Memory(main=[100, 150, 160, 190, 220, 260], workers=[0, 0, 130, 131, 0, 0])
    assert "GROWING" in growing.summary() and "$validate workers 131 MiB" in growing.summary()


def test_each_load_sends_its_own_body(tmp_path: Path) -> None:
    """Two loads on one URL with as many connections each (the slow-server scenario) once shared a
    body file: both sent the last one written."""
    slow, normal = soak.body_file(str(tmp_path), {"load": "slow"}), soak.body_file(str(tmp_path), {"load": "normal"})
    assert slow != normal
    assert (slow.read_text(), normal.read_text()) == ('{"load": "slow"}', '{"load": "normal"}')
