"""Module folders: a module is read from its folder (knowledge, monograph, terminology overlay, cases)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fhir_module.fhir.valuesets import build_valuesets
from fhir_module.knowledge import KnowledgeError, builtin_module_dir, builtin_module_dirs, case_files, load_knowledge

LEVO = builtin_module_dir("levomilnacipran")


@pytest.fixture
def module(tmp_path: Path) -> Path:
    """A copy of the levomilnacipran module outside the package."""
    return Path(shutil.copytree(LEVO, tmp_path / "levo-copy", ignore=shutil.ignore_patterns("cases")))


def _add_overlay_rows(folder: Path, name: str, header: str, rows: str) -> None:
    """Rows added to the module's terminology overlay (the copied module may have one already)."""
    path = folder / "terminology" / name
    path.parent.mkdir(exist_ok=True)
    existing = path.read_text("utf-8") if path.exists() else header
    path.write_text(existing + rows, encoding="utf-8")


def _add_valueset(folder: Path, line: str) -> None:
    path = folder / "knowledge.yaml"
    text = path.read_text("utf-8")
    path.write_text(text.replace("valuesets:\n", f"valuesets:\n  - {line}\n", 1), encoding="utf-8")


def test_the_built_in_modules_are_folders_with_cases() -> None:
    assert LEVO in builtin_module_dirs()
    assert (LEVO / "knowledge.yaml").is_file() and (LEVO / "levomilnacipran.md").is_file()
    assert len(case_files(LEVO)) >= 250
    assert {path.parent.name for path in case_files(LEVO)} == {"public", "own", "ehr"}


def test_a_module_loads_from_anywhere_by_folder_or_knowledge_file(module: Path) -> None:
    by_folder = load_knowledge(module)
    by_file = load_knowledge(module / "knowledge.yaml")
    assert by_folder.folder == by_file.folder == module
    assert by_folder.monograph.text == (LEVO / "levomilnacipran.md").read_text("utf-8")
    assert case_files(module) == []


def test_a_missing_monograph_is_a_knowledge_error_naming_the_file(module: Path) -> None:
    (module / "levomilnacipran.md").unlink()
    with pytest.raises(KnowledgeError, match=r"levomilnacipran\.md: cannot read"):
        load_knowledge(module)


def test_a_terminology_overlay_adds_codes_with_their_source(module: Path) -> None:
    _add_overlay_rows(module, "codes.csv", "group,system,code,display,verified,source\n",
                      "overlay_group,http://snomed.info/sct,0000001,Made-up test condition,yes,a test fixture\n")
    _add_valueset(module, "{id: overlay-test, title: Overlay test, group: overlay_group}")
    knowledge = load_knowledge(module)
    vs = next(r for r in build_valuesets(knowledge, "R4") if r["id"].endswith("overlay-test"))
    assert vs["compose"]["include"] == [{"system": "http://snomed.info/sct",
                                         "concept": [{"code": "0000001", "display": "Made-up test condition"}]}]
    # The shared terminology is unchanged for every other module.
    assert "overlay_group" not in load_knowledge(LEVO).terminology.code_groups()


def test_an_overlay_row_without_a_source_is_refused_with_its_line(module: Path) -> None:
    _add_overlay_rows(module, "rxnorm.csv", "class,ingredient,rxcui,tty,display,source\n",
                      "test_class,testdrug,999999901,IN,testdrug,a test fixture\n"
                      "test_class,testdrug,999999902,SCD,testdrug 5 MG Oral Tablet,\n")
    with pytest.raises(KnowledgeError, match=r"rxnorm\.csv:3: empty source"):
        load_knowledge(module)


def test_an_overlay_that_renames_a_shared_code_is_refused(module: Path) -> None:
    _add_overlay_rows(module, "codes.csv", "group,system,code,display,verified,source\n",
                      "esrd,http://snomed.info/sct,46177005,Chronic kidney disease,yes,somewhere\n")
    with pytest.raises(KnowledgeError, match=r"codes\.csv:\d+: .*46177005 is 'End-stage renal disease'"):
        load_knowledge(module)


def test_a_display_shared_by_several_codes_of_a_cell_is_not_given_to_each() -> None:
    """A code carries a display only when the terminology verifies it for that code (issue 7)."""
    knowledge = load_knowledge(LEVO)
    valuesets = {r["id"]: r for r in build_valuesets(knowledge, "R4")}
    tachy = next(vs for vs_id, vs in valuesets.items() if vs_id.endswith("tachyarrhythmia"))
    icd = next(i for i in tachy["compose"]["include"] if i["system"].endswith("icd-10-cm"))
    assert [c.get("display") for c in icd["concept"]] == [None] * 8
    snomed = next(i for i in tachy["compose"]["include"] if i["system"] == "http://snomed.info/sct")
    assert snomed["concept"] == [{"code": "3424008", "display": "Tachycardia"}]
    mi = next(vs for vs_id, vs in valuesets.items() if vs_id.endswith("acute-myocardial-infarction"))
    for include in mi["compose"]["include"]:
        for concept in include.get("concept", []):
            assert concept["code"] != "I21.A1" or "display" not in concept


def test_a_value_set_of_names_only_has_an_empty_expansion_and_no_compose(module: Path) -> None:
    """Members without a verified code are recognised by name; the exported ValueSet says it holds no code."""
    _add_valueset(module, "{id: names-only-test, title: Names only, names: [made-up condition, another name]}")
    knowledge = load_knowledge(module)
    vs = next(r for r in build_valuesets(knowledge, "R4") if r["id"].endswith("names-only-test"))
    assert "compose" not in vs
    assert vs["expansion"] == {"timestamp": knowledge.module["date"], "total": 0}
    assert [e["valueString"] for e in vs["extension"]] == ["made-up condition", "another name"]


def test_the_module_usage_is_the_manifest_library_usage(module: Path) -> None:
    from fhir_module.fhir.bundle import build_resources

    path = module / "knowledge.yaml"
    path.write_text(path.read_text("utf-8").replace("  version:", "  usage: 'Recognised by name only: nothing.'\n  version:", 1),
                    encoding="utf-8")
    library = next(r for r in build_resources(load_knowledge(module), "R4") if r["resourceType"] == "Library")
    assert library["usage"] == "Recognised by name only: nothing."
