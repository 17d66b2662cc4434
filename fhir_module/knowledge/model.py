"""The knowledge definition as typed objects: what the builders map to FHIR."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fhir_module.monograph import Monograph, Sentence

from .terminology import Terminology, shared


@dataclass(frozen=True)
class Quote:
    """A monograph sentence a fact or rule rests on, found in the parsed monograph."""

    section: str
    text: str
    sentence: Sentence
    section_title: str


@dataclass(frozen=True)
class Parameter:
    name: str
    value: float
    source: str  # "monograph" (checked against the quote) or "policy" (stated on the card)
    why: str | None = None


@dataclass(frozen=True)
class Suggestion:
    type: str  # "update-dose" or "remove"
    label: str
    dose: str | None = None  # FHIRPath giving the new daily dose in mg (update-dose)
    target: str | None = None  # FHIRPath giving one "Type/id" (remove)
    targets: str | None = None  # FHIRPath giving therapy facts whose orders to remove, one each
    unless_topics: tuple[str, ...] = ()  # no suggestion when a card of one of these topics fired for the order
    # A titration: (daily dose, days it lasts) FHIRPath per step, the last without days.
    steps: tuple[tuple[str, str | None], ...] = ()


@dataclass(frozen=True)
class Rule:
    id: str
    topic: str
    order_kind: str
    indicator: str
    title: str
    description: str
    condition: str
    quote: Quote | None  # the monograph sentence it rests on; None when a policy says why instead
    parameters: tuple[Parameter, ...] = ()
    variables: tuple[tuple[str, str], ...] = ()
    summary: str | None = None
    detail: str | None = None
    reason: str | None = None
    suggestion: Suggestion | None = None
    extra_suggestions: tuple[Suggestion, ...] = ()
    involves: str | None = None
    also_quote: Quote | None = None
    # Said on every card of the order when they hold: what this rule could not check, and why.
    notes: tuple["Note", ...] = ()
    policy: str | None = None  # why the rule exists where no monograph sentence states it

    @property
    def quotes(self) -> tuple[Quote, ...]:
        """The monograph sentences the rule cites: its quote, then its second one."""
        return tuple(q for q in (self.quote, self.also_quote) if q is not None)


@dataclass(frozen=True)
class Fact:
    name: str
    expression: str
    note_when: str | None = None
    note_text: str | None = None


@dataclass(frozen=True)
class Note:
    when: str
    text: str


@dataclass(frozen=True)
class OrderKind:
    id: str
    title: str
    match: str
    facts: tuple[Fact, ...]
    notes: tuple[Note, ...]


@dataclass(frozen=True)
class MergedTopic:
    topic: str
    summary: str
    detail: str
    suggestion: Suggestion
    variable: str = "limit"  # the variable of each rule whose lowest value leads the card


@dataclass(frozen=True)
class Include:
    """One `compose.include` of a ValueSet: concepts of a system, or a filter on it."""

    system: str
    concepts: tuple[tuple[str, str | None], ...] = ()  # (code, display verified for that code, or None)
    filter_op: str | None = None  # "is-a" or "regex"
    filter_value: str | None = None
    comment: str | None = None  # how the filter was written in the terminology (e.g. a range)


@dataclass(frozen=True)
class ValueSetDef:
    id: str
    title: str
    includes: tuple[Include, ...]
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Product:
    rxnorm: str
    display: str
    strength_mg: float
    ndc: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pack:
    rxnorm: str
    display: str
    contents: tuple[tuple[str, int], ...]
    ndc: tuple[str, ...] = ()


@dataclass(frozen=True)
class Knowledge:
    module: dict[str, Any]
    drug: dict[str, Any]
    products: tuple[Product, ...]
    packs: tuple[Pack, ...]
    valuesets: tuple[ValueSetDef, ...]
    order_kinds: tuple[OrderKind, ...]
    merged_topics: dict[str, MergedTopic]
    rules: tuple[Rule, ...]
    topics: tuple[tuple[str, str], ...]
    override_reasons: tuple[tuple[str, str], ...]
    monograph: Monograph
    quotes: dict[str, Quote] = field(default_factory=dict)  # drug facts' quotes by dotted path
    terminology: Terminology = field(default_factory=shared)  # the shared codes plus the module's overlay
    folder: Path | None = None  # the module folder it was read from

    def valueset(self, vs_id: str) -> ValueSetDef:
        for vs in self.valuesets:
            if vs.id == vs_id:
                return vs
        raise KeyError(vs_id)

    def rules_for(self, order_kind: str) -> tuple[Rule, ...]:
        return tuple(rule for rule in self.rules if rule.order_kind == order_kind)
