"""The `validate` command's model layer in a forked process beside the other layers
(validate(..., model_beside=True), model.check_beside) gives the outcome the layer run in line
gives, over the examples, the corpus and every built-in module's exports; with one CPU it runs in
line; a child that dies is replaced by the layer run in the parent. Each runs in a fresh
interpreter: a process with threads (pytest's may have some) runs the layer in line."""

from __future__ import annotations

import copy
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fhir_module.fhir.bundle import build_bundle
from fhir_module.knowledge import builtin_module_dirs, load_knowledge
from fhir_module.validation import model, wellformed

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.json"))
CORPUS = sorted((ROOT / "tests" / "validation" / "corpus").glob("*/*.json"))

# Counts the children forked (os.register_at_fork: the interpreter's own hook, nothing of ours replaced).
PRELUDE = """
import json, os, sys
from pathlib import Path
forks = []
os.register_at_fork(after_in_parent=lambda: forks.append(1))
from fhir_module.validation import validate
"""


def run(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", PRELUDE + script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def answer(process: subprocess.Popen[str]) -> dict:
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return json.loads(out.splitlines()[-1])


def test_the_same_outcome_beside_as_in_line(tmp_path: Path) -> None:
    exports = []
    for folder in builtin_module_dirs():
        for version in ("R4", "R5"):
            exports.append(tmp_path / f"{folder.name}-{version}.json")
            exports[-1].write_text(json.dumps(build_bundle(load_knowledge(folder), version)), encoding="utf-8")
    script = """
differ, beside = [], 0
for name in sys.argv[1:]:
    data = Path(name).read_bytes()
    before = len(forks)
    outcome = validate(data, model_beside=True)
    beside += len(forks) - before
    if outcome != validate(data):
        differ.append(name)
print(json.dumps({"differ": differ, "beside": beside}))
"""
    files = [str(p) for p in [*EXAMPLES, *CORPUS, *exports]]
    result = answer(run(script, *files))
    assert result["differ"] == []
    # The layer ran beside wherever it runs at all (content without schema errors): most files.
    assert result["beside"] > len(files) / 2, result


def test_with_one_cpu_the_layer_runs_in_line() -> None:
    script = """
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
data = Path(sys.argv[1]).read_bytes()
outcome = validate(data, model_beside=True)
print(json.dumps({"forks": len(forks), "same": outcome == validate(data)}))
"""
    assert answer(run(script, str(EXAMPLES[0]))) == {"forks": 0, "same": True}


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        try:
            stat = (entry / "stat").read_text()
        except (OSError, ValueError):
            continue
        if entry.name.isdigit() and int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="the layer runs beside only with a second CPU")
def test_a_child_killed_is_replaced_by_the_layer_in_line(tmp_path: Path) -> None:
    # A bundle with a model error, so that issues the parent makes itself can be told from none.
    bundle = json.loads(EXAMPLES[0].read_text(encoding="utf-8"))
    del bundle["entry"][0]["resource"]["status"]  # required: the model says so (the schema does not)
    (tmp_path / "bundle.json").write_text(json.dumps(bundle), encoding="utf-8")
    script = """
data = Path(sys.argv[1]).read_bytes()
outcome = validate(data, model_beside=True)
model = [i for i in outcome["issue"] if i["diagnostics"].startswith("[model]")]
print(json.dumps({"forks": len(forks), "same": outcome == validate(data), "model": len(model)}))
"""
    process = run(script, str(tmp_path / "bundle.json"))
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and time.monotonic() < deadline and process.poll() is None:
        for child in _children(process.pid):
            os.kill(child, signal.SIGKILL)  # loading the models takes it a few tenths of a second
            killed = child
        time.sleep(0.001)
    result = answer(process)
    assert killed is not None
    assert result["forks"] == 1 and result["same"] and result["model"] > 0, result


def test_the_layer_changes_nothing_it_checks() -> None:
    # What lets the child check the resource as it was at the fork while the parent goes on.
    for path in [*EXAMPLES, *CORPUS]:
        resource, _ = wellformed.parse(path.read_bytes())
        if resource is None:
            continue
        before = copy.deepcopy(resource)
        model.check(resource, "R5" if "r5" in path.name else "R4")
        assert resource == before, path.name
