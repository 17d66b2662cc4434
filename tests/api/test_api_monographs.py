"""The monograph the cards cite is served by the service, and card links open it."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any, Callable

import httpx

from fhir_module.engine import Engine
from fhir_module.knowledge import builtin_module_dir
from tests.support.scenarios import build_request, load_scenario

SCENARIO = builtin_module_dir("levomilnacipran") / "cases" / "public" / "pub-renal-moderate.json"


def _request() -> dict[str, Any]:
    """A renal dose-limit request, dated from today."""
    scenario = load_scenario(SCENARIO, date.today())
    service = next(s for s in Engine.default().services()
                   if s["hook"] == scenario.hook and s["id"].startswith("levomilnacipran-"))
    return build_request(scenario, service, fhir_server=None, prefetch=True)


def test_card_links_open_the_quoted_section(live: Callable[..., Any]) -> None:
    request = _request()
    with live() as base:
        response = httpx.post(f"{base}/cds-services/levomilnacipran-order-select", json=request, timeout=30)
        assert response.status_code == 200, response.text
        cards = response.json()["cards"]
        assert cards
        for card in cards:
            urls = [card["source"]["url"], *(link["url"] for link in card["links"])]
            for url in urls:
                assert url.startswith(f"{base}/monographs/levomilnacipran#"), url
                page = httpx.get(url, timeout=10)
                assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
                assert f'id="{url.split("#", 1)[1]}"' in page.text
        assert "Moderate impairment (creatinine clearance 30–59 mL/min)" in httpx.get(
            f"{base}/monographs/levomilnacipran", timeout=10).text


def test_links_use_the_public_base_url_when_set(live: Callable[..., Any]) -> None:
    request = _request()
    with live(public_base_url="https://cds.example.org/levo") as base:
        cards = httpx.post(f"{base}/cds-services/levomilnacipran-order-select", json=request, timeout=30).json()["cards"]
    assert cards and all(c["links"][0]["url"].startswith("https://cds.example.org/levo/monographs/levomilnacipran#")
                         for c in cards)


def test_an_unknown_monograph_is_a_404_outcome(base_url: str) -> None:
    response = httpx.get(f"{base_url}/monographs/aspirin", timeout=10)
    assert response.status_code == 404
    assert response.json()["resourceType"] == "OperationOutcome"
