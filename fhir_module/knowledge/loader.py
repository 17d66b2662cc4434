"""Load a knowledge definition file and check it against its schema, the terminology and the monograph.

Provenance is checked, not claimed: a quoted sentence that is no longer in the monograph, a
monograph-sourced number that is not in its sentence, a numeric literal hidden in an expression,
or a code that is not in the verified terminology all stop the build with a message saying where.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import jsonschema
import yaml

from fhir_module.monograph import Monograph, MonographError, numbers_in, parse_monograph

from . import terminology
from .modules import TERMINOLOGY_DIR, knowledge_file, module_dir
from .model import (
    Fact,
    Include,
    Knowledge,
    MergedTopic,
    Note,
    OrderKind,
    Pack,
    Parameter,
    Product,
    Quote,
    Rule,
    Suggestion,
    ValueSetDef,
)


# libyaml's safe loader when PyYAML was built with it (five times faster: the knowledge file is read
# at every start), else the pure-Python one; both build the same values.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class KnowledgeError(ValueError):
    """The knowledge definition is not consistent with its schema, terminology or monograph."""


def load_knowledge(path: str | Path, *, monograph_text: str | None = None) -> Knowledge:
    """Read and check a module: its folder, or its knowledge file (the monograph, terminology overlay
    and cases sit beside it). `monograph_text` replaces the module's monograph (for tests)."""
    path = knowledge_file(path)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, yaml.YAMLError) as error:
        raise KnowledgeError(f"{path}: cannot read: {error}") from error
    return build_knowledge(data, monograph_text=monograph_text, source=str(path), folder=module_dir(path))


def _schema() -> dict[str, Any]:
    text = resources.files("fhir_module.data.knowledge").joinpath("knowledge.schema.json").read_text("utf-8")
    return json.loads(text)


def build_knowledge(data: Any, *, monograph_text: str | None = None, source: str = "<knowledge>",
                    folder: Path | None = None) -> Knowledge:
    """Check a parsed knowledge file; `folder` is its module folder (monograph, terminology overlay)."""
    errors = sorted(jsonschema.Draft202012Validator(_schema()).iter_errors(data), key=lambda e: list(e.path))
    if errors:
        where = "/".join(str(p) for p in errors[0].path) or "(top)"
        raise KnowledgeError(f"{source}: {where}: {errors[0].message}")

    monograph = _monograph(data["module"], monograph_text, folder)
    terms = terminology.shared()
    if folder is not None:
        try:
            terms = terms.with_overlay(folder / TERMINOLOGY_DIR)
        except terminology.TerminologyError as error:
            raise KnowledgeError(str(error)) from error
    checker = _Checker(monograph, source)
    valuesets = tuple(_valueset(vs, source, terms) for vs in data["valuesets"])
    vs_ids = {vs.id for vs in valuesets}
    if data["drug"]["valueset"] not in vs_ids:
        raise KnowledgeError(f"{source}: drug.valueset {data['drug']['valueset']!r} is not a defined value set")

    products, packs = _products(data["drug"], source, terms)
    valuesets = _with_package_codes(valuesets, data["drug"]["valueset"], products, packs, source, terms)
    quotes = checker.drug_quotes(data["drug"])
    order_kinds = tuple(_order_kind(kind, checker, vs_ids) for kind in data["order_kinds"])
    kind_ids = {kind.id for kind in order_kinds}
    topic_codes = {topic["code"] for topic in data["topics"]}
    rules = tuple(_rule(rule, checker, vs_ids, kind_ids, topic_codes) for rule in data["rules"])
    _unique(source, "rule id", [rule.id for rule in rules])
    merged = {
        topic: MergedTopic(topic, spec["summary"], spec["detail"], _suggestion(spec["suggestion"]))
        for topic, spec in (data.get("merged_topics") or {}).items()
    }
    for rule in rules:
        if rule.topic in merged and rule.reason is None:
            raise KnowledgeError(f"{source}: rule {rule.id}: a rule of merged topic {rule.topic!r} needs a reason")
        if rule.topic not in merged and rule.summary is None:
            raise KnowledgeError(f"{source}: rule {rule.id}: summary is required")
    return Knowledge(
        module=data["module"],
        drug=data["drug"],
        products=products,
        packs=packs,
        valuesets=valuesets,
        order_kinds=order_kinds,
        merged_topics=merged,
        rules=rules,
        topics=tuple((t["code"], t["display"]) for t in data["topics"]),
        override_reasons=tuple((r["code"], r["display"]) for r in data["override_reasons"]),
        monograph=monograph,
        quotes=quotes,
        terminology=terms,
        folder=folder,
    )


def _monograph(module: dict[str, Any], text: str | None, folder: Path | None) -> Monograph:
    name = module["monograph"]["file"]
    path = (folder / name) if folder is not None else Path(name)
    if text is None:
        if folder is None:
            raise KnowledgeError(f"monograph {name}: no module folder to read it from")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise KnowledgeError(f"monograph {path}: cannot read: {error}") from error
    try:
        return parse_monograph(text, source=str(path))
    except MonographError as error:
        raise KnowledgeError(f"monograph {path}: {error}") from error


def _unique(source: str, what: str, values: list[str]) -> None:
    seen: set[str] = set()
    for value in values:
        if value in seen:
            raise KnowledgeError(f"{source}: duplicate {what} {value!r}")
        seen.add(value)


class _Checker:
    """Provenance checks against the monograph, with messages that say where the problem is."""

    _NUMBER_LITERAL = re.compile(r"(?<![\w%.])\d+(?:\.\d+)?(?![\w.])")

    def __init__(self, monograph: Monograph, source: str) -> None:
        self.monograph = monograph
        self.source = source

    def quote(self, spec: dict[str, str], where: str) -> Quote:
        sentence = self.monograph.find(spec["text"])
        if sentence is None:
            raise KnowledgeError(
                f"{self.source}: {where}: the quoted sentence is not in the monograph: {spec['text']!r}"
            )
        if sentence.section_id != spec["section"]:
            raise KnowledgeError(
                f"{self.source}: {where}: the quote is in section {sentence.section_id!r}, not {spec['section']!r}"
            )
        title = self.monograph.section(sentence.section_id).title
        return Quote(spec["section"], spec["text"], sentence, title)

    def number_in_quote(self, value: float, quote: Quote, where: str) -> None:
        if not any(abs(found - value) < 1e-9 for found in numbers_in(quote.sentence.text)):
            raise KnowledgeError(
                f"{self.source}: {where}: the number {value:g} is not in its quoted sentence: {quote.sentence.text!r}"
            )

    _BARE_BOOLEAN_FILTER = re.compile(r"\.(where|all|exists)\(\s*[A-Za-z_]\w*\s*\)")

    def no_bare_boolean_filters(self, expression: str, where: str) -> None:
        """`where(flag)` keeps items whose flag is false in fhirpathpy 2.x; `where(flag = true)` is exact."""
        found = self._BARE_BOOLEAN_FILTER.search(expression)
        if found:
            raise KnowledgeError(
                f"{self.source}: {where}: {found.group()[1:]} filters on a bare property; compare it: "
                f"'{found.group(1)}(... = true)'"
            )

    def no_number_literals(self, expression: str, where: str) -> None:
        """Numbers belong in parameters, where their source is stated; expressions only name them."""
        without_strings = re.sub(r"'(?:[^'\\]|\\.)*'", "''", expression)
        found = self._NUMBER_LITERAL.search(without_strings)
        if found:
            raise KnowledgeError(
                f"{self.source}: {where}: numeric literal {found.group()} in an expression; make it a parameter"
            )

    def drug_quotes(self, drug: dict[str, Any]) -> dict[str, Quote]:
        """Every quoted drug fact, keyed by its path, with its numbers checked."""
        quotes: dict[str, Quote] = {}

        def walk(node: Any, path: str) -> None:
            if isinstance(node, dict):
                if "quote" in node:
                    quote = self.quote(node["quote"], f"drug.{path}")
                    quotes[path] = quote
                    for key, value in node.items():
                        if key != "quote" and isinstance(value, (int, float)) and not isinstance(value, bool):
                            if key == "days" or key.endswith(("_mg", "_low", "_high")) or key == "value":
                                self.number_in_quote(float(value), quote, f"drug.{path}.{key}")
                for key, value in node.items():
                    if key != "quote":
                        walk(value, f"{path}.{key}" if path else key)
            elif isinstance(node, list):
                for index, item in enumerate(node):
                    walk(item, f"{path}[{index}]")

        walk(drug.get("dosing", {}), "dosing")
        if "indication" in drug:
            walk({"indication": drug["indication"]}, "")
        return quotes


def _valueset(spec: dict[str, Any], source: str, terms: terminology.Terminology) -> ValueSetDef:
    includes: list[Include] = []
    names = list(spec.get("names", []))
    if "rxnorm_class" in spec:
        rows = terms.rxnorm_class(spec["rxnorm_class"])
        if not rows:
            raise KnowledgeError(f"{source}: value set {spec['id']}: no rxnorm.csv rows of class {spec['rxnorm_class']!r}")
        concepts = dict.fromkeys((row.rxcui, row.display) for row in rows)
        for code in spec.get("extra_rxnorm", []):
            if not terms.documented(code):
                raise KnowledgeError(f"{source}: value set {spec['id']}: RxNorm {code} is not in the terminology")
            concepts[(code, None)] = None  # documented by the notes, without a verified display
        includes.append(Include(terminology.RXNORM, tuple(concepts)))
        if spec.get("names_from_class"):
            for row in rows:
                names.extend(part for part in row.ingredient.split("|") if part)
                names.extend(brand for brand in [_brand(row.display)] if brand)
    for group in [spec["group"]] if "group" in spec else spec.get("groups", []):
        tokens = terms.code_groups().get(group)
        if not tokens:
            raise KnowledgeError(f"{source}: value set {spec['id']}: no codes.csv group {group!r}")
        wanted = spec.get("codes")
        if wanted:
            unknown = set(wanted) - {token.text for token in tokens}
            if unknown:
                raise KnowledgeError(
                    f"{source}: value set {spec['id']}: {sorted(unknown)} not in codes.csv group {group!r}"
                )
            tokens = tuple(token for token in tokens if token.text in wanted)
        includes.extend(_includes(tokens))
    if not includes:
        raise KnowledgeError(f"{source}: value set {spec['id']}: names no rxnorm_class or group")
    return ValueSetDef(spec["id"], spec["title"], tuple(includes), tuple(dict.fromkeys(names)))


_BRAND = re.compile(r"\[([^\[\]]+)\]\s*$")
_BRAND_SUFFIX = re.compile(r"\s+(?:\d[\d.]*\s*(?:MG|MCG|ML)\b|Reformulated\b).*$", re.IGNORECASE)


def _brand(display: str) -> str | None:
    """The brand name an RxNorm branded drug or pack names in brackets ("... [Parnate]"), without
    a strength or reformulation note: a text-only order often names the drug by its brand."""
    found = _BRAND.search(display)
    return _BRAND_SUFFIX.sub("", found.group(1)).strip() or None if found else None


def _with_package_codes(valuesets: tuple[ValueSetDef, ...], drug_vs: str, products: tuple[Product, ...],
                        packs: tuple[Pack, ...], source: str, terms: terminology.Terminology) -> tuple[ValueSetDef, ...]:
    """The drug's value set with the package codes (NDC) of its products and packs: a chart that
    records the drug only by the NDC on the bottle names the same drug (clinical-rules.md)."""
    listed = {token.text: token for tokens in terms.code_groups().values() for token in tokens if token.kind == "code"}
    concepts: dict[tuple[str, str | None], None] = {}
    system = None
    for code in (ndc for item in (*products, *packs) for ndc in item.ndc):
        token = listed.get(code)
        if token is None:
            raise KnowledgeError(f"{source}: NDC {code} is not in the verified terminology")
        system = token.system
        concepts[(code, token.display if token.alone else None)] = None
    if not concepts:
        return valuesets
    return tuple(
        replace(vs, includes=(*vs.includes, Include(system, tuple(concepts)))) if vs.id == drug_vs else vs
        for vs in valuesets
    )


def _includes(tokens: tuple[terminology.CodeToken, ...]) -> list[Include]:
    from fhir_module.engine.clinical.valueset import range_regex

    plain: dict[str, dict[tuple[str, str], None]] = {}
    filters: list[Include] = []
    for token in tokens:
        if token.kind == "code":
            # A display shared by several codes of one cell is verified for none of them in particular.
            plain.setdefault(token.system, {})[(token.text, token.display if token.alone else None)] = None
        elif token.kind == "is-a":
            filters.append(Include(token.system, filter_op="is-a", filter_value=token.parent, comment=token.text))
        else:
            low, high = token.bounds
            filters.append(
                Include(token.system, filter_op="regex", filter_value=range_regex(low, high), comment=f"{low} to {high}")
            )
    return [Include(system, tuple(concepts)) for system, concepts in plain.items()] + filters


def _products(drug: dict[str, Any], source: str, terms: terminology.Terminology) -> tuple[tuple[Product, ...], tuple[Pack, ...]]:
    rows = {row.rxcui: row for row in terms.rxnorm_class(drug["valueset"])}
    products = []
    for spec in drug["products"]:
        row = rows.get(spec["rxnorm"])
        if row is None:
            raise KnowledgeError(f"{source}: product {spec['rxnorm']} is not in rxnorm.csv class {drug['valueset']!r}")
        # The strength is stated twice (here and in the RxNorm name): they must agree.
        if not re.search(rf"\b{spec['strength_mg']:g} MG\b", row.display):
            raise KnowledgeError(f"{source}: product {spec['rxnorm']} is {row.display!r}, not {spec['strength_mg']:g} mg")
        products.append(Product(spec["rxnorm"], row.display, float(spec["strength_mg"]), tuple(spec.get("ndc", []))))
    packs = []
    product_codes = {p.rxnorm for p in products}
    for spec in drug.get("packs", []):
        row = rows.get(spec["rxnorm"])
        if row is None:
            raise KnowledgeError(f"{source}: pack {spec['rxnorm']} is not in rxnorm.csv class {drug['valueset']!r}")
        contents = tuple((item["rxnorm"], int(item["count"])) for item in spec["contents"])
        if not {code for code, _ in contents} <= product_codes:
            raise KnowledgeError(f"{source}: pack {spec['rxnorm']} holds a product that is not listed")
        packs.append(Pack(spec["rxnorm"], row.display, contents, tuple(spec.get("ndc", []))))
    return tuple(products), tuple(packs)


# The engine functions whose quoted arguments name value sets.
_VALUESET_ARGUMENT = re.compile(
    r"\b(?:medicationMatch|therapies|conditions|allergies|conceptIn|resolveIn|latestObservation"
    r"|latestObservationWithValue|bloodPressure|renalFunction|renalNotUsed)\(([^)]*)\)"
)
_QUOTED = re.compile(r"'([^']*)'")


def valueset_names(expression: str) -> list[str]:
    """The value sets an expression names (the quoted arguments of the engine's value-set functions)."""
    return [name for call in _VALUESET_ARGUMENT.finditer(expression) for name in _QUOTED.findall(call.group(1))]


def map_valuesets(expression: str, rename: Callable[[str], str]) -> str:
    """The expression with each value set it names replaced by `rename(name)` (e.g. its canonical URL)."""

    def call(match: re.Match[str]) -> str:
        start = match.start(1) - match.start()
        arguments = _QUOTED.sub(lambda q: "'" + rename(q.group(1)) + "'", match.group(1))
        return match.group()[:start] + arguments + match.group()[match.end(1) - match.start():]

    return _VALUESET_ARGUMENT.sub(call, expression)


def _check_valuesets(expression: str, vs_ids: set[str], where: str, source: str) -> None:
    for name in valueset_names(expression):
        if name not in vs_ids:
            raise KnowledgeError(f"{source}: {where}: unknown value set {name!r}")


def _order_kind(spec: dict[str, Any], checker: _Checker, vs_ids: set[str]) -> OrderKind:
    where = f"order_kinds.{spec['id']}"
    facts = []
    for fact in spec.get("facts", []):
        checker.no_number_literals(fact["expression"], f"{where}.{fact['name']}")
        checker.no_bare_boolean_filters(fact["expression"], f"{where}.{fact['name']}")
        _check_valuesets(fact["expression"], vs_ids, f"{where}.{fact['name']}", checker.source)
        note = fact.get("note", {})
        facts.append(Fact(fact["name"], fact["expression"], note.get("when"), note.get("text")))
    _check_valuesets(spec["match"], vs_ids, where, checker.source)
    notes = tuple(Note(n["when"], n["text"]) for n in spec.get("notes", []))
    return OrderKind(spec["id"], spec["title"], spec["match"], tuple(facts), notes)


def _suggestion(spec: dict[str, Any] | None) -> Suggestion | None:
    if spec is None:
        return None
    return Suggestion(
        spec["type"], spec["label"], spec.get("dose"), spec.get("target"), spec.get("targets"),
        tuple(spec.get("unless_topics", ())), spec.get("days"), spec.get("then_dose"),
    )


def _rule(spec: dict[str, Any], checker: _Checker, vs_ids: set[str], kinds: set[str], topics: set[str]) -> Rule:
    where = f"rule {spec['id']}"
    if spec["order_kind"] not in kinds:
        raise KnowledgeError(f"{checker.source}: {where}: unknown order_kind {spec['order_kind']!r}")
    if spec["topic"] not in topics:
        raise KnowledgeError(f"{checker.source}: {where}: topic {spec['topic']!r} is not in topics")
    quote = checker.quote(spec["quote"], where)
    parameters = []
    for name, param in (spec.get("parameters") or {}).items():
        if param["source"] == "monograph":
            checker.number_in_quote(float(param["value"]), quote, f"{where}.parameters.{name}")
        parameters.append(Parameter(name, float(param["value"]), param["source"], param.get("why")))
    variables = tuple((spec.get("variables") or {}).items())
    expressions = [*variables, ("condition", spec["condition"])]
    expressions += [(name, spec[name]) for name in ("involves",) if name in spec]
    expressions += [(f"notes[{i}].when", note["when"]) for i, note in enumerate(spec.get("notes", []))]
    for suggestion in [spec.get("suggestion") or {}, *spec.get("extra_suggestions", [])]:
        expressions += [(f"suggestion.{key}", suggestion[key])
                        for key in ("dose", "target", "targets", "days", "then_dose") if key in suggestion]
    for name, expression in expressions:
        checker.no_bare_boolean_filters(expression, f"{where}.{name}")
        checker.no_number_literals(expression, f"{where}.{name}")
        _check_valuesets(expression, vs_ids, f"{where}.{name}", checker.source)
    return Rule(
        id=spec["id"],
        topic=spec["topic"],
        order_kind=spec["order_kind"],
        indicator=spec["indicator"],
        title=spec["title"],
        description=spec["description"],
        condition=spec["condition"],
        quote=quote,
        parameters=tuple(parameters),
        variables=variables,
        summary=spec.get("summary"),
        detail=spec.get("detail"),
        reason=spec.get("reason"),
        suggestion=_suggestion(spec.get("suggestion")),
        extra_suggestions=tuple(_suggestion(s) for s in spec.get("extra_suggestions", [])),
        involves=spec.get("involves"),
        also_quote=checker.quote(spec["also_quote"], f"{where}.also_quote") if "also_quote" in spec else None,
        notes=tuple(Note(note["when"], note["text"]) for note in spec.get("notes", [])),
    )
