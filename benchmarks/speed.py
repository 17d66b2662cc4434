"""The speed report of issue 10: the service against a bare FastAPI endpoint in the same run.

    python benchmarks/speed.py [--seconds 5] [--quick] [--one-off]

Prints Markdown tables:
- throughput and latency (p50/p99) of order-select, relevant (2 cards, ~20 resources) and unrelated
  (no order kind matches), at 1, 16 and 64 connections, the service and a bare FastAPI endpoint that
  parses the same body; both pinned to one core, wrk (Debian's package) on the other;
- with `serve --workers 2` on both cores, when the CLI offers it;
- the scaling series: 10, 100, 1,000 and 5,000 prefetched resources, one connection;
- cold start (process start to the first answered order-select; with the self-test `serve` runs
  first, and without it), export R4+R5, validation of the exported bundle, with the package's
  bytecode compiled first as an installed package has it (`--one-off`: only these);
then each target of the issue with its figure. Shared machines are noisy: compare ratios and
medians of one run, and run it when no test suite competes for the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
import workloads  # noqa: E402

CONNECTIONS = (1, 16, 64)
SCALING = (10, 100, 1000, 5000)


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else platform.processor()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()}, {platform.system()} "
            f"{platform.release()}; load average {load:.2f} at start; {date.today().isoformat()}")


def write_body(folder: str, name: str, request: dict) -> str:
    path = Path(folder, f"{name}.json")
    path.write_bytes(json.dumps(request).encode())
    return str(path)


def cards_of(base: str, body_file: str) -> list[str]:
    response = httpx.post(f"{base}/cds-services/{workloads.SERVICE}", content=Path(body_file).read_bytes(),
                          headers={"content-type": "application/json"}, timeout=60)
    response.raise_for_status()
    return [card["source"]["topic"]["code"] for card in response.json()["cards"]]


def throughput(folder: str, bodies: dict[str, str], seconds: float, *, workers: int = 1) -> list[dict]:
    """Each workload at each connection count, bare then service, each warmed up first."""
    server_pin, load_pin = harness.cores() if workers == 1 else ([], [])
    script = str(Path(folder, "post.lua"))
    rows = []
    env = harness.service_env(folder)
    bare = harness.bare_command() + (["--workers", str(workers)] if workers > 1 else [])
    with harness.running(harness.service_command(workers), pin=server_pin, env=env) as service, \
            harness.running(bare, pin=server_pin, cwd=folder) as bare_url:
        for workload, body in bodies.items():
            print(f"  {workload}: cards {cards_of(service, body)}", file=sys.stderr)
            for connections in CONNECTIONS if workers == 1 else (16, 64):
                measured = {}
                for name, url in (("bare", f"{bare_url}/cds-services/{workloads.SERVICE}"),
                                  ("service", f"{service}/cds-services/{workloads.SERVICE}")):
                    harness.wrk(url, body, script, connections=connections, seconds=1, pin=load_pin)  # warm-up
                    measured[name] = harness.wrk(url, body, script, connections=connections, seconds=seconds,
                                                 pin=load_pin)
                rows.append({"workload": workload, "connections": connections, "workers": workers, **measured})
    return rows


def scaling(folder: str, seconds: float) -> list[dict]:
    server_pin, load_pin = harness.cores()
    script = str(Path(folder, "post.lua"))
    rows = []
    with harness.running(harness.service_command(), pin=server_pin, env=harness.service_env(folder)) as service:
        for resources in SCALING:
            request = workloads.scaled(resources)
            body = write_body(folder, f"scaled-{resources}", request)
            cards = cards_of(service, body)
            harness.wrk(f"{service}/cds-services/{workloads.SERVICE}", body, script, connections=1, seconds=1,
                        pin=load_pin)
            load = harness.wrk(f"{service}/cds-services/{workloads.SERVICE}", body, script, connections=1,
                               seconds=seconds, pin=load_pin)
            rows.append({"resources": workloads.prefetched(request), "kib": Path(body).stat().st_size / 1024,
                         "cards": cards, "load": load})
    return rows


def cold_start(folder: str, runs: int, options: tuple[str, ...] = ()) -> list[float]:
    """Seconds from process start to the first answered order-select (not just a health check)."""
    server_pin, _ = harness.cores()
    body = workloads.relevant()
    times = []
    # One client for every try: a new httpx client per try sets up TLS (~25 ms) each time, which
    # would be counted as the service's start.
    with httpx.Client(timeout=5) as client:
        for _ in range(runs):
            port = harness.free_port()
            started = time.perf_counter()
            process = subprocess.Popen([*server_pin, *harness.service_command(), *options, "--port", str(port)],
                                       env=harness.service_env(folder), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                while True:
                    if process.poll() is not None or time.perf_counter() - started > 60:
                        raise SystemExit("the service did not start")
                    try:
                        response = client.post(f"http://127.0.0.1:{port}/cds-services/{workloads.SERVICE}", json=body)
                        if response.status_code == 200:
                            break
                    except httpx.HTTPError:
                        time.sleep(0.005)
                times.append(time.perf_counter() - started)
            finally:
                process.terminate()
                process.wait(timeout=20)
    return times


def timed_command(args: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(args, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - started)
    return times


# Runs the same commands inside one process after a first, cold run: their cost without Python's
# start and imports (what a server or a build tool calling the functions pays).
_WARM = textwrap.dedent("""
    import contextlib, io, json, sys, time
    from fhir_module.cli import main
    r4, r5, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
    def timed(*argvs):
        times = []
        for attempt in range(runs + 1):
            started = time.perf_counter()
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                for argv in argvs:
                    main(list(argv))
            if attempt:
                times.append(time.perf_counter() - started)
        return times
    export = timed(["export", "--fhir-version", "R4", "-o", r4], ["export", "--fhir-version", "R5", "-o", r5])
    validate = timed(["validate", r4])
    print(json.dumps({"export": export, "validate": validate}))
""")


def compile_bytecode() -> str:
    """Compile the package's bytecode before timing one-off commands, as installing it does (pip
    compiles at install). Where PYTHONDONTWRITEBYTECODE is set and the package is a source checkout,
    every process would otherwise compile all of its sources again at start."""
    import compileall
    import fhir_module

    folder = Path(fhir_module.__file__).parent
    compileall.compile_dir(str(folder), quiet=1)
    return f"bytecode of {folder.name} compiled before timing (as pip does at install)"


def export_and_validate(folder: str, runs: int) -> dict[str, list[float]]:
    """Export R4 then R5 and validate the R4 bundle: the commands' wall time (process start
    included), and the same work in a warm process."""
    cli = [sys.executable, "-m", "fhir_module.cli"]
    r4, r5 = str(Path(folder, "r4.json")), str(Path(folder, "r5.json"))
    both = timed_command([*cli, "export", "--fhir-version", "R4", "--fhir-version", "R5",
                          "-o", str(Path(folder, "both-{version}.json"))], runs)
    exports = [a + b for a, b in zip(timed_command([*cli, "export", "--fhir-version", "R4", "-o", r4], runs),
                                     timed_command([*cli, "export", "--fhir-version", "R5", "-o", r5], runs))]
    validation = timed_command([*cli, "validate", r4], runs)
    warm = json.loads(subprocess.run([sys.executable, "-c", _WARM, r4, r5, str(runs)], check=True,
                                     capture_output=True, text=True).stdout)
    return {EXPORT_BOTH: both, EXPORT_TWICE: exports, "validate the R4 bundle (command)": validation,
            "export R4+R5 (warm process)": warm["export"], "validate the R4 bundle (warm process)": warm["validate"]}


# One command writes both versions (one process, the modules read once); two commands, one per
# version, are shown beside it: each pays the process start and the reading again.
EXPORT_BOTH = "export R4+R5 (one command: --fhir-version R4 --fhir-version R5)"
EXPORT_TWICE = "export R4+R5 (two commands, one per version; not a target)"


def ms(value: float) -> str:
    return f"{value:,.1f}" if value < 100 else f"{value:,.0f}"


COLD_START = "cold start (process start to first answered order-select, self-test included)"
SKIP_SELF_TEST = "--skip-self-test"


def print_report(rows: list[dict], scaled: list[dict], cold: dict[str, list[float]], commands: dict[str, list[float]],
                 seconds: float, bytecode: str) -> None:
    print(f"\nMachine: {machine()}")
    if rows:
        print_load_tables(rows, scaled, seconds)
    print(f"\n| one-off ({bytecode}) | median s | runs (s) |")
    print("|---|---|---|")
    for label, times in {**cold, **commands}.items():
        print(f"| {label} | {statistics.median(times):.3f} | {', '.join(f'{t:.3f}' for t in times)} |")


def print_load_tables(rows: list[dict], scaled: list[dict], seconds: float) -> None:
    print(f"wrk {seconds:g} s per cell after a 1 s warm-up; one uvicorn worker pinned to one core, wrk on the other.\n")
    print("| workload | connections | service req/s | service p50 / p99 ms | bare req/s | bare p50 / p99 ms | ratio |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        service, bare = row["service"], row["bare"]
        label = row["workload"] + (f", {row['workers']} workers, unpinned" if row["workers"] > 1 else "")
        print(f"| {label} | {row['connections']} | {service.requests_per_second:,.0f} | {ms(service.p50)} / {ms(service.p99)} | "
              f"{bare.requests_per_second:,.0f} | {ms(bare.p50)} / {ms(bare.p99)} | "
              f"{service.requests_per_second / bare.requests_per_second:.2f} |")
    print("\n| prefetched resources | body KiB | p50 ms | p99 ms | req/s (1 connection) | cards |")
    print("|---|---|---|---|---|---|")
    for row in scaled:
        load = row["load"]
        print(f"| {row['resources']:,} | {row['kib']:,.0f} | {ms(load.p50)} | {ms(load.p99)} | "
              f"{load.requests_per_second:,.0f} | {', '.join(row['cards'])} |")


def targets(rows: list[dict], scaled: list[dict], cold: dict[str, list[float]],
            commands: dict[str, list[float]]) -> list[tuple[str, str, bool]]:
    def row(workload: str, connections: int) -> dict:
        return next(r for r in rows if r["workload"] == workload and r["connections"] == connections and r["workers"] == 1)

    ratio = lambda r: r["service"].requests_per_second / r["bare"].requests_per_second  # noqa: E731
    by_size = {r["resources"]: r["load"].p50 for r in scaled}
    found = []
    if rows:  # not measured with --one-off
        relevant, unrelated = row("relevant", 16), row("unrelated", 16)
        found += [
            ("relevant order-select, 16 connections: >= 0.5x bare throughput", f"{ratio(relevant):.2f}x", ratio(relevant) >= 0.5),
            ("relevant order-select, 16 connections: p99 <= 25 ms", f"{ms(relevant['service'].p99)} ms", relevant["service"].p99 <= 25),
            ("unrelated order, 16 connections: >= 0.8x bare throughput", f"{ratio(unrelated):.2f}x", ratio(unrelated) >= 0.8),
        ]
    if 1000 in by_size and 5000 in by_size:
        found += [
            ("1,000 prefetched resources: p50 <= 20 ms", f"{ms(by_size[1000])} ms", by_size[1000] <= 20),
            ("5,000 prefetched resources: p50 <= 100 ms", f"{ms(by_size[5000])} ms", by_size[5000] <= 100),
            ("5,000 vs 1,000: linear or better (<= 5x)", f"{by_size[5000] / by_size[1000]:.1f}x",
             by_size[5000] / by_size[1000] <= 5.0),
        ]
    median = {label: statistics.median(times) for label, times in commands.items()}
    started = statistics.median(cold[COLD_START])
    found += [("cold start (self-test included) <= 1 s", f"{started:.3f} s", started <= 1.0)]
    found += [(f"{label} <= 1 s", f"{value:.3f} s", value <= 1.0) for label, value in median.items()
              if label != EXPORT_TWICE]
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="wrk duration of each measured cell (default: 5)")
    parser.add_argument("--runs", type=int, default=5, help="runs of each one-off timing (default: 5)")
    parser.add_argument("--quick", action="store_true", help="2 s cells, 3 runs: a smoke run, not figures to quote")
    parser.add_argument("--workers", type=int, default=2, help="also measure `serve --workers N` on all cores (0: skip)")
    parser.add_argument("--one-off", action="store_true",
                        help="only the one-off times (cold start, export, validation) and their targets")
    options = parser.parse_args()
    seconds, runs = (2.0, 3) if options.quick else (options.seconds, options.runs)
    rows: list[dict] = []
    scaled: list[dict] = []
    with harness.bare_folder() as folder:
        if not options.one_off:
            harness.require_wrk()
            bodies = {"relevant": write_body(folder, "relevant", workloads.relevant()),
                      "unrelated": write_body(folder, "unrelated", workloads.unrelated())}
            print("throughput, one worker", file=sys.stderr)
            rows = throughput(folder, bodies, seconds)
            if options.workers > 1 and "--workers" in subprocess.run(
                    [*harness.service_command(), "--help"], capture_output=True, text=True).stdout:
                print(f"throughput, {options.workers} workers", file=sys.stderr)
                rows += throughput(folder, bodies, seconds, workers=options.workers)
            print("scaling series", file=sys.stderr)
            scaled = scaling(folder, seconds)
        print("cold start, export, validation", file=sys.stderr)
        bytecode = compile_bytecode()
        # `serve` proves the modules on their own cases before it listens (the self-test); the
        # start without it is what the target measured when there was none.
        cold = {COLD_START: cold_start(folder, runs),
                f"cold start with {SKIP_SELF_TEST}": cold_start(folder, runs, (SKIP_SELF_TEST,))}
        commands = export_and_validate(folder, runs)
    print_report(rows, scaled, cold, commands, seconds, bytecode)
    found = targets(rows, scaled, cold, commands)
    print("\n| target | measured | met |")
    print("|---|---|---|")
    for label, value, met in found:
        print(f"| {label} | {value} | {'yes' if met else 'NO'} |")
    return 0 if all(met for _, _, met in found) else 1


if __name__ == "__main__":
    sys.exit(main())
