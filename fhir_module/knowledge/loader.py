"""Load a module's knowledge file and check it against its schema, its terminology and its monograph.

Provenance is checked, not claimed: a quoted sentence that is no longer in the monograph, a
monograph-sourced number that is not in its sentence, a numeric literal hidden in an expression,
or a code that is not in the verified terminology all stop the build. Anything the knowledge file
cannot express is a KnowledgeError naming the file and line, never a Python exception.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import jsonschema

try:  # compiled and fast: knowledge files are checked at every start
    import jsonschema_rs
except ImportError:  # pragma: no cover - a declared dependency, but the slow path is exact too
    jsonschema_rs = None

from fhir_module.monograph import Monograph, MonographError, parse_monograph_once

from . import terminology
from .codes import build_products, build_valueset, with_package_codes
from .model import Knowledge
from .modules import TERMINOLOGY_DIR, knowledge_file, module_dir
from .provenance import Provenance
from .references import map_valuesets, valueset_names
from .rules import RuleReader
from .source import SAFE_LOADER, KnowledgeError, KnowledgeUnreadable, Located

__all__ = ["KnowledgeError", "SAFE_LOADER", "build_knowledge", "load_knowledge", "map_valuesets", "valueset_names"]


def load_knowledge(path: str | Path, *, monograph_text: str | None = None) -> Knowledge:
    """Read and check a module: its folder, or its knowledge file (the monograph, terminology overlay
    and cases sit beside it). `monograph_text` replaces the module's monograph (for tests)."""
    path = knowledge_file(path)
    located = Located.read(path)
    return _build(located, monograph_text, module_dir(path))


def build_knowledge(data: Any, *, monograph_text: str | None = None, source: str = "<knowledge>",
                    folder: Path | None = None) -> Knowledge:
    """Check parsed knowledge (no line numbers); `folder` is its module folder (monograph, terminology)."""
    return _build(Located(data, source), monograph_text, folder)


@cache
def _schema() -> dict[str, Any]:
    text = resources.files("fhir_module.data.knowledge").joinpath("knowledge.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def _validator() -> jsonschema.Draft202012Validator:
    # Only to say what is wrong with a file the compiled validator refused: not imported at start.
    import jsonschema

    return jsonschema.Draft202012Validator(_schema())


@cache
def _fast_validator() -> Any:
    """The compiled validator (jsonschema_rs) that says whether there is anything to explain."""
    return jsonschema_rs.validator_for(_schema()) if jsonschema_rs is not None else None


def _schema_errors(located: Located) -> None:
    fast = _fast_validator()
    if fast is not None and fast.is_valid(located.data):
        return  # the usual case; the detailed walk below only runs to say what is wrong
    errors = sorted(_validator().iter_errors(located.data), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return
    # The deepest error says most precisely what is wrong (a oneOf's branch, not the whole rule).
    error = max(errors, key=lambda e: len(e.absolute_path))
    path = list(error.absolute_path)
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        # Point at the field that is not in the schema, not at the object that holds it.
        path += sorted(set(error.instance) - set(error.schema.get("properties", {})))[:1]
    line = located.path_line(path)
    where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[") or "(top)"
    raise KnowledgeError(f"{located.source}{f':{line}' if line else ''}: {where}: {_message(error)}")


def _message(error: jsonschema.ValidationError) -> str:
    if error.validator == "additionalProperties":
        return f"{error.message} (not a field of the knowledge schema)"
    if error.validator in ("oneOf", "anyOf") and error.schema.get("description"):
        return f"{error.message}: {error.schema['description']}"
    return error.message


def _build(located: Located, monograph_text: str | None, folder: Path | None) -> Knowledge:
    _schema_errors(located)
    data = located.data
    monograph = _monograph(data["module"], monograph_text, folder, located)
    terms = terminology.shared()
    if folder is not None:
        try:
            terms = terms.with_overlay(folder / TERMINOLOGY_DIR)
        except terminology.TerminologyError as error:
            raise KnowledgeError(str(error)) from error
    provenance = Provenance(monograph, located)
    _unique(located, data["valuesets"], "id", "value set id")
    valuesets = tuple(build_valueset(spec, terms, located) for spec in data["valuesets"])
    vs_ids = {vs.id for vs in valuesets}
    drug = data["drug"]
    _known_valuesets(located, drug, vs_ids)
    products, packs = build_products(drug, next(vs for vs in valuesets if vs.id == drug["valueset"]), terms, located)
    valuesets = with_package_codes(valuesets, drug, products, packs, terms, located)
    quotes = provenance.drug_quotes(drug)
    _frequency_is_quoted(located, drug["dosing"]["frequency"], quotes)
    titration = drug["dosing"].get("titration")
    reader = RuleReader(provenance, located, vs_ids, {topic["code"] for topic in data["topics"]},
                        len(titration["steps"]) if titration else None)
    _unique(located, data["order_kinds"], "id", "order kind id")
    order_kinds = tuple(reader.order_kind(kind) for kind in data["order_kinds"])
    _unique(located, data["rules"], "id", "rule id")
    rules = tuple(reader.rule(rule, {kind.id for kind in order_kinds}) for rule in data["rules"])
    merged = reader.merged_topics(data.get("merged_topics") or {}, rules, data["rules"])
    _unique(located, data["topics"], "code", "topic")
    _unique(located, data["override_reasons"], "code", "override reason")
    return Knowledge(
        module=data["module"],
        drug=drug,
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


def _monograph(module: dict[str, Any], text: str | None, folder: Path | None, located: Located) -> Monograph:
    name = module["monograph"]["file"]
    path = (folder / name) if folder is not None else Path(name)
    if text is None:
        if folder is None:
            raise located.error(module["monograph"], "module.monograph.file", f"{name}: no module folder to read it from")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise KnowledgeUnreadable(f"monograph {path}: cannot read: {error}") from error
    try:
        return parse_monograph_once(text, str(path))  # the same one for modules and checks
    except MonographError as error:
        raise KnowledgeError(f"monograph {error}") from error


def _unique(located: Located, items: list[dict[str, Any]], key: str, what: str) -> None:
    seen: set[Any] = set()
    for item in items:
        if item[key] in seen:
            raise located.error(item, what, f"{item[key]!r} is defined twice", key)
        seen.add(item[key])


def _known_valuesets(located: Located, drug: dict[str, Any], vs_ids: set[str]) -> None:
    """Every value set the drug facts name is defined."""
    named = [(drug, "drug", "valueset")]
    dosing = drug["dosing"]
    if "renal" in dosing:
        named.append((dosing["renal"]["measure"], "drug.dosing.renal.measure", "valueset"))
        named += [(band, f"drug.dosing.renal.bands[{i}]", "valueset") for i, band in enumerate(dosing["renal"]["bands"])]
    for group in ("co_medication", "hepatic", "conditions"):
        named += [(item, f"drug.dosing.{group}[{i}]", "valueset") for i, item in enumerate(dosing.get(group, []))]
    for node, where, key in named:
        if key in node and node[key] not in vs_ids:
            raise located.error(node, where, f"value set {node[key]!r} is not defined in valuesets", key)


def _frequency_is_quoted(located: Located, frequency: dict[str, Any], quotes: dict[str, Any]) -> None:
    sentence = quotes["dosing.frequency"].sentence.text
    if frequency["text"].lower() not in sentence.lower():
        raise located.error(frequency, "drug.dosing.frequency", f"{frequency['text']!r} is not in its quoted sentence: "
                            f"{sentence!r}", "text")
