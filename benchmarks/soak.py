"""Soak: the service under 64 connections for 60 s, three ways (issue 11), with its memory watched.

1. normal: order-select with the chart prefetched (benchmarks/workloads.py `relevant`), all 64
   connections. Every answer must be 200.
2. slow server: two FHIR servers are allowed; one answers after 30 s. Half the connections send
   requests without prefetch that name the slow server (each must end in a prompt 412, never a
   5xx or a hang), the other half the normal request (200). Meanwhile, once a second, a request
   that must be fetched from the healthy server (200; its time is printed: it waits its turn on
   a core the normal half keeps busy) and a readiness check (which must say the slow server's
   lane is busy or failing, and be 200 "degraded"). After the load, the healthy probe again: 200
   within its normal time (median under 3x the same probe's before the load, + 50 ms).
3. validate: the normal load, plus 4 clients posting 0.6 MB bundles (3,000 entries) to
   /fhir/$validate back to back (200, or 503 + Retry-After when the validation workers are busy).
   Every order-select must be 200; its latency is compared with the normal run's.

Memory: the service's resident set (main process, and its $validate workers apart) is sampled
every 2 s; "flat" means it grew less than 20 MiB over the second half of the run (after warm-up).

    flock /work/coord/suite.lock python benchmarks/soak.py [--seconds 60] [--connections 64] [--only normal|slow|validate]

Needs wrk (apt-get install -y wrk). Machines here are shared: compare within one run.

Latest figures (2 cores shared with the other sessions; main 832a13f, 2026-12-03 08:31-08:35 UTC, load
average 0.9 at the start, 2.8 at the end): result normal ok, slow server ok, validate ok.
- normal: 25,782 order-selects, 429/s, p50 137 ms, p99 275 ms, all 200, 0 errors; memory 93 -> 94 MiB, flat.
- slow server: 3,997 calls needing it, all 412 (p50 192 ms: a full lane answers at once; p99 10.2 s, the
  fetch timeout), 0 errors; 27,942 prefetched calls beside them, all 200 (p50 65 ms); healthy-server probe
  56 ms before, 764 ms p50 during (all 200, behind the busy core), 55 ms after; readiness 200 "degraded"
  (lane busy, then failing) throughout; no slot left after. Memory 94 -> 96 MiB, flat (was 118 -> 210 MiB:
  each request's chart was held in a reference cycle until a rare full collection, fixed in f332e9c).
- validate: 27,126 order-selects beside 4 $validate clients, all 200 (p50 x0.98, p99 x0.80 of normal);
  $validate 7 x 200 and 2 x 503 ("no validation worker became free within 30 s"); memory 93 -> 97 MiB,
  flat; $validate workers 119 MiB at most.
- An earlier run on 42c8da5 with a full test suite beside it (load 6) had one $validate 413: the
  lower-priority worker, starved of CPU, passed the 30 s wall-clock limit on a bundle it validates in
  1.5 s alone (the limit cannot tell a costly content from a starved worker).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import workloads  # noqa: E402

SLOW_SECONDS = 30.0
FLAT_MIB = 20.0  # growth over the second half of a run that still counts as flat
FETCH_TIMEOUT = 10.0

# POSTs the body of $SOAK_BODY and counts every status (wrk's own summary only says "non-2xx").
WRK_SCRIPT = textwrap.dedent("""
    wrk.method = "POST"
    wrk.headers["Content-Type"] = "application/json"
    local file = io.open(os.getenv("SOAK_BODY"), "rb")
    wrk.body = file:read("*a")
    file:close()
    local threads = {}
    function setup(thread) table.insert(threads, thread) end
    function init(args) statuses = {} end
    function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
    function done(summary, latency, requests)
      local totals = {}
      for _, thread in ipairs(threads) do
        for status, count in pairs(thread:get("statuses")) do totals[status] = (totals[status] or 0) + count end
      end
      for status, count in pairs(totals) do io.write(string.format("STATUS %d %d\\n", status, count)) end
    end
""")


# -- a FHIR server answering the workload's chart ---------------------------------------------------


class ChartServer:
    """Answers reads and searches from the `relevant` workload's prefetch, after `delay` seconds."""

    KEYS = {"MedicationRequest": "medicationRequests", "MedicationStatement": "medicationStatements",
            "Condition": "conditions", "AllergyIntolerance": "allergyIntolerances", "Observation": "observations"}

    def __init__(self, delay: float = 0.0) -> None:
        prefetch = workloads.relevant()["prefetch"]
        owner = self
        self.delay = delay

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                if owner.delay:
                    time.sleep(owner.delay)
                path = urlsplit(self.path).path.removeprefix("/fhir/")
                kind = path.split("/")[0]
                if kind == "Patient":
                    status, body = 200, prefetch["patient"]
                elif kind in owner.KEYS and "/" not in path:
                    status, body = 200, prefetch[owner.KEYS[kind]]
                else:
                    status, body = 404, {"resourceType": "OperationOutcome",
                                         "issue": [{"severity": "error", "code": "not-found"}]}
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/fhir+json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the service gave up waiting: nobody to answer
                    pass

            def log_message(self, *args: Any) -> None:
                return

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/fhir"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


# -- the service, its memory, wrk --------------------------------------------------------------------


@contextmanager
def service(folder: str, pin: list[str], **env: str) -> Iterator[tuple[str, int]]:
    with harness.running_process(harness.service_command(), pin=pin, env={**harness.service_env(folder), **env},
                                 timeout=60) as (base, process):
        yield base, process.pid


def _rss_mib(pid: int) -> float:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    match = re.search(r"^VmRSS:\s+(\d+) kB", text, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else 0.0


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


@dataclass
class Memory:
    """Resident set samples (MiB) of the service process and of its $validate workers."""

    main: list[float] = field(default_factory=list)
    workers: list[float] = field(default_factory=list)

    def sample(self, pid: int) -> None:
        self.main.append(_rss_mib(pid))
        self.workers.append(sum(_rss_mib(child) for child in _children(pid)))

    def summary(self) -> str:
        if len(self.main) < 4:
            return "too few samples"
        half = len(self.main) // 2
        growth = max(self.main[half:]) - self.main[half]
        flat = growth < FLAT_MIB
        text = (f"service {self.main[0]:.0f} -> {self.main[-1]:.0f} MiB (max {max(self.main):.0f}; "
                f"second half +{growth:.1f} MiB: {'flat' if flat else 'GROWING'})")
        if any(self.workers):
            text += f"; $validate workers {max(self.workers):.0f} MiB at most"
        return text


@contextmanager
def watching(pid: int) -> Iterator[Memory]:
    memory, stop = Memory(), threading.Event()

    def loop() -> None:
        while not stop.is_set():
            memory.sample(pid)
            stop.wait(2.0)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield memory
    finally:
        stop.set()
        thread.join()
        memory.sample(pid)


@dataclass
class Run:
    """One wrk run: requests, throughput, latency (ms), statuses and socket errors."""

    requests: int
    rate: float
    p50: float
    p99: float
    statuses: dict[int, int]
    socket_errors: dict[str, int]

    def unexpected(self, allowed: set[int]) -> int:
        return sum(n for status, n in self.statuses.items() if status not in allowed) + sum(self.socket_errors.values())

    def line(self, name: str, allowed: set[int]) -> str:
        statuses = ", ".join(f"{status}: {count}" for status, count in sorted(self.statuses.items()))
        errors = self.unexpected(allowed)
        return (f"  {name:34s} {self.requests:7d} requests {self.rate:7.1f}/s  p50 {self.p50:8.1f} ms  "
                f"p99 {self.p99:8.1f} ms  [{statuses}]  errors: {errors}"
                + (f" (socket {self.socket_errors})" if any(self.socket_errors.values()) else ""))


def body_file(folder: str, body: dict[str, Any]) -> Path:
    """A file of its own for one load's body. Named after the URL and connections once, the slow
    server's load (same URL, same connections) sent the normal load's body: that scenario never
    reached the slow server and its figures said nothing."""
    handle, name = tempfile.mkstemp(prefix="body-", suffix=".json", dir=folder)
    with os.fdopen(handle, "w") as file:
        json.dump(body, file)
    return Path(name)


def wrk(url: str, body: dict[str, Any], folder: str, *, connections: int, seconds: float, pin: list[str],
        timeout: float = 30.0) -> Run:
    body_path = body_file(folder, body)
    script = Path(folder, "soak.lua")
    script.write_text(WRK_SCRIPT)
    command = [*pin, "wrk", "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency",
               "--timeout", f"{timeout:g}s", "-s", str(script), url]
    output = subprocess.run(command, env=dict(os.environ, SOAK_BODY=str(body_path)), capture_output=True, text=True,
                            timeout=seconds + timeout + 60, check=True).stdout
    return parse_wrk(output)


def parse_wrk(output: str) -> Run:
    """wrk's report, with the STATUS lines of WRK_SCRIPT."""
    percentiles = harness.latency_percentiles(output)
    sockets = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output)
    return Run(
        requests=int(re.search(r"(\d+) requests in", output).group(1)),
        rate=float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        p50=percentiles.get("50", 0.0),
        p99=percentiles.get("99", 0.0),
        statuses={int(s): int(n) for s, n in re.findall(r"^STATUS (\d+) (\d+)$", output, re.MULTILINE)},
        socket_errors=dict(zip(("connect", "read", "write", "timeout"), map(int, sockets.groups()))) if sockets else {},
    )


# -- scenarios ---------------------------------------------------------------------------------------


def normal(folder: str, options: argparse.Namespace) -> tuple[bool, Run]:
    server_pin, load_pin = harness.cores()
    with service(folder, server_pin) as (base, pid), watching(pid) as memory:
        run = wrk(f"{base}/cds-services/{workloads.SERVICE}", workloads.relevant(), folder,
                  connections=options.connections, seconds=options.seconds, pin=load_pin)
    print("normal: order-select, chart prefetched")
    print(run.line("order-select", {200}))
    print(f"  memory: {memory.summary()}")
    return run.unexpected({200}) == 0 and "GROWING" not in memory.summary(), run


def _probe(client: httpx.Client, url: str, body: dict[str, Any]) -> tuple[int, float]:
    started = time.monotonic()
    status = client.post(url, json=body).status_code
    return status, (time.monotonic() - started) * 1000


def slow_server(folder: str, options: argparse.Namespace) -> bool:
    healthy, slow = ChartServer(), ChartServer(delay=SLOW_SECONDS)
    server_pin, load_pin = harness.cores()
    relevant = workloads.relevant()
    bare = {key: value for key, value in relevant.items() if key != "prefetch"}
    to_slow, to_healthy = {**bare, "fhirServer": slow.base}, {**bare, "fhirServer": healthy.base}
    env = {"FHIR_MODULE_ALLOWED_FHIR_SERVERS": f"{healthy.base},{slow.base}",
           "FHIR_MODULE_FETCH_TIMEOUT": str(FETCH_TIMEOUT)}
    probes: list[tuple[int, float]] = []
    readiness: list[tuple[int, str, str]] = []
    try:
        with service(folder, server_pin, **env) as (base, pid), watching(pid) as memory:
            call = f"{base}/cds-services/{workloads.SERVICE}"
            with httpx.Client(timeout=60) as client:
                before = [_probe(client, call, to_healthy)[1] for _ in range(10)]
                stop = threading.Event()

                def probe_loop() -> None:
                    while not stop.wait(1.0):
                        probes.append(_probe(client, call, to_healthy))
                        ready = client.get(f"{base}/readyz")
                        lane = ready.json()["checks"]["fhirServers"].get(slow.base, {}).get("status", "?")
                        readiness.append((ready.status_code, ready.json()["status"], lane))

                prober = threading.Thread(target=probe_loop, daemon=True)
                runs: dict[str, Run] = {}
                half = max(1, options.connections // 2)

                def load(name: str, body: dict[str, Any], timeout: float) -> None:
                    runs[name] = wrk(call, body, folder, connections=half, seconds=options.seconds, pin=load_pin,
                                     timeout=timeout)

                loads = [threading.Thread(target=load, args=("slow", to_slow, 3 * FETCH_TIMEOUT + 10)),
                         threading.Thread(target=load, args=("normal", relevant, 30.0))]
                prober.start()
                for thread in loads:
                    thread.start()
                for thread in loads:
                    thread.join()
                stop.set()
                prober.join()
                time.sleep(FETCH_TIMEOUT)  # the last slow fetches time out
                after = [_probe(client, call, to_healthy) for _ in range(10)]
                final = client.get(f"{base}/readyz").json()["checks"]["fhirServers"][slow.base]
    finally:
        healthy.stop()
        slow.stop()
    normal_ms = statistics.median(before)
    during_ms = [ms for status, ms in probes]
    print(f"slow server: {half} connections need the slow server (answers after {SLOW_SECONDS:g} s), "
          f"{half} send the normal request; fetch timeout {FETCH_TIMEOUT:g} s")
    print(runs["slow"].line("needs the slow server (412 due)", {412}))
    print(runs["normal"].line("order-select, prefetched", {200}))
    print(f"  healthy-server fetch, once a second: before p50 {normal_ms:.1f} ms; during "
          f"{len(probes)} probes, statuses {sorted({s for s, _ in probes})}, p50 {statistics.median(during_ms):.1f} ms, "
          f"max {max(during_ms):.1f} ms; after: statuses {sorted({s for s, _ in after})}, "
          f"p50 {statistics.median([ms for _, ms in after]):.1f} ms")
    states = sorted({(status, overall, lane) for status, overall, lane in readiness})
    print(f"  /readyz during: {states}; slow lane after: inFlight {final['inFlight']}, waiting {final['waiting']}")
    print(f"  memory: {memory.summary()}")
    healthy_ok = all(s == 200 for s, _ in probes + after) and statistics.median([ms for _, ms in after]) < 3 * normal_ms + 50
    ready_ok = all(status == 200 and overall == "degraded" and lane in ("busy", "failing")
                   for status, overall, lane in readiness[2:])
    slow_ok = runs["slow"].requests > 0 and runs["slow"].unexpected({412}) == 0  # answered, each a 412
    return (slow_ok and runs["normal"].unexpected({200}) == 0 and healthy_ok and ready_ok
            and final["inFlight"] == 0 and final["waiting"] == 0 and "GROWING" not in memory.summary())


def validate_in_parallel(folder: str, options: argparse.Namespace, baseline: Run | None) -> bool:
    server_pin, load_pin = harness.cores()
    bundle = json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [
        {"fullUrl": f"urn:uuid:00000000-0000-0000-0000-{i:012d}",
         "resource": {"resourceType": "Patient", "id": f"p{i}", "name": [{"family": "Soak", "given": ["Test"]}],
                      "birthDate": "1970-01-01"}} for i in range(3000)]}).encode()
    statuses: dict[int, int] = {}
    said: dict[int, str] = {}  # the first diagnostics of each status other than 200
    with service(folder, server_pin) as (base, pid), watching(pid) as memory:
        stop = threading.Event()

        def validator() -> None:
            with httpx.Client(timeout=120) as client:
                while not stop.is_set():
                    answer = client.post(f"{base}/fhir/$validate", content=bundle,
                                         headers={"Content-Type": "application/fhir+json"})
                    status = answer.status_code
                    statuses[status] = statuses.get(status, 0) + 1
                    if status != 200:
                        said.setdefault(status, answer.json()["issue"][0].get("diagnostics", ""))
                    if status == 503:
                        stop.wait(0.5)

        clients = [threading.Thread(target=validator, daemon=True) for _ in range(4)]
        for thread in clients:
            thread.start()
        run = wrk(f"{base}/cds-services/{workloads.SERVICE}", workloads.relevant(), folder,
                  connections=options.connections, seconds=options.seconds, pin=load_pin)
        stop.set()
        for thread in clients:
            thread.join()
    print(f"validate: the normal load plus 4 clients posting {len(bundle) / 1e6:.1f} MB bundles to $validate")
    print(run.line("order-select", {200}))
    if baseline is not None:
        print(f"  order-select vs the normal run: p50 x{run.p50 / baseline.p50:.2f}, p99 x{run.p99 / baseline.p99:.2f}, "
              f"throughput x{run.rate / baseline.rate:.2f}")
    print(f"  $validate statuses: {dict(sorted(statuses.items()))}"
          + "".join(f"; {status}: {text!r}" for status, text in sorted(said.items())))
    print(f"  memory: {memory.summary()}")
    return run.unexpected({200}) == 0 and set(statuses) <= {200, 503} and "GROWING" not in memory.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--only", choices=["normal", "slow", "validate"])
    options = parser.parse_args()
    harness.require_wrk()
    results: dict[str, bool] = {}
    baseline = None
    with tempfile.TemporaryDirectory(prefix="soak-") as folder:
        print(f"soak: {options.connections} connections, {options.seconds:g} s each, {os.cpu_count()} cores", flush=True)
        if options.only in (None, "normal", "validate"):
            results["normal"], baseline = normal(folder, options)
        if options.only in (None, "slow"):
            results["slow server"] = slow_server(folder, options)
        if options.only in (None, "validate"):
            results["validate"] = validate_in_parallel(folder, options, baseline)
    print("result: " + ", ".join(f"{name} {'ok' if ok else 'FAILED'}" for name, ok in results.items()))
    sys.exit(0 if all(results.values()) else 1)


if __name__ == "__main__":
    main()
