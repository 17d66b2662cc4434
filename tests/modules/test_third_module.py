"""A third module, made at test time outside the package, beside the built-in ones (issue 8).

The module is the worked example of the module author's guide (docs/modules.md): its monograph, its
knowledge file and one case are read from the guide's file blocks into a temporary folder, so the
guide cannot drift from what works. The test adds cases of its own (codes read from the terminology
tables, never written from memory), then, as a module author would:

- builds it with the command line (`build`, `export --module`) and validates the bundle;
- runs `fhir-module serve` with every built-in module and it (the service's self-test at start runs
  every module's cases through every service of their hook), and gets its cards over HTTP, from a
  prefetch and from the chart on a real FHIR server;
- loads every module's exported transaction bundle into the FHIR test server: no id is shared, no
  canonical URL names two resources, and each module's artifacts read back as that module wrote them.
"""

from __future__ import annotations

import copy
import csv
import json
import os
import re
import subprocess
import sys
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_module.knowledge import builtin_module_dirs
from tests.api.helpers import free_port, running_service
from tests.support.fhir_server import FhirServer
from tests.support.scenarios import Scenario, build_request, compare_cards, load_scenario

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "modules.md"
THIRD = "milnacipran"
BUILT_IN = builtin_module_dirs()
TODAY = date.today()
FHIR_JSON = {"Content-Type": "application/fhir+json", "Accept": "application/fhir+json"}


def guide_files() -> dict[str, str]:
    """The worked example's files: fenced blocks of the guide whose info string names a file."""
    blocks = re.findall(r'^```\w+ title="([^"]+)"\n(.*?)^```$', GUIDE.read_text("utf-8"), re.MULTILINE | re.DOTALL)
    return {name: text for name, text in blocks}


def _terminology_rows(name: str) -> list[dict[str, str]]:
    return list(csv.DictReader(resources.files("fhir_module.data.terminology").joinpath(name)
                               .read_text("utf-8").splitlines()))


def _code(group: str) -> dict[str, str]:
    """The first single code of a codes.csv group, as a Coding."""
    row = next(r for r in _terminology_rows("codes.csv") if r["group"] == group and len(r["code"].split()) == 1)
    return {"system": row["system"], "code": row["code"], "display": row["display"]}


def _rxnorm(drug_class: str, tty: str) -> dict[str, str]:
    row = next(r for r in _terminology_rows("rxnorm.csv") if r["class"] == drug_class and r["tty"] == tty)
    return {"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": row["rxcui"], "display": row["display"]}


def _more_cases(guide_case: dict[str, Any]) -> list[dict[str, Any]]:
    """The test's own cases for the other rules, edited from the guide's case."""

    def case(case_id: str, description: str, mg_per_dose: float, record: list[dict[str, Any]],
             cards: list[dict[str, Any]]) -> dict[str, Any]:
        text = json.dumps(guide_case).replace("mil-max-dose", case_id)
        made = json.loads(text)
        made["description"] = description
        order = made["draftOrders"][0]
        order["dosageInstruction"][0]["doseAndRate"][0]["doseQuantity"]["value"] = mg_per_dose
        order["dosageInstruction"][0]["text"] = f"{mg_per_dose:g} mg twice daily"
        made["record"] += [{**resource, "subject": {"reference": f"Patient/{case_id}"}} for resource in record]
        made["expect"] = {"cards": cards, "noOtherCards": True}
        return made

    crcl = _code("renal_crcl")
    esrd = _code("esrd")
    maoi = _rxnorm("maoi", "SCD")
    observation = {"resourceType": "Observation", "id": "crcl", "status": "final", "code": {"coding": [crcl]},
                   "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                             "code": "laboratory"}]}],
                   "effectiveDateTime": "${today-5d}",
                   "valueQuantity": {"value": 20, "unit": "mL/min", "system": "http://unitsofmeasure.org", "code": "mL/min"}}
    condition = {"resourceType": "Condition", "id": "esrd", "code": {"coding": [esrd]}, "recordedDate": "${today-100d}",
                 "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                                "code": "active"}]},
                 "verificationStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                                    "code": "confirmed"}]}}
    statement = {"resourceType": "MedicationStatement", "id": "maoi", "status": "active",
                 "medicationCodeableConcept": {"coding": [maoi], "text": maoi["display"]},
                 "effectivePeriod": {"start": "${today-60d}"}}
    draft = lambda case_id: f"MedicationRequest/{case_id}-draft"  # noqa: E731
    return [
        case("mil-usual-dose", "50 mg twice daily with nothing to say: no card", 50, [], []),
        case("mil-renal-severe", "50 mg twice daily with a creatinine clearance of 20 mL/min: 50 mg/day at most", 50,
             [observation], [{"topic": "dose-limit", "indicator": "warning", "summaryIncludes": ["severe renal impairment"],
                              "suggestion": {"action": "update", "resourceId": draft("mil-renal-severe"), "dailyDoseMg": 50}}]),
        case("mil-renal-severe-at-limit", "25 mg twice daily with a creatinine clearance of 20 mL/min: at the limit, no card",
             25, [observation], []),
        case("mil-esrd", "end-stage renal disease on the problem list: not recommended", 50, [condition],
             [{"topic": "esrd", "indicator": "warning",
               "suggestion": {"action": "delete", "resourceId": draft("mil-esrd")}}]),
        case("mil-maoi-current", "an MAOI taken now: the washout card", 50, [statement],
             [{"topic": "maoi-washout", "indicator": "critical",
               "suggestion": {"action": "delete", "resourceId": draft("mil-maoi-current")}}]),
    ]


@pytest.fixture(scope="module")
def third_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The guide's milnacipran module, written to a temporary folder, with the test's extra cases."""
    root = tmp_path_factory.mktemp("third-module")
    files = guide_files()
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    folder = root / THIRD
    guide_case = json.loads(files[f"{THIRD}/cases/mil-max-dose.json"])
    for case in _more_cases(guide_case):
        (folder / "cases" / f"{case['id']}.json").write_text(json.dumps(case, indent=2), encoding="utf-8")
    return folder


def _cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fhir_module.cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def _cases(folder: Path) -> list[Scenario]:
    return [load_scenario(path, TODAY) for path in sorted((folder / "cases").rglob("*.json"))]


def test_the_guide_holds_the_whole_example() -> None:
    assert set(guide_files()) == {f"{THIRD}/milnacipran.md", f"{THIRD}/knowledge.yaml", f"{THIRD}/cases/mil-max-dose.json"}
    assert not str(GUIDE).startswith(str(REPO / "fhir_module"))
    assert THIRD not in {folder.name for folder in BUILT_IN}  # a third module, not a built-in one


def test_it_builds_validates_and_passes_its_own_cases(third_module: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "milnacipran-r4.json"
    build = _cli("build", str(third_module), "--type", "transaction", "-o", str(bundle))
    assert build.returncode == 0, build.stderr
    exported = tmp_path / "exported.json"
    export = _cli("export", "--module", str(third_module), "--type", "transaction", "-o", str(exported))
    assert export.returncode == 0, export.stderr
    assert exported.read_bytes() == bundle.read_bytes()
    # Its own artifacts are scoped by its id; the transaction also carries the project's profiles
    # (StructureDefinitions), the same in every module's bundle.
    ids = [e["resource"]["id"] for e in json.loads(bundle.read_text("utf-8"))["entry"]
           if e["resource"]["resourceType"] != "StructureDefinition"]
    assert ids and all(resource_id == THIRD or resource_id.startswith(f"{THIRD}-") for resource_id in ids), ids

    validate = _cli("validate", str(bundle))
    assert validate.returncode == 0 and "OK (0 error(s), 0 warning(s)" in validate.stdout, validate.stdout[-3000:]

    test = _cli("test", "--module", str(third_module))
    assert test.returncode == 0, test.stdout[-3000:] + test.stderr[-2000:]
    assert f"{len(_cases(third_module))} case(s): {len(_cases(third_module))} passed, 0 failed" in test.stdout


def _serve_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "FHIR_MODULE_DATABASE_URL": f"sqlite:///{tmp_path / 'feedback.sqlite3'}", **extra}
    for name in ("FHIR_MODULE_TRUSTED_CLIENTS", "FHIR_MODULE_MODULES", "FHIR_MODULE_BUNDLE", "FHIR_MODULE_CONFIG"):
        env.pop(name, None)
    return env


def _cards_from_every_service(base: str, services: list[dict[str, Any]], scenario: Scenario,
                              fhir_server: str | None) -> dict[str, list[dict[str, Any]]]:
    """Cards by service id: the request goes to every service of the case's hook, as an EHR sends it."""
    answers = {}
    for entry in (s for s in services if s["hook"] == scenario.hook):
        request = build_request(scenario, entry, fhir_server=fhir_server, prefetch=fhir_server is None, today=TODAY)
        response = httpx.post(f"{base}/cds-services/{entry['id']}", json=request, timeout=60)
        assert response.status_code == 200, (entry["id"], response.text[:2000])
        answers[entry["id"]] = response.json()["cards"]
    return answers


def test_served_beside_the_built_in_modules_it_answers_with_its_own_cards(
        third_module: Path, tmp_path: Path, fhir_server: FhirServer) -> None:
    port = free_port()
    modules = [*BUILT_IN, third_module]
    command = [sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(port),
               *(arg for folder in modules for arg in ("--module", str(folder)))]
    env = _serve_env(tmp_path, FHIR_MODULE_ALLOWED_FHIR_SERVERS=fhir_server.base_url)
    with running_service(command, env, port, tmp_path / "serve.log") as base:
        services = httpx.get(f"{base}/cds-services", timeout=10).json()["services"]
        assert sorted(s["id"] for s in services) == sorted(
            f"{folder.name}-{hook}" for folder in modules for hook in ("order-select", "order-sign"))

        scenarios = _cases(third_module)
        assert len(scenarios) >= 6
        for scenario in scenarios:
            for fetched in (False, True):
                if fetched:
                    fhir_server.reset()
                    fhir_server.load(scenario.record)
                answers = _cards_from_every_service(base, services, scenario, fhir_server.base_url if fetched else None)
                together = {"cards": [card for cards in answers.values() for card in cards]}
                how = "fetched from the FHIR server" if fetched else "prefetched"
                assert compare_cards(scenario.expect, together) == [], (scenario.id, how, together)
                for service_id, cards in answers.items():
                    # Only its own module answers, and its cards name their module, version and topics.
                    assert not cards or service_id.startswith(f"{THIRD}-"), (scenario.id, service_id, cards)
                    for card in cards:
                        assert card["source"]["label"] == "Milnacipran monograph (Milnacipran knowledge module 0.1.0)"
                        assert card["source"]["topic"]["system"] == f"http://fhir-module.org/fhir/CodeSystem/{THIRD}-rule-topic"
                        assert {r["code"] for r in card.get("overrideReasons", [])} <= {"benefit-outweighs-risk", "data-incorrect"}

        # The built-in modules still answer their own cases beside it (one each, through every service).
        for folder in BUILT_IN:
            scenario = next(s for s in _cases(folder) if s.expect.get("cards"))
            answers = _cards_from_every_service(base, services, scenario, None)
            together = {"cards": [card for cards in answers.values() for card in cards]}
            assert compare_cards(scenario.expect, together) == [], (folder.name, scenario.id, together)
            assert not answers[f"{THIRD}-{scenario.hook}"]
    log = (tmp_path / "serve.log").read_text("utf-8", errors="replace")
    assert "Traceback" not in log


def _transaction(folder: Path, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / f"{folder.name}-transaction.json"
    proc = _cli("export", "--module", str(folder), "--type", "transaction", "-o", str(path))
    assert proc.returncode == 0, proc.stderr
    return json.loads(path.read_text("utf-8"))


def _keys(bundle: dict[str, Any]) -> set[tuple[str, str]]:
    return {(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]}


def _load(server: FhirServer, bundle: dict[str, Any]) -> list[str]:
    """Statuses of the bundle's entries, PUT in transactions of at most 50 (Medplum's router takes no
    more updates in one transaction: a limit of that server, not of FHIR)."""
    statuses = []
    for start in range(0, len(bundle["entry"]), 50):
        response = httpx.post(server.base_url, json={**bundle, "entry": bundle["entry"][start:start + 50]},
                              headers=FHIR_JSON, timeout=120)
        assert response.status_code == 200, response.text[:3000]
        statuses += [str(entry["response"]["status"]).split()[0] for entry in response.json()["entry"]]
    return statuses


def _content(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource as its module wrote it: the server adds meta.versionId and meta.lastUpdated."""
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated", "author", "project", "compartment")}
    return {**{k: v for k, v in resource.items() if k != "meta"}, **({"meta": meta} if meta else {})}


def test_every_module_s_bundle_loads_into_one_fhir_server_without_collision(
        third_module: Path, tmp_path: Path, fhir_server: FhirServer) -> None:
    modules = [*BUILT_IN, third_module]
    bundles = {folder.name: _transaction(folder, tmp_path) for folder in modules}
    assert len(bundles) == len(modules) >= 2

    # An id two modules both use is the same resource byte for byte (the project's profiles), never
    # two contents; likewise a canonical URL with its version names one content only.
    contents: dict[tuple[str, str], str] = {}
    canonicals: dict[str, str] = {}
    for module, bundle in bundles.items():
        for entry in bundle["entry"]:
            resource = entry["resource"]
            key, text = (resource["resourceType"], resource["id"]), json.dumps(resource, sort_keys=True)
            assert contents.setdefault(key, text) == text, f"{module}: {key} differs from another module's"
            if "url" in resource:
                canonical = f"{resource['url']}|{resource.get('version', '')}"
                assert canonicals.setdefault(canonical, text) == text, f"{module}: {canonical} names two resources"
    shared = {key for key in contents if sum(key in _keys(bundle) for bundle in bundles.values()) > 1}
    assert {resource_type for resource_type, _ in shared} <= {"StructureDefinition"}, shared

    fhir_server.reset()
    for module, bundle in bundles.items():
        statuses = _load(fhir_server, bundle)
        assert len(statuses) == len(bundle["entry"]) and set(statuses) <= {"200", "201"}, (module, statuses)

    # After all of them are loaded, every artifact reads back as its own module wrote it (nothing
    # overwritten by another module), and each canonical URL finds exactly one resource.
    for module, bundle in bundles.items():
        for entry in bundle["entry"]:
            sent = entry["resource"]
            stored = fhir_server.get(f"{sent['resourceType']}/{sent['id']}")
            assert _content(stored) == _content(sent), f"{module}: {sent['resourceType']}/{sent['id']} changed"
            if "url" in sent:
                # Medplum's test server matches a url search as a prefix (`ValueSet/x` finds
                # `ValueSet/x-y` too); FHIR's uri search is exact, so keep the exact matches.
                found = fhir_server.get(sent["resourceType"], {"url": sent["url"], "_count": 1000})
                exact = [e["resource"]["id"] for e in found.get("entry", []) if e["resource"].get("url") == sent["url"]]
                assert exact == [sent["id"]], (sent["url"], exact)
    for resource_type in ("PlanDefinition", "ValueSet", "Library", "StructureDefinition"):
        total = fhir_server.get(resource_type, {"_summary": "count"}).get("total")
        assert total == sum(1 for t, _ in contents if t == resource_type)


def test_the_collision_check_can_fail(third_module: Path, tmp_path: Path, fhir_server: FhirServer) -> None:
    """A module copied under the same id collides: the second load overwrites the first one's artifact,
    and the read-back above would see it."""
    bundle = _transaction(third_module, tmp_path)
    fhir_server.reset()
    _load(fhir_server, bundle)
    changed = copy.deepcopy(bundle)
    valueset = next(e["resource"] for e in changed["entry"] if e["resource"]["resourceType"] == "ValueSet")
    valueset["title"] = "Another module's value set of the same id"
    _load(fhir_server, changed)
    original = next(e["resource"] for e in bundle["entry"] if e["resource"]["id"] == valueset["id"])
    assert _content(fhir_server.get(f"ValueSet/{valueset['id']}")) != _content(original)
