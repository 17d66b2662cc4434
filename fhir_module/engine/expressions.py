"""FHIRPath for the engine: compiled once, evaluated many times, with the module's generic functions.

Expressions come from the knowledge artifacts. fhirpathpy calls user functions without their
evaluation context, so the facts of the request being evaluated travel in a context variable
(`current_facts`), which keeps compiled expressions shareable across threads and requests.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from functools import lru_cache
from typing import Any, Callable

import fhirpathpy
from fhirpathpy.models import models

import math
from decimal import Decimal

from .clinical._json import fmt_rounded

log = logging.getLogger(__name__)

# Set by the evaluator for the duration of one order's evaluation (see facts.ChartFacts).
current_facts: ContextVar[Any] = ContextVar("current_facts")

_VARIABLE_REFERENCE = re.compile(r"%([A-Za-z_][A-Za-z0-9_]*)")
_TEMPLATE_PART = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)


class FunctionFailure(RuntimeError):
    """One of the module's own functions failed: a bug to surface, not data to ignore."""


def _user_function(method: str) -> Callable[..., Any]:
    def call(inputs: list[Any], *args: Any) -> Any:
        try:
            return getattr(current_facts.get(), method)(inputs, *args)
        except Exception as error:
            raise FunctionFailure(f"{method} failed: {type(error).__name__}: {error}") from error

    return call


# Function name → (ChartFacts method, accepted argument lists). Arguments are FHIRPath values.
_FUNCTIONS: dict[str, tuple[str, dict[int, list[str]]]] = {
    "medicationMatch": ("medication_match", {1: ["String"]}),
    "dailyDose": ("daily_dose", {0: []}),
    "ageYears": ("age_years", {0: []}),
    "ref": ("ref", {0: []}),
    "therapies": ("therapies", {1: ["String"]}),
    "renalFunction": ("renal_function", {5: ["String"] * 5}),
    "conditions": ("conditions", {1: ["String"], 2: ["String", "Boolean"]}),
    "allergies": ("allergies", {1: ["String"], 2: ["String", "String"], 3: ["String", "String", "String"]}),
    "latestObservation": ("latest_observation", {2: ["String", "Number"]}),
    "latestObservationWithValue": ("latest_observation_with_value", {3: ["String", "String", "Number"]}),
    "bloodPressure": ("blood_pressure", {4: ["String", "String", "String", "Number"]}),
    "conceptIn": ("concept_in", {1: ["String"]}),
    "resolveIn": ("resolve_in", {1: ["String"]}),
}
# What each function reads from the patient's chart (the prefetch) beyond the order itself and
# the Medication it names: an order kind asks for the data its expressions read, and no more.
CHART_READS: dict[str, tuple[str, ...]] = {
    "medicationMatch": (),
    "dailyDose": (),
    "ageYears": (),  # of its input: `%patient` is read through the variable (below)
    "ref": (),
    "therapies": ("MedicationRequest", "MedicationStatement"),
    "renalFunction": ("Observation", "Patient"),
    "conditions": ("Condition",),
    "allergies": ("AllergyIntolerance",),
    "latestObservation": ("Observation",),
    "latestObservationWithValue": ("Observation",),
    "bloodPressure": ("Observation",),
    "conceptIn": (),
    "resolveIn": ("Condition",),
}
_VARIABLE_READS = {"patient": ("Patient",)}
_CALL = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(")


def referenced_variables(text: str) -> tuple[str, ...]:
    """The %variables an expression or template names, in order of first use."""
    return tuple(dict.fromkeys(_VARIABLE_REFERENCE.findall(text)))


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def chart_types_read(value: Any) -> set[str]:
    """The chart resource types that the FHIRPath in a JSON value (an action with its variables,
    conditions, card templates and sub-actions) reads through the module's functions and
    `%patient`. Every string is read whole, so prose that looks like a call can only add a type:
    asking for too much data is safe, too little is not."""
    found: set[str] = set()
    for text in _strings(value):
        for name in _CALL.findall(text):
            found.update(CHART_READS.get(name, ()))
        for name in _VARIABLE_REFERENCE.findall(text):
            found.update(_VARIABLE_READS.get(name, ()))
    return found


USER_FUNCTIONS = {
    name: {"fn": _user_function(method), "arity": arity} for name, (method, arity) in _FUNCTIONS.items()
}
_OPTIONS = {"userInvocationTable": USER_FUNCTIONS}


class ExpressionError(ValueError):
    """An expression in the knowledge cannot be compiled."""


class Expression:
    """One compiled FHIRPath expression and the %variables it reads."""

    __slots__ = ("text", "variables", "_compiled")

    def __init__(self, text: str) -> None:
        self.text = text
        self.variables = tuple(dict.fromkeys(_VARIABLE_REFERENCE.findall(text)))
        try:
            self._compiled = fhirpathpy.compile(text, models["r4"], options=_OPTIONS)
        except Exception as error:  # the ANTLR parser raises several types
            raise ExpressionError(f"cannot compile FHIRPath {text!r}: {error}") from error

    def evaluate(self, resource: Any, variables: dict[str, Any]) -> list[Any]:
        """The expression's value; data the expression cannot handle gives an empty result."""
        try:
            return list(self._compiled(resource if resource is not None else {}, variables))
        except FunctionFailure:
            raise
        except Exception:  # noqa: BLE001 - FHIRPath over odd outside data must not break a request
            log.warning("FHIRPath %r failed on this request's data; treated as empty", self.text, exc_info=True)
            return []


@lru_cache(maxsize=4096)
def compiled(text: str) -> Expression:
    return Expression(text)


def number(value: Any) -> float | None:
    """A FHIRPath number (fhirpathpy gives int, float or Decimal) as a float; anything else None."""
    if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
        return None
    result = float(value)
    return result if math.isfinite(result) else None


def truthy(values: list[Any]) -> bool:
    """FHIRPath boolean of a condition: only a single true is true (empty is unknown, not true)."""
    return len(values) == 1 and values[0] is True


class Template:
    """Text with `{{ FHIRPath }}` parts, rendered from the same variables as the conditions."""

    __slots__ = ("text", "parts", "variables")

    def __init__(self, text: str) -> None:
        self.text = text
        self.parts = [compiled(part.strip()) for part in _TEMPLATE_PART.findall(text)]
        self.variables = tuple(dict.fromkeys(name for part in self.parts for name in part.variables))

    def render(self, values_of: Callable[[Expression], list[Any]]) -> str:
        parts = iter(self.parts)
        return _TEMPLATE_PART.sub(lambda _: format_values(values_of(next(parts))), self.text)


@lru_cache(maxsize=2048)
def template(text: str) -> Template:
    return Template(text)


def format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float, Decimal)):
        return fmt_rounded(float(value)) if math.isfinite(value) else str(value)
    if isinstance(value, dict):
        return str(value.get("evidence") or value.get("text") or value.get("name") or value.get("display") or "")
    return str(value)


def format_values(values: list[Any]) -> str:
    return "; ".join(text for text in (format_value(v) for v in values) if text)
