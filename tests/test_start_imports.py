"""What each command loads at start: only what it uses (issue 10, one-off times).

A fresh interpreter imports the command's code and the test looks at `sys.modules`: the service
does not load the validator's layers ($validate runs them in worker processes), the JSON Schema
library that only explains a refused knowledge file, PyJWT without trusted clients, httpx without a
server to fetch from, the package writer, nor fhirpathpy and ANTLR (used only for expressions outside
what the service compiles and parses itself), let alone fhirpathpy's models of every FHIR version.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from fhir_module.engine.fhirpath.typepaths import R4_MODEL


def loaded_after(code: str, env: dict[str, str] | None = None) -> set[str]:
    script = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True,
                            env=env)
    return set(json.loads(result.stdout.splitlines()[-1]))


SERVE = """
from fhir_module.api.server import serve_command
from fhir_module.api.app import create_app, load_engine
from fhir_module.config import load_settings
from fhir_module.api.server import self_test
import argparse
settings = load_settings()
engine = load_engine(settings)
assert self_test(engine, settings, argparse.Namespace(skip_self_test=False)) == 0
create_app(settings, engine)
"""


@pytest.fixture(scope="module")
def serve_modules(tmp_path_factory) -> set[str]:
    folder = tmp_path_factory.mktemp("serve")
    env = {name: value for name, value in os.environ.items() if not name.startswith("FHIR_MODULE_")}
    return loaded_after(SERVE, {**env, "FHIR_MODULE_DATABASE_URL": f"sqlite:///{folder}/feedback.sqlite3"})


@pytest.mark.parametrize("module", [
    "fhir_module.validation.validator",  # $validate's layers: in its worker processes only
    "jsonschema",  # explains a refused knowledge file; the compiled validator says whether it is valid
    "jwt",  # without trusted clients no JWT is verified
    "cryptography",
    "httpx",  # without trusted clients or allowed FHIR servers nothing is fetched
    "rich",  # httpx's command line loads it
    "tarfile",  # the package writer's
    "fhirpathpy.models",  # every FHIR version's model; the engine evaluates R4
    # The built-in knowledge's expressions are parsed by the hand-written parser and run compiled;
    # the function table is read from its written copy: fhirpathpy evaluates only what the compiled
    # code leaves to it, and ANTLR parses only what the hand-written parser leaves to it.
    "fhirpathpy",
    "antlr4",
    "tomllib",  # reads a configuration file; the service was given none
])
def test_the_service_starts_without(serve_modules: set[str], module: str) -> None:
    assert "fhir_module.api.app" in serve_modules and "fhir_module.selftest" in serve_modules
    assert module not in serve_modules


def test_with_trusted_clients_pyjwt_is_loaded_at_start(tmp_path) -> None:
    # Not by the first authenticated call: the import belongs to the start, not to a request.
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps([{"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks"}]))
    code = f"""
import os
os.environ["FHIR_MODULE_TRUSTED_CLIENTS"] = {str(clients)!r}
os.environ["FHIR_MODULE_DATABASE_URL"] = "sqlite:///{tmp_path}/feedback.sqlite3"
from fhir_module.api.app import create_app
from fhir_module.config import load_settings
settings = load_settings()
assert settings.auth_enabled
create_app(settings)
"""
    assert "jwt" in loaded_after(code)


@pytest.mark.parametrize("setting", ["trusted clients", "allowed FHIR servers"])
def test_with_something_to_fetch_from_httpx_is_loaded_at_start(tmp_path, setting: str) -> None:
    clients = tmp_path / "clients.json"
    clients.write_text(json.dumps([{"iss": "https://ehr.example.org", "jwks_url": "https://ehr.example.org/jwks"}]))
    variable, value = (("FHIR_MODULE_TRUSTED_CLIENTS", str(clients)) if setting == "trusted clients"
                       else ("FHIR_MODULE_ALLOWED_FHIR_SERVERS", "https://ehr.example.org/fhir"))
    code = f"""
import os
os.environ[{variable!r}] = {value!r}
os.environ["FHIR_MODULE_DATABASE_URL"] = "sqlite:///{tmp_path}/feedback.sqlite3"
from fhir_module.api.app import create_app
from fhir_module.config import load_settings
create_app(load_settings())
"""
    assert "httpx" in loaded_after(code)


def test_the_r4_model_is_fhirpathpys() -> None:
    from fhirpathpy.models import models

    assert R4_MODEL == models["r4"]


def test_validating_valid_content_does_not_load_the_error_explainer(tmp_path) -> None:
    # jsonschema only explains what the compiled validator refused; a refused resource still gets it.
    valid = tmp_path / "patient.json"
    valid.write_text(json.dumps({"resourceType": "Patient", "id": "p", "birthDate": "1970-01-01"}))
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({"resourceType": "Patient", "id": "p", "birthDate": "someday"}))
    code = """
import argparse, io
from fhir_module.validation.cli import validate_command
def run(path):
    out = io.StringIO()
    status = validate_command(argparse.Namespace(files=[path], profile=None, fhir_version=None, verbose=False,
                                                 format="text", allow_draft=False), out=out)
    return status, out.getvalue()
"""
    assert "jsonschema" not in loaded_after(code + f"assert run({str(valid)!r})[0] == 0")
    assert "jsonschema" in loaded_after(code + f"status, text = run({str(invalid)!r})\n"
                                               "assert status == 1 and 'is not a valid date' in text, text")


def test_validating_does_not_load_the_serving_engine(tmp_path) -> None:
    # The knowledge layer checks with engine.knowledgecheck and engine.fhirpath; the package's
    # __init__ no longer loads the engine that serves (knowledge base, service) for them.
    bundle = tmp_path / "bundle.json"
    subprocess.run([sys.executable, "-m", "fhir_module.cli", "export", "-o", str(bundle)], check=True, timeout=120)
    code = f"""
import argparse, io
from fhir_module.validation.cli import validate_command
status = validate_command(argparse.Namespace(files=[{str(bundle)!r}], profile=None, fhir_version=None, verbose=False,
                                             format="text", allow_draft=False), out=io.StringIO())
assert status == 0, status
"""
    loaded = loaded_after(code)
    assert "fhir_module.engine.knowledgecheck" in loaded
    assert not {"fhir_module.engine.service", "fhir_module.engine.knowledgebase", "fhir_module.engine.apply"} & loaded


def test_the_engine_package_gives_its_names_on_first_use() -> None:
    code = """
import sys
import fhir_module.engine as engine
assert "fhir_module.engine.service" not in sys.modules
from fhir_module.engine import Engine, KnowledgeBase, KnowledgeLoadError, RequestError
from fhir_module.engine.service import Engine as defined
assert Engine is defined and engine.Engine is defined
try:
    engine.Nothing
except AttributeError:
    pass
else:
    raise AssertionError("engine.Nothing")
"""
    loaded_after(code)
