"""`fhir-module cards`: the service's engine, offline, on a request file."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "requests"


def _cards(path: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_module.cli", "cards", str(path), *extra],
                          capture_output=True, text=True, timeout=120)


def test_the_example_request_gives_the_renal_dose_card() -> None:
    # The example was written on 2026-11-26; replayed as of that day, its results stay in date.
    result = _cards(EXAMPLES / "order-select-renal-moderate.json", "--today", "2026-11-26")
    assert result.returncode == 0, result.stderr
    cards = json.loads(result.stdout)["cards"]
    assert [c["source"]["topic"]["code"] for c in cards] == ["dose-limit"]
    assert "80 mg/day maximum" in cards[0]["summary"]


def test_a_request_without_its_prefetch_is_refused_not_judged(tmp_path: Path) -> None:
    request = json.loads((EXAMPLES / "order-select-renal-moderate.json").read_text())
    del request["prefetch"]["observations"]
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request))
    result = _cards(path)
    assert result.returncode == 1
    assert "lacks observations" in result.stderr and result.stdout == ""


def test_an_unreadable_request_is_a_usage_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    result = _cards(path)
    assert result.returncode == 2 and "cannot read" in result.stderr
