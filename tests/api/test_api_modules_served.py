"""Several modules served by `fhir-module serve`, as a deployment runs it: the two built-in modules by
default; module folders and exported bundles side by side, named on the command line or in the
configuration (file or environment). Discovery lists each module's services, and each card names its
own module and version, and carries its own module's topic, override reasons and suggestion."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from fhir_module.engine.knowledgecheck import EXIT_REFUSED
from fhir_module.knowledge import builtin_module_dir, case_files
from tests.api.helpers import free_port
from tests.support.scenarios import Scenario, build_request, card_topic, load_scenario

LEVO = builtin_module_dir("levomilnacipran")
DUL = builtin_module_dir("duloxetine")
DUL_MAX = load_scenario(DUL / "cases" / "dul-d1-max-160.json")
LEVO_MAX = load_scenario(LEVO / "cases" / "public" / "pub-max-dose.json")
BASE = "http://fhir-module.org/fhir"
_KNOWLEDGE_ENV = ("FHIR_MODULE_CONFIG", "FHIR_MODULE_MODULES", "FHIR_MODULE_BUNDLE", "FHIR_MODULE_CASES",
                  "FHIR_MODULE_TRUSTED_CLIENTS")


@contextlib.contextmanager
def _serving(tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[tuple[str, Path]]:
    """`fhir-module serve` in its own process on a free loopback port; yields its URL and its log."""
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if k not in _KNOWLEDGE_ENV}
    environment.update({"FHIR_MODULE_DATABASE_URL": f"sqlite:///{tmp_path / f'f{port}.sqlite3'}", **(env or {})})
    log = tmp_path / f"serve-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen([sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(port), *args],
                                   env=environment, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            assert process.poll() is None, f"serve exited {process.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"serve did not become healthy:\n{log.read_text()}"
            time.sleep(0.2)
        yield base, log
    finally:
        process.terminate()
        process.wait(timeout=30)


def _services(base: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{base}/cds-services", timeout=10)
    response.raise_for_status()
    return {service["id"]: service for service in response.json()["services"]}


def _cards(base: str, service: dict[str, Any], scenario: Scenario) -> list[dict[str, Any]]:
    response = httpx.post(f"{base}/cds-services/{service['id']}", timeout=30,
                          json=build_request(scenario, service, fhir_server=None, prefetch=True))
    assert response.status_code == 200, response.text
    return response.json()["cards"]


def _exported(tmp_path: Path, module: Path) -> Path:
    path = tmp_path / f"{module.name}.json"
    result = subprocess.run([sys.executable, "-m", "fhir_module.cli", "export", "--module", str(module),
                             "--fhir-version", "R4", "-o", str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return path


def _assert_own_module(card: dict[str, Any], module: str, title: str) -> None:
    """The card names its module and version, and its topic and override reasons are its module's."""
    assert card["source"]["label"] == f"{title} monograph ({title} knowledge module 1.0.0)"
    assert httpx.URL(card["source"]["url"]).path.endswith(f"/monographs/{module}")  # its own monograph
    assert card["source"]["topic"]["system"] == f"{BASE}/CodeSystem/{module}-rule-topic"
    assert card["overrideReasons"] and {r["system"] for r in card["overrideReasons"]} == {
        f"{BASE}/CodeSystem/{module}-override-reason"}


def _suggested_product(card: dict[str, Any]) -> dict[str, Any]:
    (suggestion,) = card["suggestions"]
    (action,) = suggestion["actions"]
    return action["resource"]["medicationCodeableConcept"]["coding"][0]


def test_serve_lists_and_answers_each_built_in_module_by_itself(tmp_path: Path) -> None:
    with _serving(tmp_path) as (base, log):
        services = _services(base)
        assert sorted(services) == ["duloxetine-order-select", "duloxetine-order-sign",
                                    "levomilnacipran-order-select", "levomilnacipran-order-sign"]
        for service in services.values():
            assert service["prefetch"], service  # each module's service says what it reads

        dul_service, levo_service = services[f"duloxetine-{DUL_MAX.hook}"], services[f"levomilnacipran-{LEVO_MAX.hook}"]
        (dul_card,) = _cards(base, dul_service, DUL_MAX)
        assert card_topic(dul_card) == "dose-limit" and dul_card["summary"].startswith("Duloxetine 160 mg/day")
        _assert_own_module(dul_card, "duloxetine", "Duloxetine")
        # Its suggestion is its own module's: duloxetine's once-daily dose, a duloxetine capsule.
        assert dul_card["suggestions"][0]["label"] == "Change to 120 mg once daily"
        assert "duloxetine" in _suggested_product(dul_card)["display"].lower()

        (levo_card,) = _cards(base, levo_service, LEVO_MAX)
        assert card_topic(levo_card) == "dose-limit"
        _assert_own_module(levo_card, "levomilnacipran", "Levomilnacipran")
        assert "levomilnacipran" in _suggested_product(levo_card)["display"].lower()

        # Feedback on the duloxetine card takes its own module's override reasons, not the other's.
        url = f"{base}/cds-services/{dul_service['id']}/feedback"
        item = {"card": dul_card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-12-02T10:00:00Z"}
        foreign = {**item, "overrideReason": {"reason": levo_card["overrideReasons"][0]}}
        assert httpx.post(url, json={"feedback": [foreign]}, timeout=10).status_code == 400
        own = {**item, "overrideReason": {"reason": dul_card["overrideReasons"][0]}}
        response = httpx.post(url, json={"feedback": [own]}, timeout=10)
        assert response.status_code == 200, response.text

        # Each module is silent on the other's drug.
        assert _cards(base, services[f"levomilnacipran-{DUL_MAX.hook}"], DUL_MAX) == []
        assert _cards(base, services[f"duloxetine-{LEVO_MAX.hook}"], LEVO_MAX) == []
    total = sum(len(case_files(folder)) for folder in (DUL, LEVO))
    said = log.read_text()
    assert f"self-test passed: {total} case(s)" in said
    # serve says which modules it serves, their versions and services.
    assert "Duloxetine knowledge module 1.0.0: duloxetine-order-select, duloxetine-order-sign" in said
    assert "Levomilnacipran knowledge module 1.0.0: levomilnacipran-order-select, levomilnacipran-order-sign" in said


def test_a_module_folder_and_an_exported_bundle_serve_side_by_side(tmp_path: Path) -> None:
    bundle = _exported(tmp_path, LEVO)
    with _serving(tmp_path, "--module", str(DUL), "--bundle", str(bundle), "--cases", str(LEVO / "cases")) as (base, log):
        services = _services(base)
        assert sorted(services) == ["duloxetine-order-select", "duloxetine-order-sign",
                                    "levomilnacipran-order-select", "levomilnacipran-order-sign"]
        (card,) = _cards(base, services[f"levomilnacipran-{LEVO_MAX.hook}"], LEVO_MAX)
        _assert_own_module(card, "levomilnacipran", "Levomilnacipran")
        (card,) = _cards(base, services[f"duloxetine-{DUL_MAX.hook}"], DUL_MAX)
        _assert_own_module(card, "duloxetine", "Duloxetine")
    text = log.read_text()
    # Both modules proved themselves before serving: the folder's own cases and the bundle's named ones.
    assert f"self-test passed: {len(case_files(DUL)) + len(case_files(LEVO))} case(s)" in text
    assert f"serving {DUL}, {bundle} at" in text


def test_the_configuration_names_modules_bundles_and_their_cases(tmp_path: Path) -> None:
    """What the command line names can be configured (TOML file or environment), cases included."""
    bundle = _exported(tmp_path, DUL)
    config = tmp_path / "fhir-module.toml"
    config.write_text(f"modules = [{json.dumps(str(LEVO))}]\nbundles = [{json.dumps(str(bundle))}]\n"
                      f"cases = [{json.dumps(str(DUL / 'cases'))}]\n", encoding="utf-8")
    with _serving(tmp_path, env={"FHIR_MODULE_CONFIG": str(config)}) as (base, log):
        assert len(_services(base)) == 4
        (card,) = _cards(base, _services(base)[f"duloxetine-{DUL_MAX.hook}"], DUL_MAX)
        _assert_own_module(card, "duloxetine", "Duloxetine")
    assert f"self-test passed: {len(case_files(DUL)) + len(case_files(LEVO))} case(s)" in log.read_text()

    # The environment alone: one module folder serves only its own services.
    with _serving(tmp_path, env={"FHIR_MODULE_MODULES": str(DUL)}) as (base, log):
        assert sorted(_services(base)) == ["duloxetine-order-select", "duloxetine-order-sign"]
    assert f"self-test passed: {len(case_files(DUL))} case(s)" in log.read_text()


def test_a_configured_bundle_without_cases_is_refused(tmp_path: Path) -> None:
    bundle = _exported(tmp_path, DUL)
    env = {k: v for k, v in os.environ.items() if k not in _KNOWLEDGE_ENV}
    env.update({"FHIR_MODULE_BUNDLE": str(bundle), "FHIR_MODULE_DATABASE_URL": f"sqlite:///{tmp_path / 'f.sqlite3'}"})
    result = subprocess.run([sys.executable, "-m", "fhir_module.cli", "serve", "--port", str(free_port())],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == EXIT_REFUSED
    assert "a bundle carries no test cases" in result.stderr and "FHIR_MODULE_CASES" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_cards_command_mixes_a_module_folder_and_a_bundle(tmp_path: Path) -> None:
    bundle = _exported(tmp_path, LEVO)
    services = {}
    from fhir_module.engine import Engine

    for service in Engine.default().services():
        services[service["id"]] = service
    request = tmp_path / "request.json"
    request.write_text(json.dumps(build_request(DUL_MAX, services[f"duloxetine-{DUL_MAX.hook}"], fhir_server=None,
                                                prefetch=True)), encoding="utf-8")
    command = [sys.executable, "-m", "fhir_module.cli", "cards", str(request)]
    both = subprocess.run([*command, "--module", str(DUL), "--bundle", str(bundle)], capture_output=True, text=True, timeout=120)
    assert both.returncode == 0, both.stderr
    (card,) = json.loads(both.stdout)["cards"]
    _assert_own_module(card, "duloxetine", "Duloxetine")
    levo_only = subprocess.run([*command, "--bundle", str(bundle)], capture_output=True, text=True, timeout=120)
    assert levo_only.returncode == 0, levo_only.stderr
    assert json.loads(levo_only.stdout)["cards"] == []
