"""The knowledge file is read with libyaml when PyYAML has it: the values must be the pure-Python loader's."""

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
