"""The installed fhirpathpy's files, found without importing it (its parser and evaluator load ANTLR).

What is made ahead of time from fhirpathpy's output (its function table, fhirpathpy_functions.py;
the invariants' parse trees, validation/parsed.py) records the digest of the fhirpathpy files that
made it, and is read only while the installed files have that digest: another fhirpathpy is
asked itself, never answered from what an older one made.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path


def package_folder() -> Path | None:
    """The installed fhirpathpy's package folder, or None when it is not installed."""
    spec = importlib.util.find_spec("fhirpathpy")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def digest(part: str) -> str | None:
    """SHA-256 of the installed fhirpathpy's `part` (a '/'-separated path under its package folder):
    of a file's bytes, or of a folder's .py files' bytes one after another, in the order of their
    paths. None when fhirpathpy or the part is not found."""
    folder = package_folder()
    if folder is None:
        return None
    found = folder.joinpath(*part.split("/"))
    files = sorted(found.rglob("*.py")) if found.is_dir() else [found]
    sha = hashlib.sha256()
    try:
        for file in files:
            sha.update(file.read_bytes())
    except OSError:
        return None
    return sha.hexdigest() if files else None
