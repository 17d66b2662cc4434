"""The engine's face: CDS Hooks services derived from the PlanDefinitions, and request evaluation.

No HTTP here: the API (fhir_module/api) and the offline `fhir-module cards` both call this.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, NamedTuple, Sequence

from .actions import requirements, topic_coding, undeclared_reads, variables
from .apply import PlanApplier
from .chart import Chart
from .errors import RequestError
from .expressions import chart_types_read, referenced_variables
from .failures import EvaluationFailures
from .knowledgebase import KnowledgeBase, KnowledgeLoadError, hooks_of

log = logging.getLogger(__name__)

# Data that passed validation but that the engine still could not evaluate (never a 500).
UNEVALUABLE = 422

_MEDICATION_ORDERS = ("MedicationRequest", "MedicationStatement")
_PLURAL_KEYS = {"AllergyIntolerance": "allergyIntolerances"}


def _prefetch_key(resource_type: str) -> str:
    if resource_type == "Patient":
        return "patient"
    return _PLURAL_KEYS.get(resource_type, resource_type[:1].lower() + resource_type[1:] + "s")


def _prefetch_template(requirement: dict[str, Any]) -> str:
    resource_type = requirement["type"]
    if resource_type == "Patient":
        return "Patient/{{context.patientId}}"
    query = f"{resource_type}?patient={{{{context.patientId}}}}"
    codes = [
        f"{coding.get('system')}|{coding.get('code')}"
        for code_filter in requirement.get("codeFilter") or []
        for coding in code_filter.get("code") or []
        if coding.get("code")
    ]
    if codes:
        query += "&code=" + ",".join(codes)
    # Newest first: the rules read the latest results, so the first page holds what matters.
    sort = "&_sort=-date" if resource_type == "Observation" else ""
    # Medication orders may name their drug through a Medication resource: bring those along.
    include = f"&_include={resource_type}:medication" if resource_type in _MEDICATION_ORDERS else ""
    return query + include + sort + "&_count=100"


@dataclass(frozen=True)
class OrderKind:
    """A top-level action of a PlanDefinition: one kind of order (a drug's orders), the prefetch
    keys its rules read, and whether telling if it applies already needs the chart."""

    action: dict[str, Any]
    keys: tuple[str, ...]
    judged_on_chart: bool


def _order_kind(plan: dict[str, Any], action: dict[str, Any]) -> OrderKind:
    undeclared = undeclared_reads(action)
    if undeclared:
        # Its rules would judge data the service never asks for: a silent "all clear".
        raise KnowledgeLoadError(
            f"PlanDefinition {plan.get('id')!r}, action {action.get('id')!r}: its expressions read "
            f"{', '.join(undeclared)} but its input does not ask for it"
        )
    applicability = [c.get("expression") for c in action.get("condition") or [] if isinstance(c, dict)]
    return OrderKind(
        action=action,
        keys=tuple(dict.fromkeys(_prefetch_key(r["type"]) for r in requirements(action))),
        judged_on_chart=bool(chart_types_read([applicability, _used_variables(action, applicability)])),
    )


def _used_variables(action: dict[str, Any], expressions: list[Any]) -> list[str]:
    """The texts of the action's variables that the expressions use, directly or through others."""
    definitions = variables(action)
    texts = [str(e.get("expression", "")) for e in expressions if isinstance(e, dict)]
    used: dict[str, str] = {}
    while True:
        wanted = {name for text in [*texts, *used.values()] for name in referenced_variables(text)}
        new = {name: definitions[name] for name in wanted if name in definitions and name not in used}
        if not new:
            return list(used.values())
        used.update(new)


class Prepared(NamedTuple):
    """A request read once: its service, chart, checked orders and the applier over them."""

    service: dict[str, Any]
    chart: Chart
    selected: list[dict[str, Any]]
    applier: PlanApplier


class Engine:
    """Applies a knowledge base to CDS Hooks requests."""

    def __init__(self, kb: KnowledgeBase) -> None:
        self.kb = kb
        # Checks that could not be evaluated on a request's data, since this engine started.
        self.evaluation_failures = EvaluationFailures()
        self._services: dict[str, dict[str, Any]] = {}
        self._plans: dict[str, dict[str, Any]] = {}
        self._kinds: dict[str, list[OrderKind]] = {}
        for plan in kb.plan_definitions:
            for hook in hooks_of(plan):
                service_id = plan["id"] if len(hooks_of(plan)) == 1 else f"{plan['id']}-{hook}"
                prefetch: dict[str, str] = {}
                kinds = [action for action in plan.get("action") or []
                         if any(t.get("name") == hook for t in action.get("trigger") or [])]
                for action in kinds:
                    for requirement in requirements(action):
                        prefetch.setdefault(_prefetch_key(requirement["type"]), _prefetch_template(requirement))
                self._kinds[service_id] = [_order_kind(plan, action) for action in kinds]
                self._services[service_id] = {
                    "hook": hook,
                    "id": service_id,
                    "title": plan.get("title", service_id),
                    "description": plan.get("description", ""),
                    "prefetch": prefetch,
                }
                self._plans[service_id] = plan

    @classmethod
    def default(cls) -> "Engine":
        """Every built-in module, built in memory from its knowledge file."""
        from fhir_module.fhir.builtin import built_in_resources

        return cls(KnowledgeBase(built_in_resources()))

    @classmethod
    def from_sources(cls, modules: Sequence[str | Path] = (), bundles: Sequence[str | Path] = (),
                     packages: Sequence[str | Path] = (), *, allow_draft: bool = False) -> "Engine":
        """Module folders (built in memory), exported bundles and FHIR packages, served side by side;
        with none, the built-in modules. A module that fails its checks raises KnowledgeError;
        knowledge that would not run as written, KnowledgeCheckError."""
        if not modules and not bundles and not packages:
            return cls.default()
        from fhir_module.fhir.bundle import build_resources
        from fhir_module.knowledge import load_knowledge

        resources: list[dict[str, Any]] = []
        for folder in modules:
            resources += build_resources(load_knowledge(folder), "R4")
        for path in bundles:
            resources += KnowledgeBase.read_bundle_file(path)
        for path in packages:
            resources += KnowledgeBase.read_package(path)
        return cls(KnowledgeBase(resources, allow_draft=allow_draft))

    @classmethod
    def from_bundle(cls, bundle: dict[str, Any], *, allow_draft: bool = False) -> "Engine":
        return cls(KnowledgeBase.from_bundle(bundle, allow_draft=allow_draft))

    @classmethod
    def from_bundle_file(cls, path: str | Path, *, allow_draft: bool = False) -> "Engine":
        return cls(KnowledgeBase.from_file(path, allow_draft=allow_draft))

    def monograph(self, url: str) -> str | None:
        """The Markdown text of the monograph the knowledge carries at this URL, if any."""
        return self.kb.monographs.get(url)

    def monograph_urls(self) -> list[str]:
        return sorted(self.kb.monographs)

    def services(self) -> list[dict[str, Any]]:
        return [dict(service) for service in self._services.values()]

    def service(self, service_id: str) -> dict[str, Any] | None:
        return self._services.get(service_id)

    def plan(self, service_id: str) -> dict[str, Any] | None:
        """The PlanDefinition that answers the service."""
        return self._plans.get(service_id)

    def override_reasons(self, service_id: str) -> list[dict[str, str]]:
        """The override reasons the service's warning and critical cards offer (its module's)."""
        plan = self._plans.get(service_id)
        return [dict(reason) for reason in self.kb.module_of(plan).override_reasons] if plan else []

    def card_topics(self, service_id: str) -> list[dict[str, str]]:
        """The topics (`card.source.topic` codings) of every rule the service may answer with."""
        found: dict[tuple[str, str], dict[str, str]] = {}
        stack = list((self._plans.get(service_id) or {}).get("action") or [])
        while stack:
            action = stack.pop()
            coding = topic_coding(action) if isinstance(action, dict) else None
            if coding and coding.get("code"):
                found.setdefault((str(coding.get("system", "")), str(coding["code"])),
                                 {k: str(coding[k]) for k in ("system", "code", "display") if coding.get(k)})
            stack.extend((action or {}).get("action") or [] if isinstance(action, dict) else [])
        return sorted(found.values(), key=lambda c: (c.get("system", ""), c["code"]))

    def needed_prefetch(self, service_id: str, request: Any, *, today: date | None = None,
                        prepared: "Prepared | None" = None) -> list[str]:
        """The prefetch keys that the rules of the request's checked orders read.

        Whether a kind of order applies is judged on the order alone (its drug, by code, by the
        Medication it names, or by name): only the kinds that apply need the patient's chart, so
        a request whose checked orders are all unrelated (an MRI, a drug no module knows) needs
        no data at all. An order counts under every kind it cannot be judged for without the
        chart: the kind's applicability reads chart data, or the order names its drug by a
        Medication the request does not hold and by no name either (the service reads such
        Medications from an allowed server before asking). Bad context raises RequestError as
        `evaluate` does.
        """
        prepared = prepared or self.prepare(service_id, request, today=today)
        return self.prefetch_keys(service_id, self.kinds_that_may_apply(service_id, prepared))

    def kinds_that_may_apply(self, service_id: str, prepared: "Prepared") -> list[OrderKind]:
        """The service's kinds of order that apply, or may, to some checked order of the prepared
        request (see `needed_prefetch`). None: no rule of the service can fire on the request."""
        _, chart, selected, applier = prepared
        return [kind for kind in self._kinds[service_id]
                if any(self._may_apply(applier, chart, kind, order) for order in selected)]

    def prefetch_keys(self, service_id: str, kinds: list[OrderKind]) -> list[str]:
        """The service's prefetch keys that the rules of these kinds read, in discovery order."""
        keys = {key for kind in kinds for key in kind.keys}
        return [key for key in self._services[service_id]["prefetch"] if key in keys]

    @staticmethod
    def _may_apply(applier: PlanApplier, chart: Chart, kind: OrderKind, order: dict[str, Any]) -> bool:
        if kind.judged_on_chart:
            return True
        reference = chart.unresolved_medication(order)
        if reference is not None and not reference.get("display"):
            return True  # a drug known by nothing the request holds could be any drug
        try:
            return applier.kind_applies(kind.action, order)
        except Exception:  # noqa: BLE001 - cannot tell without evaluating: ask for the data;
            log.warning("could not tell whether %s applies; its data is asked for", kind.action.get("id"), exc_info=True)
            return True  # the evaluation proper will say what fails

    def missing_prefetch(self, service_id: str, prefetch: Any, keys: list[str] | None = None) -> list[str]:
        """Keys of the service's prefetch (or of `keys`) that the client did not fill (absent, null,
        an OperationOutcome)."""
        service = self._services.get(service_id)
        if service is None:
            return []
        prefetch = prefetch if isinstance(prefetch, dict) else {}
        missing = []
        for key in service["prefetch"] if keys is None else keys:
            value = prefetch.get(key)
            if not isinstance(value, dict) or value.get("resourceType") in (None, "OperationOutcome"):
                missing.append(key)
        return missing

    def evaluate(self, service_id: str, request: Any, *, today: date | None = None,
                 prepared: "Prepared | None" = None) -> dict[str, Any]:
        """The cards for a request. `prepared` (from `prepare` on this same request and its
        complete prefetch, as `needed_prefetch` used it) saves reading the chart twice."""
        service, _, selected, applier = prepared or self.prepare(service_id, request, today=today)
        try:
            cards = applier.apply(self._plans[service_id], service["hook"], selected)
            return {"cards": applier.finish(cards)}
        except RequestError:
            raise
        except Exception as error:  # noqa: BLE001 - a bug or data we did not foresee: say so, never 500
            log.exception("evaluation failed for hookInstance %s", request.get("hookInstance"))
            raise RequestError(
                UNEVALUABLE, f"the request's data could not be evaluated ({type(error).__name__}); no cards were made"
            ) from error

    def prepare(self, service_id: str, request: Any, *, today: date | None = None) -> "Prepared":
        """The service, the request's chart, its checked orders and an applier over them."""
        service = self._services.get(service_id)
        if service is None:
            raise RequestError(404, f"no CDS service {service_id!r}")
        context, orders = self._checked_orders(service, request)
        prefetch = request.get("prefetch") if isinstance(request.get("prefetch"), dict) else {}
        chart = Chart.from_request(context, prefetch)
        selected = orders(chart)
        applier = PlanApplier(self.kb, chart, today or date.today(), context, str(request.get("hookInstance", "")),
                              self.evaluation_failures)
        return Prepared(service, chart, selected, applier)

    @staticmethod
    def _checked_orders(service: dict[str, Any], request: Any):
        """Validate what the hook requires, and say which draft orders to check."""
        if not isinstance(request, dict):
            raise RequestError(400, "the request body must be a JSON object")
        hook = request.get("hook")
        if hook != service["hook"]:
            raise RequestError(400, f"service {service['id']!r} answers hook {service['hook']!r}, not {hook!r}", ["hook"])
        context = request.get("context")
        if not isinstance(context, dict):
            raise RequestError(400, "context is required and must be an object", ["context"])
        if not isinstance(context.get("patientId"), str) or not context["patientId"]:
            raise RequestError(400, "context.patientId is required", ["context.patientId"])
        drafts = context.get("draftOrders")
        if not isinstance(drafts, dict) or drafts.get("resourceType") != "Bundle":
            raise RequestError(400, "context.draftOrders must be a FHIR Bundle", ["context.draftOrders"])
        if not isinstance(drafts.get("entry", []), list):
            raise RequestError(400, "context.draftOrders.entry must be a list", ["context.draftOrders.entry"])
        if hook == "order-select":
            selections = context.get("selections")
            if not isinstance(selections, list) or not all(isinstance(s, str) for s in selections):
                raise RequestError(400, "context.selections must be a list of references", ["context.selections"])

            def orders(chart: Chart) -> list[dict[str, Any]]:
                return [chart.draft(selection) for selection in dict.fromkeys(selections)]
        else:

            def orders(chart: Chart) -> list[dict[str, Any]]:
                return [d for d in chart.drafts if d.get("resourceType") == "MedicationRequest"]

        return context, orders


__all__ = ["Engine", "RequestError"]
