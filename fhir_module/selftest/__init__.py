"""Modules prove themselves: their own test cases, run through the engine as an EHR would.

    from fhir_module.selftest import load_cases, run_cases
    results = run_cases(engine, load_cases(case_files(module_dir), today), today)

A case (tests/scenarios/README.md) is a patient's chart, the draft orders and the cards expected;
`cases` reads it (dates are placeholders resolved against the day it runs), `ehr` builds the CDS
Hooks request an EHR would send (prefetch answered from the chart), `compare` holds the answer to
the expectation, `runner` runs them. `fhir-module test` prints a verdict per case; `serve` runs a
module's cases before it serves and refuses a module whose cases fail.
"""

from .cases import Scenario, ScenarioError, load_scenario, load_scenarios, parse_scenario
from .compare import card_topic, compare_cards
from .ehr import answer_query, build_request, render_template, service_for_hook
from .runner import PACKAGE_CASES, CaseResult, case_files_in, case_sources, load_cases, report, run_case, run_cases

__all__ = [
    "PACKAGE_CASES", "CaseResult", "Scenario", "ScenarioError", "answer_query", "build_request", "card_topic",
    "case_files_in", "case_sources", "compare_cards", "load_cases", "load_scenario", "load_scenarios", "parse_scenario",
    "render_template", "report", "run_case", "run_cases", "service_for_hook",
]
