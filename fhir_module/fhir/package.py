"""The module as a FHIR NPM package: `package/package.json`, `package/.index.json`, one file per resource.

`write_package(k, version, DIR)` writes the folder `DIR/package/`, the layout inside a FHIR package
tarball, and that tarball itself, `DIR/<name>-<version>.tgz`, which FHIR tools (SUSHI, the IG
publisher, validators, a FHIR server's package loader) take as it is. An earlier export in
`DIR/package/` is replaced; any other non-empty folder is left alone and reported, so an export never
deletes files it did not write.

The R4 package also carries the module's conformance resources (the profiles its artifacts declare in
`meta.profile`, their extensions and bound value sets), so a validator that loads the package can
check the artifacts against them. Those profiles are R4; R5 artifacts declare none (bundle.py).
`package/tests/` holds the module's own test cases (its `cases/` folder), so that
`fhir-module test --package DIR` can run them wherever the package goes.
"""

from __future__ import annotations

import gzip
import io
import json
import shutil
import tarfile
from pathlib import Path
from typing import Any, Sequence

from fhir_module.knowledge import Knowledge, case_files
from fhir_module.knowledge.modules import CASES_DIR, PACKAGE_CASES_DIR, module_dir

from .bundle import build_resources, conformance_resources, dumps
from .canonical import BASE
from .common import FHIR_VERSIONS

PACKAGE_PREFIX = "fhir-module."
CASES_FOLDER = PACKAGE_CASES_DIR
CORE_PACKAGES = {"R4": "hl7.fhir.r4.core", "R5": "hl7.fhir.r5.core"}


class PackageError(RuntimeError):
    """The package folder cannot be written (occupied by other files, or an I/O error)."""


def package_name(knowledge: Knowledge, version: str) -> str:
    """`fhir-module.<module id>.r4` / `.r5`: one package per FHIR version, as HL7 names its own."""
    return f"{PACKAGE_PREFIX}{knowledge.module['id']}.{version.lower()}"


def resource_filename(resource: dict[str, Any]) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def package_manifest(knowledge: Knowledge, version: str) -> dict[str, Any]:
    module = knowledge.module
    return {
        "name": package_name(knowledge, version),
        "version": module["version"],
        "title": module["title"],
        "description": module.get("description", module["title"]),
        "author": module["publisher"],
        "canonical": BASE,
        "fhirVersions": [FHIR_VERSIONS[version]],
        "dependencies": {CORE_PACKAGES[version]: FHIR_VERSIONS[version]},
    }


def package_index(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """`.index.json` (index-version 2): what each file holds, so tools need not open them all."""
    files = []
    for resource in resources:
        entry: dict[str, Any] = {
            "filename": resource_filename(resource),
            "resourceType": resource["resourceType"],
            "id": resource["id"],
        }
        for key in ("url", "version"):
            if isinstance(resource.get(key), str):
                entry[key] = resource[key]
        if resource["resourceType"] == "StructureDefinition":
            for key in ("kind", "type", "derivation"):
                if key in resource:
                    entry[key] = resource[key]
        if resource["resourceType"] == "CodeSystem" and "content" in resource:
            entry["content"] = resource["content"]
        files.append(entry)
    return {"index-version": 2, "files": files}


def _prepare(folder: Path) -> None:
    """Empty a previous export of ours; refuse a folder that holds anything else."""
    if not folder.exists():
        folder.mkdir(parents=True)
        return
    if not folder.is_dir():
        raise PackageError(f"{folder} exists and is not a folder")
    entries = list(folder.iterdir())
    if not entries:
        return
    manifest = folder / "package.json"
    ours = False
    if manifest.is_file():
        try:
            ours = str(json.loads(manifest.read_text("utf-8")).get("name", "")).startswith(PACKAGE_PREFIX)
        except (ValueError, OSError, AttributeError):
            ours = False
    foreign = [e for e in entries if not (e.is_file() and e.suffix == ".json")
               and not (e.name == CASES_FOLDER and e.is_dir())]
    if not ours or foreign:
        raise PackageError(f"{folder} is not empty and does not hold an earlier export of this module; "
                           "choose an empty or new folder")
    for entry in entries:
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()


def _write_cases(knowledge: Knowledge, target: Path) -> None:
    """The module's own test cases, as they are in its `cases/` folder: the package proves itself
    (`fhir-module test --package DIR`)."""
    source = module_dir(knowledge.folder) / CASES_DIR if knowledge.folder else None
    for path in case_files(knowledge.folder) if knowledge.folder else []:
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(path.read_bytes())


def write_packages(modules: Sequence[Knowledge], version: str, directory: str | Path) -> list[Path]:
    """One module: `directory/package/`; several: `directory/<module id>/package/` each."""
    if len(modules) == 1:
        return [write_package(modules[0], version, directory)]
    return [write_package(knowledge, version, Path(directory) / knowledge.module["id"]) for knowledge in modules]


def write_package(knowledge: Knowledge, version: str, directory: str | Path) -> Path:
    """Write the package under `directory/package/` and return that folder."""
    resources = build_resources(knowledge, version)
    taken = {(r["resourceType"], r["id"]) for r in resources}
    for definition in conformance_resources(version):
        if (definition["resourceType"], definition["id"]) in taken:
            raise PackageError(f"{definition['resourceType']}/{definition['id']} is both an artifact and a profile resource")
        resources.append(definition)
    resources.sort(key=lambda r: (r["resourceType"], r["id"]))
    folder = Path(directory) / "package"
    try:
        _prepare(folder)
        (folder / "package.json").write_text(dumps(package_manifest(knowledge, version)), encoding="utf-8")
        (folder / ".index.json").write_text(dumps(package_index(resources)), encoding="utf-8")
        for resource in resources:
            (folder / resource_filename(resource)).write_text(dumps(resource), encoding="utf-8")
        _write_cases(knowledge, folder / CASES_FOLDER)
        tarball = Path(directory) / f"{package_name(knowledge, version)}-{knowledge.module['version']}.tgz"
        tarball.write_bytes(package_tarball(folder))
    except OSError as error:
        raise PackageError(f"cannot write the package in {folder}: {error}") from error
    return folder


def package_tarball(folder: Path) -> bytes:
    """The folder as a FHIR package tarball (`package/...` inside a .tgz), byte for byte the same
    for the same files: sorted names, no owners, no timestamps."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted((p for p in folder.rglob("*") if p.is_file()), key=lambda p: p.relative_to(folder).as_posix()):
            data = path.read_bytes()
            info = tarfile.TarInfo(f"package/{path.relative_to(folder).as_posix()}")
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)
