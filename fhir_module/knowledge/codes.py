"""Value sets and products of a module, from its verified terminology only.

A value set takes RxNorm rows by class or by ingredient (less the ingredients it excludes, or only the
codes it lists), code cells of codes.csv groups (or only some of them), and names that identify a
member when an order carries no verified code; a value set may be names alone (a drug class whose
members have no verified code). Products and packs are the RxNorm codes of the drug's own value set.
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import Any

from . import terminology
from .model import Include, Pack, Product, ValueSetDef
from .source import Located


def build_valueset(spec: dict[str, Any], terms: terminology.Terminology, located: Located) -> ValueSetDef:
    where = f"value set {spec['id']}"
    includes: list[Include] = []
    names = list(spec.get("names", []))
    rows = _rxnorm_rows(spec, terms, located)
    wanted = set(spec.get("codes", ()))
    if rows is not None:
        if wanted and not {"group", "groups"} & set(spec):
            unknown = wanted - {row.rxcui for row in rows}
            if unknown:
                raise located.error(spec, where, f"RxNorm {sorted(unknown)} not among its rows", "codes")
            rows = tuple(row for row in rows if row.rxcui in wanted)
        concepts: dict[tuple[str, str | None], None] = dict.fromkeys((row.rxcui, row.display) for row in rows)
        for code in spec.get("extra_rxnorm", []):
            if not terms.documented(code):
                raise located.error(spec, where, f"RxNorm {code} is not in the terminology", "extra_rxnorm")
            concepts[(code, None)] = None  # documented by the notes, without a verified display
        includes.append(Include(terminology.RXNORM, tuple(concepts)))
        if spec.get("names_from_class"):
            names += [name for row in rows for name in (*row.ingredients, *filter(None, [_brand(row.display)]))]
    groups = [spec["group"]] if "group" in spec else spec.get("groups", [])
    found_codes: set[str] = set()
    for group in groups:
        tokens = terms.code_groups().get(group)
        if not tokens:
            raise located.error(spec, where, f"no codes.csv group {group!r}", "group" if "group" in spec else "groups")
        found_codes |= {token.text for token in tokens}
        if wanted:
            tokens = tuple(token for token in tokens if token.text in wanted)
        includes.extend(_includes(tokens))
    if groups and wanted - found_codes:
        raise located.error(spec, where, f"{sorted(wanted - found_codes)} not in codes.csv group(s) {groups}", "codes")
    excluded = {name.lower() for name in spec.get("exclude_ingredients", ())}
    names = [name for name in dict.fromkeys(names) if name.lower() not in excluded]
    if not includes and not names:
        raise located.error(spec, where, "has neither codes nor names: it could never match anything")
    return ValueSetDef(spec["id"], spec["title"], tuple(includes), tuple(names))


_BRAND = re.compile(r"\[([^\[\]]+)\]\s*$")
_BRAND_SUFFIX = re.compile(r"\s+(?:\d[\d.]*\s*(?:MG|MCG|ML)\b|Reformulated\b).*$", re.IGNORECASE)


def _brand(display: str) -> str | None:
    """The brand name an RxNorm branded drug or pack names in brackets ("... [Parnate]"), without
    a strength or reformulation note: a text-only order often names the drug by its brand."""
    found = _BRAND.search(display)
    return _BRAND_SUFFIX.sub("", found.group(1)).strip() or None if found else None


def _rxnorm_rows(spec: dict[str, Any], terms: terminology.Terminology, located: Located) -> tuple[terminology.RxNormRow, ...] | None:
    """The RxNorm rows a value set selects (None when it selects none by class or ingredient)."""
    where = f"value set {spec['id']}"
    if "rxnorm_class" not in spec and "rxnorm_ingredients" not in spec:
        return None
    rows: dict[str, terminology.RxNormRow] = {}
    if "rxnorm_class" in spec:
        selected = terms.rxnorm_class(spec["rxnorm_class"])
        if not selected:
            raise located.error(spec, where, f"no rxnorm.csv rows of class {spec['rxnorm_class']!r}", "rxnorm_class")
        rows.update((row.rxcui, row) for row in selected)
    for ingredient in spec.get("rxnorm_ingredients", ()):
        selected = terms.rxnorm_ingredient(ingredient)
        if not selected:
            raise located.error(spec, where, f"no rxnorm.csv rows of ingredient {ingredient!r}", "rxnorm_ingredients")
        rows.update((row.rxcui, row) for row in selected)
    excluded = {name.lower() for name in spec.get("exclude_ingredients", ())}
    for name in excluded:
        if not any(name in (part.lower() for part in row.ingredients) for row in rows.values()):
            raise located.error(spec, where, f"excludes {name!r}, which none of its rows contains", "exclude_ingredients")
    # A combination product that holds an excluded ingredient is left out too.
    return tuple(row for row in rows.values() if not excluded & {part.lower() for part in row.ingredients})


def _includes(tokens: tuple[terminology.CodeToken, ...]) -> list[Include]:
    from fhir_module.engine.clinical.valueset import range_regex

    plain: dict[str, dict[tuple[str, str | None], None]] = {}
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


def build_products(drug: dict[str, Any], drug_valueset: ValueSetDef, terms: terminology.Terminology,
                   located: Located) -> tuple[tuple[Product, ...], tuple[Pack, ...]]:
    """The drug's products (strength checked against the RxNorm name) and packs, all in its value set."""
    listed = {code for include in drug_valueset.includes if include.system == terminology.RXNORM
              for code, _ in include.concepts}
    products = []
    for spec in drug["products"]:
        row = terms.rxnorm_row(spec["rxnorm"])
        if row is None or spec["rxnorm"] not in listed:
            raise located.error(spec, f"product {spec['rxnorm']}",
                                f"is not an RxNorm code of the drug's value set {drug['valueset']!r}", "rxnorm")
        # The strength is stated twice (here and in the RxNorm name): they must agree.
        if not re.search(rf"\b{spec['strength_mg']:g} MG\b", row.display, re.IGNORECASE):
            raise located.error(spec, f"product {spec['rxnorm']}", f"is {row.display!r}, not {spec['strength_mg']:g} mg",
                                "strength_mg")
        products.append(Product(spec["rxnorm"], row.display, float(spec["strength_mg"]), tuple(spec.get("ndc", []))))
    packs = []
    product_codes = {p.rxnorm for p in products}
    for spec in drug.get("packs", []):
        row = terms.rxnorm_row(spec["rxnorm"])
        if row is None or spec["rxnorm"] not in listed:
            raise located.error(spec, f"pack {spec['rxnorm']}",
                                f"is not an RxNorm code of the drug's value set {drug['valueset']!r}", "rxnorm")
        contents = tuple((item["rxnorm"], int(item["count"])) for item in spec["contents"])
        if not {code for code, _ in contents} <= product_codes:
            raise located.error(spec, f"pack {spec['rxnorm']}", "holds a product that is not listed", "contents")
        packs.append(Pack(spec["rxnorm"], row.display, contents, tuple(spec.get("ndc", []))))
    return tuple(products), tuple(packs)


def with_package_codes(valuesets: tuple[ValueSetDef, ...], drug: dict[str, Any], products: tuple[Product, ...],
                       packs: tuple[Pack, ...], terms: terminology.Terminology, located: Located) -> tuple[ValueSetDef, ...]:
    """The drug's value set with the package codes (NDC) of its products and packs: a chart that
    records the drug only by the NDC on the bottle names the same drug (clinical-rules.md)."""
    listed = {token.text: token for tokens in terms.code_groups().values() for token in tokens if token.kind == "code"}
    concepts: dict[tuple[str, str | None], None] = {}
    system = None
    specs = [*drug["products"], *drug.get("packs", [])]
    for spec, item in zip(specs, (*products, *packs)):
        for code in item.ndc:
            token = listed.get(code)
            if token is None:
                raise located.error(spec, f"{type(item).__name__.lower()} {item.rxnorm}",
                                    f"NDC {code} is not in the verified terminology", "ndc")
            system = token.system
            concepts[(code, token.display if token.alone else None)] = None
    if not concepts or system is None:
        return valuesets
    return tuple(
        replace(vs, includes=(*vs.includes, Include(system, tuple(concepts)))) if vs.id == drug["valueset"] else vs
        for vs in valuesets
    )
