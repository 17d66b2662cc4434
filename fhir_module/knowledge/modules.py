"""Module folders: where a module's knowledge, monograph, terminology overlay and test cases live.

A module is a folder::

    knowledge.yaml     what the monograph means (products, value sets, rules); names its monograph
    <name>.md          the monograph, in the template the parser reads (`module.monograph.file`)
    terminology/       optional: extra rows of codes.csv / rxnorm.csv, each with its `source`
    cases/             the module's own test cases (*.json, any depth; tests/scenarios/README.md shape)

The built-in modules are such folders in `fhir_module/modules/`; a user's module can be anywhere.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

KNOWLEDGE_FILE = "knowledge.yaml"
TERMINOLOGY_DIR = "terminology"
CASES_DIR = "cases"
# A module's cases in its FHIR package, beside its artifacts (not FHIR resources: the case shape of
# tests/scenarios/README.md, copied from the module's cases/ folder as they are).
PACKAGE_CASES_DIR = "tests"


def builtin_modules_dir() -> Path:
    return Path(str(resources.files("fhir_module.modules")))


def builtin_module_dirs() -> list[Path]:
    """Every built-in module folder, sorted by name."""
    return sorted(path for path in builtin_modules_dir().iterdir() if (path / KNOWLEDGE_FILE).is_file())


def builtin_module_dir(name: str) -> Path:
    """The built-in module folder called `name`."""
    path = builtin_modules_dir() / name
    if not (path / KNOWLEDGE_FILE).is_file():
        known = ", ".join(p.name for p in builtin_module_dirs())
        raise FileNotFoundError(f"no built-in module {name!r} (built-in: {known})")
    return path


def module_dir(path: str | Path) -> Path:
    """The module folder of `path`: the folder itself, or the folder of its knowledge file."""
    path = Path(path)
    return path.parent if path.is_file() else path


def knowledge_file(path: str | Path) -> Path:
    """The knowledge file of a module folder (or the file itself, when given one)."""
    path = Path(path)
    return path if path.is_file() else path / KNOWLEDGE_FILE


def case_files(path: str | Path) -> list[Path]:
    """The module's test cases: every `*.json` under `cases/`, sorted by path."""
    folder = module_dir(path) / CASES_DIR
    return sorted(folder.rglob("*.json")) if folder.is_dir() else []
