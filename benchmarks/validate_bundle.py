"""Benchmark: time to validate the exported knowledge bundle (all layers, profiles included).

    python benchmarks/validate_bundle.py [--runs 20] [FILE]

Uses examples/levomilnacipran-r4-collection.json when present (else a generated bundle of the same
kinds of resources), validates it once to warm the caches (schema compilation, FHIRPath parsing), then
prints the median and 95th percentile of the following runs. The target is under 2 s per bundle.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import time
from pathlib import Path

from fhir_module.validation import has_errors, validate

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "levomilnacipran-r4-collection.json"
CORPUS_VALID = ROOT / "tests" / "validation" / "corpus" / "valid"


def generated_bundle(copies: int = 20) -> dict:
    """A collection bundle made of the validation corpus's valid artifacts, repeated under new ids."""
    base = json.loads((CORPUS_VALID / "bundle-collection.json").read_text(encoding="utf-8"))
    bundle = {"resourceType": "Bundle", "id": "generated", "type": "collection", "entry": []}
    for n in range(copies):
        for entry in base["entry"]:
            resource = copy.deepcopy(entry["resource"])
            if resource["resourceType"] != "CodeSystem" or n == 0:
                resource["id"] = f"{resource['id']}-{n}"
                bundle["entry"].append({"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{len(bundle['entry']):012d}", "resource": resource})
    return bundle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", help="bundle to validate (default: the exported example)")
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    if args.file:
        data, label = Path(args.file).read_bytes(), args.file
    elif EXAMPLE.exists():
        data, label = EXAMPLE.read_bytes(), str(EXAMPLE.relative_to(ROOT))
    else:
        data, label = json.dumps(generated_bundle()).encode(), "generated bundle"

    started = time.perf_counter()
    outcome = validate(data)
    first = time.perf_counter() - started
    times = []
    for _ in range(args.runs):
        started = time.perf_counter()
        validate(data)
        times.append(time.perf_counter() - started)
    times.sort()
    p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
    entries = len(json.loads(data).get("entry", []))
    print(f"{label}: {len(data) / 1024:.0f} KiB, {entries} entries, errors: {has_errors(outcome)}")
    print(f"first run (cold caches): {first:.3f} s")
    print(f"{args.runs} runs: median {statistics.median(times):.3f} s, p95 {p95:.3f} s (target < 2 s)")


if __name__ == "__main__":
    main()
