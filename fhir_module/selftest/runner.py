"""A module proves itself: its own cases run through the engine as an EHR would send them.

Each case is sent to every service of its hook (discovery → prefetch filled from the case's chart
→ request), the cards of all of them together are what the clinician would see, and they must be
what the case expects (`compare_cards`). A request the service refuses is a failed case.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, Iterable, Sequence

from fhir_module.engine.errors import RequestError
from fhir_module.knowledge.modules import PACKAGE_CASES_DIR

from .cases import Scenario, ScenarioError, load_scenario
from .compare import compare_cards
from .ehr import build_request

# A FHIR package holds its module's cases here (`export --package` writes them).
PACKAGE_CASES = PACKAGE_CASES_DIR


@dataclass(frozen=True)
class CaseResult:
    """One case's verdict: no problems is a pass."""

    id: str
    source: str
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def case_files_in(folder: str | Path) -> list[Path]:
    """The cases of a folder: every `*.json` under it, sorted by path."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ScenarioError(f"no case folder {folder}")
    return sorted(folder.rglob("*.json"))


def load_cases(files: Iterable[str | Path], today: date) -> list[Scenario]:
    """The cases of these files, dates resolved against `today`; one id twice is an error."""
    cases, seen = [], {}
    for path in files:
        case = load_scenario(path, today)
        if case.id in seen:
            raise ScenarioError(f"{path}: case id {case.id!r} is also the id of {seen[case.id]}")
        seen[case.id] = path
        cases.append(case)
    return cases


def run_case(engine: Any, case: Scenario, today: date) -> CaseResult:
    services = [s for s in engine.services() if s["hook"] == case.hook]
    source = str(case.source or case.id)
    if not services:
        return CaseResult(case.id, source, (f"no service answers {case.hook}",))
    cards: list[dict[str, Any]] = []
    problems: list[str] = []
    for service in services:
        request = build_request(case, service, fhir_server=None, prefetch=True, today=today)
        try:
            cards += engine.evaluate(service["id"], request, today=today)["cards"]
        except RequestError as error:
            problems.append(f"{service['id']} refused the request ({error.status}): {error.message}")
    problems += compare_cards(case.expect, {"cards": cards})
    return CaseResult(case.id, source, tuple(problems))


def run_cases(engine: Any, cases: Sequence[Scenario], today: date) -> list[CaseResult]:
    return [run_case(engine, case, today) for case in cases]


def case_sources(modules: Sequence[str | Path] = (), packages: Sequence[str | Path] = (),
                 case_dirs: Sequence[str | Path] = ()) -> list[Path]:
    """The case files of module folders (`cases/`), FHIR packages (`tests/`) and case folders."""
    from fhir_module.engine.knowledgebase import package_folder
    from fhir_module.knowledge import case_files

    files = [path for module in modules for path in case_files(module)]
    for package in packages:
        folder = package_folder(package) / PACKAGE_CASES_DIR
        files += case_files_in(folder) if folder.is_dir() else []
    for folder in case_dirs:
        files += case_files_in(folder)
    return files


def report(results: Sequence[CaseResult], *, passes: bool = True) -> list[str]:
    """One line per case (`PASS id` / `FAIL id (file): problem; problem`), then the count."""
    lines = []
    for result in results:
        if result.passed:
            if passes:
                lines.append(f"PASS  {result.id}")
        else:
            lines.append(f"FAIL  {result.id} ({result.source}): {'; '.join(result.problems)}")
    failed = sum(1 for result in results if not result.passed)
    lines.append(f"{len(results)} case(s): {len(results) - failed} passed, {failed} failed")
    return lines
