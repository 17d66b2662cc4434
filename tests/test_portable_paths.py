"""No test, benchmark, CI script or package module names an absolute path outside the repository.

A path to one machine's virtual environment passes on the machine that wrote it and fails on every
fresh clone; tools are found from the running interpreter (`sys.executable`, `shutil.which`).
"""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHECKED = ["tests", "benchmarks", "fhir_module", ".ci", "pyproject.toml"]
SUFFIXES = {".py", ".sh", ".toml", ".lua", ".js", ".cfg", ".ini", ""}
# A quoted string that starts with a machine-specific root (system paths such as /usr/bin are allowed:
# they are the documented place of Debian's tools, e.g. /usr/bin/chromium).
ABSOLUTE = re.compile(r"""["'](/(?:work|root|home|tmp|Users)(?:/[^"'\s]*)?)["']""")


def _files() -> list[Path]:
    found = []
    for name in CHECKED:
        path = REPO / name
        candidates = [path] if path.is_file() else path.rglob("*")
        for file in candidates:
            if (file.is_file() and file.suffix in SUFFIXES and "node_modules" not in file.parts
                    and "__pycache__" not in file.parts and file != Path(__file__).resolve()):
                found.append(file)
    return found


def test_no_absolute_paths_outside_the_repository():
    offenders = []
    for file in _files():
        try:
            text = file.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for match in ABSOLUTE.finditer(line):
                offenders.append(f"{file.relative_to(REPO)}:{number}: {match.group(1)}")
    assert not offenders, "absolute paths outside the repository:\n" + "\n".join(offenders)


def test_the_guard_finds_what_it_looks_for():
    # The samples are put together here, so that this file names no such path itself.
    for root in ("work", "root", "home", "tmp", "Users"):
        assert ABSOLUTE.search(f'FHIR_MODULE = Path("/{root}/venv/bin/fhir-module")'), root
        assert ABSOLUTE.search(f"x = '/{root}/data.json'"), root
    assert not ABSOLUTE.search('executable_path="/usr/bin/chromium"')
    assert not ABSOLUTE.search('url = "/cds-services/x"')
