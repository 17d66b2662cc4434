"""How the knowledge is read fast: libyaml when PyYAML has it, the terminology indexed once; the
answers must be the plain ways' (the pure-Python loader, a scan of the rows)."""

from __future__ import annotations

import yaml

from fhir_module.knowledge import builtin_module_dirs
from fhir_module.knowledge.loader import SAFE_LOADER


def test_every_built_in_knowledge_file_reads_the_same_with_either_loader():
    files = [folder / "knowledge.yaml" for folder in builtin_module_dirs()]
    assert files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert yaml.load(text, Loader=SAFE_LOADER) == yaml.load(text, Loader=yaml.SafeLoader), path


def test_the_fast_loader_is_used_where_pyyaml_has_libyaml():
    assert SAFE_LOADER is (yaml.CSafeLoader if yaml.__with_libyaml__ else yaml.SafeLoader)


def _modules_terminologies():
    from fhir_module.knowledge import load_knowledge, terminology

    return [terminology.shared(), *(load_knowledge(folder).terminology for folder in builtin_module_dirs())]


def test_the_terminology_answers_as_a_scan_of_its_rows():
    # rxnorm_ingredient reads an index built once and code_groups is worked out once: the same
    # answers as reading the rows for every question.
    for terms in _modules_terminologies():
        names = {part for row in terms.rxnorm_rows for part in row.ingredient.split("|") if part}
        for name in sorted(names) + [name.upper() for name in sorted(names)[:20]] + ["", "no such drug", "|"]:
            wanted = name.lower()
            scanned = [row for row in terms.rxnorm_rows
                       if wanted in (part.lower() for part in row.ingredient.split("|") if part)]
            assert terms.rxnorm_ingredient(name) == tuple({row.rxcui: row for row in scanned}.values()), name
        groups: dict[str, list] = {}
        for group, token in terms.code_rows:
            groups.setdefault(group, []).append(token)
        assert dict(terms.code_groups()) == {group: tuple(tokens) for group, tokens in groups.items()}
        assert terms.code_groups() is terms.code_groups()
