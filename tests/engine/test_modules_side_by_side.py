"""Several modules served side by side: module-scoped ids, each card names its own module, version,
topic system and override reasons, and a clash between modules is refused rather than overwritten."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_module.api import create_app
from fhir_module.config import Settings, load_settings
from fhir_module.engine import Engine
from fhir_module.engine.knowledgebase import KnowledgeBase, KnowledgeLoadError
from fhir_module.fhir.bundle import build_bundle, build_modules_bundle, build_resources, conformance_resources
from fhir_module.knowledge import builtin_module_dir, load_knowledge
from tests.api.helpers import serve_app
from tests.support.scenarios import build_request, card_topic, load_scenario

LEVO = builtin_module_dir("levomilnacipran")
MAX_DOSE = load_scenario(LEVO / "cases" / "public" / "pub-max-dose.json")


def _copy_module(tmp_path: Path) -> Path:
    """The levomilnacipran knowledge as a second module of another id, version and override reasons."""
    folder = Path(shutil.copytree(LEVO, tmp_path / "copy", ignore=shutil.ignore_patterns("cases")))
    path = folder / "knowledge.yaml"
    text = path.read_text("utf-8")
    text = text.replace("  id: levomilnacipran\n", "  id: levocopy\n", 1)
    text = text.replace("  name: LevomilnacipranKnowledgeModule\n", "  name: LevocopyKnowledgeModule\n", 1)
    text = text.replace("  title: Levomilnacipran knowledge module\n", "  title: Copy knowledge module\n", 1)
    text = text.replace("  version: 1.0.0\n", "  version: 2.0.0\n", 1)
    text = text.replace("    url: http://fhir-module.org/fhir/monographs/levomilnacipran\n",
                        "    url: http://fhir-module.org/fhir/monographs/levocopy\n", 1)
    text = re.sub(r"override_reasons:\n(  - .*\n)+", "override_reasons:\n  - {code: copy-reason, display: The copy's only reason}\n", text)
    path.write_text(text, encoding="utf-8")
    return folder


@pytest.fixture(scope="module")
def copy_module(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _copy_module(tmp_path_factory.mktemp("modules"))


def _cards(engine: Engine, service_id: str) -> list[dict[str, Any]]:
    service = engine.service(service_id)
    return engine.evaluate(service_id, build_request(MAX_DOSE, service, fhir_server=None, prefetch=True))["cards"]


def test_two_modules_have_no_id_in_common(copy_module: Path) -> None:
    ids = [{(r["resourceType"], r["id"]) for r in build_resources(load_knowledge(folder), "R4")}
           for folder in (LEVO, copy_module)]
    assert ids[0] and not ids[0] & ids[1]
    urls = [{r["url"] for r in build_resources(load_knowledge(folder), "R4") if "url" in r} for folder in (LEVO, copy_module)]
    assert not urls[0] & urls[1]
    assert all(resource_id.startswith("levocopy") for _, resource_id in ids[1])


def test_value_sets_are_named_by_canonical_url_in_the_plan_definitions(copy_module: Path) -> None:
    plan = next(r for r in build_resources(load_knowledge(copy_module), "R4") if r["resourceType"] == "PlanDefinition")
    text = json.dumps(plan)
    assert "therapies('http://fhir-module.org/fhir/ValueSet/levocopy-maoi')" in text
    assert "medicationMatch('http://fhir-module.org/fhir/ValueSet/levocopy-levomilnacipran')" in text
    assert "therapies('maoi')" not in text


@pytest.mark.parametrize("from_bundles", [False, True], ids=["module folders", "exported bundles"])
def test_each_module_answers_with_its_own_cards(copy_module: Path, tmp_path: Path, from_bundles: bool) -> None:
    if from_bundles:
        paths = []
        for folder in (LEVO, copy_module):
            path = tmp_path / f"{folder.name}.json"
            path.write_text(json.dumps(build_bundle(load_knowledge(folder), "R4")), encoding="utf-8")
            paths.append(path)
        engine = Engine.from_sources(bundles=paths)
    else:
        engine = Engine.from_sources(modules=[LEVO, copy_module])
    assert {s["id"] for s in engine.services()} == {
        "levomilnacipran-order-select", "levomilnacipran-order-sign", "levocopy-order-select", "levocopy-order-sign"}
    hook = MAX_DOSE.hook
    levo, copy = _cards(engine, f"levomilnacipran-{hook}"), _cards(engine, f"levocopy-{hook}")
    assert [card_topic(c) for c in levo] == [card_topic(c) for c in copy] == ["dose-limit"]
    assert levo[0]["source"]["label"] == "Levomilnacipran monograph (Levomilnacipran knowledge module 1.0.0)"
    assert copy[0]["source"]["label"] == "Levomilnacipran monograph (Copy knowledge module 2.0.0)"
    assert levo[0]["source"]["topic"]["system"] == "http://fhir-module.org/fhir/CodeSystem/levomilnacipran-rule-topic"
    assert copy[0]["source"]["topic"]["system"] == "http://fhir-module.org/fhir/CodeSystem/levocopy-rule-topic"
    assert [r["code"] for r in levo[0]["overrideReasons"]] == [
        "benefit-outweighs-risk", "already-managed", "data-incorrect", "specialist-directed"]
    assert copy[0]["overrideReasons"] == [{"system": "http://fhir-module.org/fhir/CodeSystem/levocopy-override-reason",
                                           "code": "copy-reason", "display": "The copy's only reason"}]


def test_one_bundle_of_two_modules_loads_once_each(copy_module: Path) -> None:
    bundle = build_modules_bundle([load_knowledge(LEVO), load_knowledge(copy_module)], "R4", "transaction")
    keys = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]]
    # Each module's artifacts, and once the profiles they share (a transaction carries them).
    profiles = len(conformance_resources("R4"))
    assert len(keys) == len(set(keys)) == 2 * len(build_resources(load_knowledge(LEVO), "R4")) + profiles
    assert bundle["id"] == "levomilnacipran-levocopy-r4-transaction"
    assert len(Engine.from_bundle(bundle).services()) == 4


def test_the_same_module_twice_counts_once_and_a_clash_is_refused(tmp_path: Path) -> None:
    resources = list(build_resources(load_knowledge(LEVO), "R4"))
    assert len(Engine(KnowledgeBase(resources + resources)).services()) == 2
    clash = json.loads(json.dumps(resources))
    valueset = next(r for r in clash if r["resourceType"] == "ValueSet")
    valueset["title"] = "Something else"
    with pytest.raises(KnowledgeLoadError, match=rf"ValueSet/{valueset['id']} with different content"):
        Engine.from_bundle({"resourceType": "Bundle", "type": "collection",
                            "entry": [{"resource": r} for r in resources + [valueset]]})


def test_configuration_names_modules_and_bundles(tmp_path: Path, copy_module: Path) -> None:
    toml = tmp_path / "config.toml"
    toml.write_text(f'modules = ["{LEVO}", "{copy_module}"]\nbundles = ["/srv/a.json"]\n', encoding="utf-8")
    settings = load_settings({"FHIR_MODULE_CONFIG": str(toml)})
    assert settings.module_paths == (str(LEVO), str(copy_module)) and settings.bundle_paths == ("/srv/a.json",)
    env = load_settings({"FHIR_MODULE_CONFIG": str(toml), "FHIR_MODULE_MODULES": str(copy_module),
                         "FHIR_MODULE_BUNDLE": "/x.json,/y.json"})
    assert env.module_paths == (str(copy_module),) and env.bundle_paths == ("/x.json", "/y.json")
    # The bundles' test cases, for serve's self-test, are configured beside them.
    toml.write_text('bundles = ["/srv/a.json"]\ncases = ["/srv/a-cases"]\n', encoding="utf-8")
    assert load_settings({"FHIR_MODULE_CONFIG": str(toml)}).case_paths == ("/srv/a-cases",)
    assert load_settings({"FHIR_MODULE_CONFIG": str(toml), "FHIR_MODULE_CASES": "/c1,/c2"}).case_paths == ("/c1", "/c2")


def test_discovery_over_http_lists_every_module_s_services(tmp_path: Path, copy_module: Path) -> None:
    settings = Settings(module_paths=(str(LEVO), str(copy_module)), database_url=f"sqlite:///{tmp_path / 'f.sqlite3'}")
    with serve_app(create_app(settings)) as url:
        services = httpx.get(f"{url}/cds-services", timeout=10).json()["services"]
        assert sorted(s["id"] for s in services) == [
            "levocopy-order-select", "levocopy-order-sign", "levomilnacipran-order-select", "levomilnacipran-order-sign"]
        entry = next(s for s in services if s["id"] == f"levocopy-{MAX_DOSE.hook}")
        response = httpx.post(f"{url}/cds-services/{entry['id']}", timeout=30,
                              json=build_request(MAX_DOSE, entry, fhir_server=None, prefetch=True))
        assert response.status_code == 200
        assert [c["source"]["label"] for c in response.json()["cards"]] == [
            "Levomilnacipran monograph (Copy knowledge module 2.0.0)"]


def test_the_cards_command_asks_every_module(tmp_path: Path, copy_module: Path) -> None:
    service = Engine.default().service(f"levomilnacipran-{MAX_DOSE.hook}")
    request = tmp_path / "request.json"
    request.write_text(json.dumps(build_request(MAX_DOSE, service, fhir_server=None, prefetch=True)), encoding="utf-8")
    command = [sys.executable, "-m", "fhir_module.cli", "cards", str(request), "--module", str(LEVO),
               "--module", str(copy_module)]
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    labels = sorted(card["source"]["label"] for card in json.loads(proc.stdout)["cards"])
    assert labels == ["Levomilnacipran monograph (Copy knowledge module 2.0.0)",
                      "Levomilnacipran monograph (Levomilnacipran knowledge module 1.0.0)"]
    broken = Path(shutil.copytree(copy_module, tmp_path / "broken"))
    (broken / "levomilnacipran.md").unlink()
    proc = subprocess.run([*command[:-1], str(broken)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "cannot read" in proc.stderr and "Traceback" not in proc.stderr
