"""The clinical scenario harness for tests: the product's own (fhir_module/selftest), plus the
validity check a fixture must pass to count as evidence.

A scenario is a module's test case (tests/scenarios/README.md); loading it, building the request an
EHR sends and comparing cards are what `fhir-module test` and `serve` do, so they live in the
package. Edit them there.
"""

from __future__ import annotations

from typing import Any

from fhir_module.selftest.cases import (  # noqa: F401 - re-exported for the tests
    HOOKS,
    Scenario,
    ScenarioError,
    birth_date_for_age,
    load_scenario,
    load_scenarios,
    parse_scenario,
    resolve_dates,
    resolve_placeholder,
    shift_date,
)
from fhir_module.selftest.compare import card_topic, compare_cards, daily_dose_mg  # noqa: F401
from fhir_module.selftest.ehr import (  # noqa: F401
    DEFAULT_BASE,
    USER_ID,
    answer_query,
    build_context,
    build_prefetch,
    build_request,
    render_template,
    service_for_hook,
)


def module_requests(engine: Any, today: Any) -> list[tuple[Scenario, dict[str, Any], dict[str, Any]]]:
    """(scenario, service, request) for every built-in module's case and every service of its hook,
    the request built as `serve`'s self-test builds it (prefetch filled)."""
    from fhir_module.knowledge import builtin_module_dirs, case_files

    found = []
    for module in builtin_module_dirs():
        for path in case_files(module):
            scenario = load_scenario(path, today)
            for service in engine.services():
                if service["hook"] == scenario.hook:
                    found.append((scenario, service,
                                  build_request(scenario, service, fhir_server=None, prefetch=True, today=today)))
    return found


def validation_errors(scenario: Scenario) -> list[str]:
    """The R4 errors of a scenario's chart and drafts: a fixture is only evidence if an EHR could send it."""
    from fhir_module.validation.validator import validate

    return [
        f"{resource['resourceType']}/{resource['id']}: {issue.get('diagnostics')} at {issue.get('expression')}"
        for resource in [*scenario.record, *scenario.draft_orders]
        for issue in validate(resource, fhir_version="R4")["issue"]
        if issue.get("severity") in ("error", "fatal")
    ]


def module_services(services: list[dict[str, Any]], module: str) -> dict[str, dict[str, Any]]:
    """One module's services by hook (a module's services are `<module>-<hook>`)."""
    return {s["hook"]: s for s in services if str(s.get("id", "")).startswith(f"{module}-")}
