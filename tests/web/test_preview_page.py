"""The card preview page at `/`, end to end in headless Chromium: pick a module and an example, fill
the form, paste a request; the cards shown must be the services' own (same summaries, indicators,
suggestions), shown as an EHR shows them, with nothing fetched from outside the service.
Screenshots of the examples are kept in test-artefacts/screenshots/."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_module.config import TrustedClient
from tests.web.conftest import screenshot

REPO = Path(__file__).resolve().parents[2]
STATIC = REPO / "fhir_module" / "api" / "static" / "preview"
MODULE = "levomilnacipran"


def service_cards(url: str, chart: dict[str, Any]) -> list[dict[str, Any]]:
    """The cards every service of the chart's hook answers, called directly (what the page must show)."""
    built = httpx.post(f"{url}/preview/requests", json=chart, timeout=30).json()["requests"]
    cards = []
    for item in built:
        answer = httpx.post(f"{url}/cds-services/{item['service']}", json=item["request"], timeout=30)
        assert answer.status_code == 200, answer.text
        cards += answer.json()["cards"]
    return cards


def example_chart(url: str, case_id: str) -> dict[str, Any]:
    chart = httpx.get(f"{url}/preview/examples/{MODULE}/{case_id}", timeout=30).json()
    return {key: chart[key] for key in ("hook", "patientId", "record", "draftOrders", "selections")}


def shown_cards(page: Any) -> list[dict[str, str]]:
    return page.eval_on_selector_all("#cards article.card", """cards => cards.map(card => ({
        indicator: card.dataset.indicator,
        summary: card.querySelector('.summary').textContent,
        suggestions: [...card.querySelectorAll('.suggestions button')].map(b => b.textContent),
        reasons: [...card.querySelectorAll('.override option')].slice(1).map(o => o.textContent),
    }))""")


def wait_for_answer(page: Any) -> None:
    page.wait_for_function("document.querySelector('#status').textContent.includes(' from ')", timeout=30_000)


def show_example(page: Any, case_id: str) -> None:
    page.select_option("#example", case_id)
    page.click("#show-example")
    wait_for_answer(page)


def open_page(page: Any, url: str) -> None:
    """The page, showing the module the tests use (other served modules are listed too)."""
    page.goto(f"{url}/")
    page.wait_for_function("document.querySelectorAll('#example option').length > 0", timeout=30_000)
    page.select_option("#module", MODULE)


@pytest.mark.parametrize("case_id", ["pub-allergy", "pub-renal-moderate", "pub-new-start", "pub-serotonergic-bleeding"])
def test_an_example_shows_the_services_cards_as_an_ehr_does(live: Any, offline_page: Any, case_id: str) -> None:
    page = offline_page.page
    with live() as url:
        open_page(page, url)
        show_example(page, case_id)
        chart = example_chart(url, case_id)
        expected = service_cards(url, chart)
        shown = shown_cards(page)
        assert expected, "the example was chosen for its cards"
        order = {"critical": 0, "warning": 1, "info": 2}
        expected = sorted(expected, key=lambda card: order[card["indicator"]])  # most urgent first
        assert [(c["indicator"], c["summary"]) for c in shown] == [(c["indicator"], c["summary"]) for c in expected]
        for card, served in zip(shown, expected):
            assert card["suggestions"] == [s["label"] for s in served.get("suggestions") or []]
            assert card["reasons"] == [r["display"] for r in served.get("overrideReasons") or []]
        # The indicator's colour is the card's side (critical red, warning amber, info blue).
        colours = page.eval_on_selector_all("#cards article.card", "cards => cards.map(c => getComputedStyle(c).borderLeftColor)")
        palette = {"critical": "rgb(198, 40, 40)", "warning": "rgb(217, 119, 6)", "info": "rgb(31, 111, 235)"}
        assert colours == [palette[c["indicator"]] for c in shown]
        # The detail is rendered from Markdown: its **bold** labels are <strong>, no asterisk is left.
        first = page.locator("#cards article.card").first
        assert first.locator(".detail strong").count() > 0
        assert "**" not in first.locator(".detail").inner_text()
        assert first.locator(".source a").get_attribute("href").startswith(f"{url}/monographs/")
        # The request the page built is there to read (and to edit and send again).
        request = json.loads(page.input_value("#request"))
        assert request["hook"] == chart["hook"] and request["context"]["draftOrders"]["entry"][0]["resource"] == chart["draftOrders"][0]
        screenshot(page, f"preview-{case_id}")
    assert offline_page.outside == [] and offline_page.errors == []


def test_a_suggestion_shows_the_change_as_a_diff_of_the_draft_order(live: Any, offline_page: Any) -> None:
    page = offline_page.page
    with live() as url:
        open_page(page, url)
        show_example(page, "pub-renal-moderate")
        card = page.locator("#cards article.card").first
        card.locator(".suggestions button").first.click()
        removed = card.locator(".diff .del").all_inner_texts()
        added = card.locator(".diff .add").all_inner_texts()
        assert removed and added
        # What changes and only that: the dose, its text and the product (the served suggestion's).
        chart = example_chart(url, "pub-renal-moderate")
        suggested = service_cards(url, chart)[0]["suggestions"][0]["actions"][0]["resource"]
        draft_dose = chart["draftOrders"][0]["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"]
        new_dose = suggested["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"]
        assert any(f'"value": {draft_dose}' in line for line in removed), removed
        assert any(f'"value": {new_dose:g}' in line for line in added), added
        assert any(suggested["medicationCodeableConcept"]["coding"][0]["code"] in line for line in added), added
        assert len(removed) == len(added) <= 6, (removed, added)
        assert card.locator(".diff .same").count() > 20
        screenshot(page, "preview-suggestion-diff")
        # A delete suggestion shows the whole order going.
        show_example(page, "pub-allergy")
        card = page.locator("#cards article.card").first
        card.locator(".suggestions button").first.click()
        assert card.locator(".diff .add").count() == 0 and card.locator(".diff .del").count() > 5
        # Dismissing asks for one of the card's override reasons.
        dismiss = card.locator(".override button")
        assert dismiss.is_disabled()
        card.locator(".override select").select_option(index=1)
        dismiss.click()
        assert "Dismissed: " in card.locator(".dismissal").inner_text()
    assert offline_page.outside == [] and offline_page.errors == []


def test_an_example_without_cards_says_so(live: Any, offline_page: Any) -> None:
    page = offline_page.page
    with live() as url:
        open_page(page, url)
        show_example(page, "pub-clean")
        assert page.locator("#cards article.card").count() == 0
        assert "No cards" in page.inner_text("#cards")
        screenshot(page, "preview-pub-clean")
    assert offline_page.outside == [] and offline_page.errors == []


def test_every_served_module_shows_its_examples_cards(live: Any, offline_page: Any) -> None:
    """Whatever modules are served (one, or duloxetine beside levomilnacipran), each is listed and
    its examples answer on the page what the services answer."""
    page = offline_page.page
    order = {"critical": 0, "warning": 1, "info": 2}
    with live() as url:
        modules = httpx.get(f"{url}/preview/modules").json()["modules"]
        open_page(page, url)
        for module in modules:
            page.select_option("#module", module["name"])
            with_cards = [e for e in module["examples"] if e["expectedCards"]]
            assert with_cards, f"{module['name']} brings no example with cards"
            example = with_cards[0]["id"]
            show_example(page, example)
            chart = httpx.get(f"{url}/preview/examples/{module['name']}/{example}").json()
            expected = sorted(service_cards(url, chart), key=lambda card: order[card["indicator"]])
            assert expected and [c["summary"] for c in shown_cards(page)] == [c["summary"] for c in expected]
            screenshot(page, f"preview-module-{module['name']}")
    assert offline_page.outside == [] and offline_page.errors == []


def test_the_module_picker_lists_what_discovery_serves(live: Any, offline_page: Any) -> None:
    page = offline_page.page
    with live() as url:
        services = {s["id"] for s in httpx.get(f"{url}/cds-services").json()["services"]}
        modules = httpx.get(f"{url}/preview/modules").json()["modules"]
        assert {s["id"] for m in modules for s in m["services"]} == services
        open_page(page, url)
        labels = page.eval_on_selector_all("#module option", "options => options.map(o => o.textContent)")
        assert labels == [f"{m['title']} {m['version']}".strip() for m in modules]


def test_the_form_builds_a_chart_from_the_knowledges_choices(live: Any, offline_page: Any, engine: Any) -> None:
    page = offline_page.page
    with live() as url:
        module = next(m for m in httpx.get(f"{url}/preview/modules").json()["modules"] if m["name"] == MODULE)
        open_page(page, url)
        page.click("button[data-tab=form]")
        # Products and value-set concepts are the served knowledge's, nothing else.
        products = page.eval_on_selector_all("#f-product option", "options => options.map(o => o.textContent)")
        assert [p.split(" (")[0] for p in products] == [p["display"] for p in module["products"]]
        page.click("button[data-add=condition]")
        conditions = page.eval_on_selector_all("#f-conditions select[name=concept] option", "options => options.map(o => o.value)")
        assert conditions == [f"{c['system']}|{c['code']}" for g in module["valueSets"]["condition"] for c in g["concepts"]]
        # A patient with a condition a rule refuses the drug for: pick it from the choices by its
        # value set's title (the knowledge's words), the draft order at the product's strength.
        group = next(g for g in module["valueSets"]["condition"] if "stroke" in g["title"].lower())
        concept = group["concepts"][0]
        page.select_option("#f-conditions select[name=concept]", f"{concept['system']}|{concept['code']}")
        page.fill("#f-age", "52")
        page.fill("#f-weight", "70")
        page.click("#show-form")
        wait_for_answer(page)
        request = json.loads(page.input_value("#request"))
        chart = {"hook": request["hook"], "patientId": request["context"]["patientId"],
                 "record": [e["resource"] for key in request["prefetch"] for e in (request["prefetch"][key] or {}).get("entry", [])]
                 + ([request["prefetch"]["patient"]] if request["prefetch"].get("patient") else []),
                 "draftOrders": [e["resource"] for e in request["context"]["draftOrders"]["entry"]],
                 "selections": request["context"].get("selections", [])}
        assert any(r["resourceType"] == "Condition" and r["code"]["coding"][0]["code"] == concept["code"] for r in chart["record"])
        shown = shown_cards(page)
        assert [c["summary"] for c in shown] == [c["summary"] for c in sorted(service_cards(url, chart),
                                                                             key=lambda c: {"critical": 0, "warning": 1, "info": 2}[c["indicator"]])]
        assert any(c["indicator"] == "critical" for c in shown)
        screenshot(page, "preview-form-stroke")
    assert offline_page.outside == [] and offline_page.errors == []


def test_a_pasted_request_is_sent_as_is(live: Any, offline_page: Any) -> None:
    page = offline_page.page
    pasted = json.loads((REPO / "examples" / "requests" / "order-select-renal-moderate.json").read_text())
    with live() as url:
        open_page(page, url)
        page.click("button[data-tab=request]")
        page.fill("#request", json.dumps(pasted))
        page.click("#send-request")
        wait_for_answer(page)
        served = httpx.post(f"{url}/cds-services/{MODULE}-order-select", json=pasted, timeout=30).json()["cards"]
        assert [c["summary"] for c in shown_cards(page)] == [c["summary"] for c in served]
        # Not JSON: the page says so and calls nothing.
        page.fill("#request", "{not json")
        page.click("#send-request")
        page.wait_for_function("document.querySelector('#status').classList.contains('error')")
        assert "not JSON" in page.inner_text("#status")
    assert offline_page.outside == [] and offline_page.errors == []


def test_a_card_cannot_inject_markup_into_the_page(live: Any, offline_page: Any) -> None:
    page = offline_page.page
    with live() as url:
        open_page(page, url)
        html = page.evaluate("""Markdown.render('**Rule:** <img src=x onerror=alert(1)> [x](javascript:alert(1)) [m](/monographs/a#b)\\nnext line\\n\\n- one\\n- two')""")
    assert "<img" not in html and "javascript:" not in html
    assert "<strong>Rule:</strong>" in html and '<a href="/monographs/a#b"' in html
    assert "next line" in html and "<br>" in html and "<ul><li>one</li><li>two</li></ul>" in html


def test_the_page_names_no_drug_and_no_code_of_its_own(engine: Any) -> None:
    """Its choices come from the served knowledge: no drug, product or value-set concept in its code."""
    page_code = "\n".join(path.read_text(encoding="utf-8") for path in STATIC.iterdir()).lower()
    names = set()
    for resource in engine.kb.resources:
        if resource.get("resourceType") in ("MedicationKnowledge", "ValueSet"):
            for include in (resource.get("compose") or {}).get("include") or []:
                for concept in include.get("concept") or []:
                    names.add(str(concept.get("code")))
            for coding in (resource.get("code") or {}).get("coding") or []:
                names.add(str(coding.get("display", "")).lower())
    names |= {m.lower() for m in (MODULE, "duloxetine", "milnacipran", "fetzima", "cymbalta")}
    names.discard("29463-7")  # body weight: FHIR's vital-signs code, the weight field's (no drug's)
    found = sorted(n for n in names if n and re.search(rf"(?<![\w-]){re.escape(n)}(?![\w-])", page_code))
    assert found == []


def test_with_trusted_clients_the_page_is_off_unless_enabled(live: Any) -> None:
    clients = (TrustedClient(iss="https://ehr.example.org", jwks={"keys": []}),)
    with live(trusted_clients=clients) as url:
        for path in ("/", "/preview/modules", "/static/preview/preview.js"):
            answer = httpx.get(f"{url}{path}")
            assert answer.status_code == 404, path
        assert "FHIR_MODULE_PREVIEW_PAGE=on" in httpx.get(f"{url}/").text
    with live(trusted_clients=clients, preview_page=True) as url:
        assert httpx.get(f"{url}/").status_code == 200
        assert httpx.get(f"{url}/static/preview/preview.js").status_code == 200
        # Its data, like the CDS calls, needs a client's JWT.
        assert httpx.get(f"{url}/preview/modules").status_code == 401
        assert httpx.post(f"{url}/preview/requests", json={}).status_code == 401
    with live(preview_page=False) as url:
        assert httpx.get(f"{url}/").status_code == 404


def test_bad_charts_are_a_400_naming_the_problem(live: Any) -> None:
    with live() as url:
        for body, said in [({"hook": "patient-view"}, "hook"), ([], "JSON object"),
                           ({"hook": "order-select", "patientId": "p", "record": [{"id": "x"}], "draftOrders": []}, "resourceType")]:
            answer = httpx.post(f"{url}/preview/requests", json=body)
            assert answer.status_code == 400, body
            assert said in answer.json()["issue"][0]["diagnostics"], answer.text
        assert httpx.get(f"{url}/preview/examples/{MODULE}/no-such-case").status_code == 404
        assert httpx.get(f"{url}/preview/examples/no-such-module/pub-allergy").status_code == 404


def test_the_page_setting_is_on_off_or_auto() -> None:
    from fhir_module.config import ConfigError, load_settings

    assert load_settings({}).preview_enabled  # no trusted clients: on (the service answers loopback only)
    assert load_settings({"FHIR_MODULE_PREVIEW_PAGE": "off"}).preview_enabled is False
    assert load_settings({"FHIR_MODULE_PREVIEW_PAGE": "on"}).preview_page is True
    assert load_settings({"FHIR_MODULE_PREVIEW_PAGE": "auto"}).preview_page is None
    with pytest.raises(ConfigError, match="FHIR_MODULE_PREVIEW_PAGE"):
        load_settings({"FHIR_MODULE_PREVIEW_PAGE": "sometimes"})


def test_enabled_with_trusted_clients_the_page_calls_with_the_clients_tokens(live: Any, offline_page: Any,
                                                                             jwt_client: Any, tmp_path: Path) -> None:
    """Real signed JWTs, one per call, each addressed to its endpoint: the page sends each call the
    token for it and uses it up (a replayed token would be refused)."""
    from fhir_module.config import load_trusted_clients
    from tests.support.jwt_clients import write_trusted_clients

    clients = load_trusted_clients(str(write_trusted_clients(tmp_path / "clients.json", [jwt_client])))
    page = offline_page.page
    with live(trusted_clients=clients, preview_page=True) as url:
        page.goto(f"{url}/")
        page.wait_for_function("document.querySelector('#status').classList.contains('error')", timeout=30_000)
        assert "HTTP 401" in page.inner_text("#status") and "Client tokens" in page.inner_text("#status")
        hook_services = [s["id"] for s in httpx.get(f"{url}/cds-services", headers=jwt_client.authorization(
            f"{url}/cds-services")).json()["services"] if s["hook"] == "order-select"]
        paths = ["/preview/modules", f"/preview/examples/{MODULE}/pub-allergy", "/preview/requests",
                 *[f"/cds-services/{service}" for service in hook_services]]
        page.fill("#token", "\n".join(jwt_client.token(f"{url}{path}") for path in reversed(paths)))
        page.click("#reload")
        page.wait_for_function("document.querySelectorAll('#example option').length > 0", timeout=30_000)
        page.select_option("#module", MODULE)
        show_example(page, "pub-allergy")
        assert [c["indicator"] for c in shown_cards(page)] == ["critical"]
        assert page.input_value("#token") == ""  # every token used, once
    assert offline_page.outside == [] and offline_page.errors == []
