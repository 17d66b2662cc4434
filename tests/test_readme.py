"""The README cannot rot: its commands are the CLI's, its settings the service's, its tour runs.

- Every `fhir-module ...` command line in README.md (code blocks and inline code) is checked
  against the command's own argparse parser: a command line in a code block must parse as written;
  a synopsis (`[--opt]`, `R4|R5`, `...`) or an inline mention must name only subcommands, options
  and choices that exist.
- Every FHIR_MODULE_ variable and TOML key the README names is a setting the service reads.
- The "Your first hour" tour runs, line by line, as a new user would type it: in a temporary
  folder, with the `fhir-module` of this environment, `serve` on a free loopback port, and the
  README's `curl` lines against it and against the real FHIR test server.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from fhir_module import config
from fhir_module.cli import _parser
from tests.api.helpers import free_port, running_service

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
TOUR = "## Your first hour"
SHELL_OPERATORS = {"&&", "||", ";", "|", ">", ">>", "2>", "2>&1", "&", "(", ")"}
SYNOPSIS_MARKS = ("[", "]", "...", "|")


def readme() -> str:
    return README.read_text(encoding="utf-8")


def section(title: str) -> str:
    text = readme()
    start = text.index(title + "\n")
    end = text.find("\n## ", start + len(title))
    return text[start:end if end != -1 else len(text)]


def split_code(text: str) -> tuple[list[str], str]:
    """The lines of code blocks (fenced with ``` or indented by four spaces), and the prose."""
    code, prose, fenced = [], [], False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif fenced or line.startswith("    "):
            if line.strip():
                code.append(line.strip())
        else:
            prose.append(line)
    return code, "\n".join(prose)


def code_lines(text: str) -> list[str]:
    return split_code(text)[0]


def inline_commands(text: str) -> list[str]:
    """Inline code spans of the prose that are `fhir-module` commands (a span may wrap lines)."""
    spans = re.findall(r"`([^`]+)`", split_code(text)[1])
    return [" ".join(span.split()) for span in spans if span.split() and span.split()[0] == "fhir-module"]


def fhir_module_invocations(line: str) -> list[list[str]]:
    """Each `fhir-module ...` command of a shell line, as its words up to the next operator."""
    try:
        words = shlex.split(line, comments=True)
    except ValueError:  # a synopsis with an unbalanced quote is not a shell line
        words = line.split()
    commands = []
    for index, word in enumerate(words):
        if word == "fhir-module" and (index == 0 or words[index - 1] in SHELL_OPERATORS):
            command = []
            for word_after in words[index + 1:]:
                if word_after in SHELL_OPERATORS:
                    break
                command.append(word_after)
            commands.append(command)
    return commands


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def names_exist(words: list[str]) -> list[str]:
    """What a synopsis or an inline mention names that the CLI does not have."""
    parser, rest = _parser(), list(words)
    while rest and rest[0] in subparsers(parser):
        parser = subparsers(parser)[rest.pop(0)]
    if rest and not rest[0].startswith(("-", "[")) and subparsers(parser):
        return [f"no subcommand {rest[0]!r} (has {sorted(subparsers(parser))})"]
    problems = []
    options = parser._option_string_actions
    for index, word in enumerate(rest):
        name = word.strip("[]").split("=", 1)[0].rstrip(".")
        if not name.startswith("-"):
            continue
        if name not in options:
            problems.append(f"{parser.prog}: no option {name}")
            continue
        choices = options[name].choices
        value = word.split("=", 1)[1] if "=" in word else (rest[index + 1] if index + 1 < len(rest) else "")
        value = value.rstrip(".").strip("[]")  # `[--fhir-version R4|R5]...`: a repeatable option
        if choices and "|" in value:
            problems += [f"{parser.prog} {name}: no choice {c!r}" for c in value.split("|") if c not in choices]
    return problems


def parse_error(words: list[str]) -> str | None:
    """argparse's complaint about a concrete command line, or None when it parses."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            _parser().parse_args(words)
    except SystemExit as exit_:
        if exit_.code:
            return stderr.getvalue().strip() or f"exit {exit_.code}"
    return None


def test_every_fhir_module_command_line_in_the_readme_is_one_the_cli_takes() -> None:
    problems, checked = [], 0
    for line in code_lines(readme()):
        for words in fhir_module_invocations(line):
            checked += 1
            if any(mark in word for word in words for mark in SYNOPSIS_MARKS):
                problems += [f"{line}: {problem}" for problem in names_exist(words)]
            elif (error := parse_error(words)) is not None:
                problems.append(f"{line}: {error}")
    for span in inline_commands(readme()):
        for words in fhir_module_invocations(span):
            checked += 1
            problems += [f"`{span}`: {problem}" for problem in names_exist(words)]
    assert checked >= 15, checked  # the extraction found the README's commands
    assert not problems, "\n".join(problems)


def test_the_checks_catch_what_they_look_for() -> None:
    assert parse_error(["export", "--fhir-version", "R6"])
    assert parse_error(["serve", "--colour"])
    assert parse_error(["cards", "examples/requests/order-sign-esrd.json", "--today", "2026-11-26"]) is None
    assert names_exist(["serve", "[--colour]"]) and names_exist(["validate", "[--format", "text|yaml]"])
    assert names_exist(["frobnicate"]) and not names_exist(["feedback", "export", "[--report]"])
    assert fhir_module_invocations("a && fhir-module test -q > out.txt") == [["test", "-q"]]
    assert inline_commands("run `fhir-module cards\nx.json --today 2026-01-01` now\n\n    `code`") == [
        "fhir-module cards x.json --today 2026-01-01"]


def test_every_setting_the_readme_names_is_one_the_service_reads() -> None:
    known = {value for name, value in vars(config).items() if name.startswith("ENV_")}
    named = set(re.findall(r"\bFHIR_MODULE_[A-Z_]+\b", readme()))
    assert named and not named - known, f"not settings of fhir_module.config: {sorted(named - known)}"
    configuration = readme()[readme().index("Configuration: a TOML file"):]
    keys = re.findall(r"`([a-z_]+)`", configuration[:configuration.index("environment variables")])
    assert keys and not set(keys) - config._TOML_KEYS, sorted(set(keys) - config._TOML_KEYS)


def test_the_services_prefetch_only_what_the_sandbox_fills() -> None:
    """The tour says every prefetch template uses only {{context.patientId}}."""
    from fhir_module.engine import Engine

    tokens = {token for service in Engine.default().services()
              for template in service.get("prefetch", {}).values()
              for token in re.findall(r"\{\{\s*([^}]+?)\s*\}\}", template)}
    assert tokens == {"context.patientId"}


def run(line: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", line], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_tour_runs_as_written(tmp_path: Path, fhir_server: Any) -> None:
    lines = code_lines(section(TOUR))
    scripts = str(Path(sys.executable).parent)
    env = {name: value for name, value in os.environ.items() if not name.startswith("FHIR_MODULE_")}
    env.update(PATH=f"{scripts}{os.pathsep}{env.get('PATH', '')}", FHIR_BASE=fhir_server.base_url)
    (tmp_path / "examples").symlink_to(REPO / "examples", target_is_directory=True)
    install = code_lines(readme())[0]  # the README's first command
    port = free_port()
    with contextlib.ExitStack() as stack:
        service: str | None = None
        for line in lines:
            if line.startswith("python3 -m venv"):
                # Installing is what the fresh-clone check does; here: the same as the first command.
                assert install.startswith(line), (line, install)
                continue
            if line == "fhir-module serve":
                command = [str(Path(scripts) / "fhir-module"), *shlex.split(line)[1:], "--port", str(port)]
                service = stack.enter_context(running_service(command, env, port, tmp_path / "serve.log"))
                continue
            if "127.0.0.1:8000" in line:
                assert service, f"{line}: the tour calls the service before starting it"
                line = line.replace("http://127.0.0.1:8000", service)
            for each in in_parts_the_test_server_takes(line, tmp_path):
                result = run(each, tmp_path, env)
                assert result.returncode == 0, f"{each}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}"
                check_output(each, result.stdout)
        assert service, "the tour never starts the service"
        # Every address of the running service the tour's prose gives (a page to open, discovery) answers.
        for url in sorted(set(re.findall(r"http://127\.0\.0\.1:8000(/[\w./-]*)", split_code(section(TOUR))[1]))):
            answer = httpx.get(service + url.rstrip("."))
            assert answer.status_code == 200, (url, answer.status_code, answer.text[:500])
    said = (tmp_path / "serve.log").read_text()  # what the tour says serve prints
    assert "self-test passed:" in said and f"serving the built-in modules at http://127.0.0.1:{port}/cds-services" in said, said
    for written in ("load-r4.json", "out/levomilnacipran/package/package.json", "out/duloxetine/package/package.json"):
        assert (tmp_path / written).is_file(), written


# The test FHIR server (Medplum's router) takes at most 50 updates in one transaction, as the
# README says some servers do; a larger bundle goes as the same command on consecutive parts.
MEDPLUM_MAX_UPDATES = 50


def in_parts_the_test_server_takes(line: str, folder: Path) -> list[str]:
    match = re.search(r"--data-binary @(\S+)", line)
    if not line.startswith("curl") or "$FHIR_BASE" not in line or not match:
        return [line]
    bundle = json.loads((folder / match.group(1)).read_text())
    entries = bundle["entry"]
    if len(entries) <= MEDPLUM_MAX_UPDATES:
        return [line]
    lines = []
    for start in range(0, len(entries), MEDPLUM_MAX_UPDATES):
        part = folder / f"part-{start}.json"
        part.write_text(json.dumps({**bundle, "entry": entries[start:start + MEDPLUM_MAX_UPDATES]}))
        lines.append(line.replace(f"@{match.group(1)}", f"@{part.name}"))
    return lines


def check_output(line: str, stdout: str) -> None:
    """What each kind of tour line must show, beyond exit status 0."""
    words = shlex.split(line)
    if words[0] == "curl" and "cds-services" in line:
        assert json.loads(stdout)["cards"], stdout
    elif words[0] == "curl":
        answer = json.loads(stdout)
        assert answer["type"] == "transaction-response", stdout[:2000]
        statuses = [entry["response"]["status"] for entry in answer["entry"]]
        assert statuses and all(status.startswith(("200", "201")) for status in statuses), statuses
    elif words[:2] == ["fhir-module", "cards"]:
        cards = json.loads(stdout)["cards"]
        assert cards and all(card["indicator"] == "warning" for card in cards), stdout[:2000]
    elif words[:2] == ["fhir-module", "test"]:
        assert re.search(r"(\d+) case\(s\): \1 passed, 0 failed", stdout), stdout[-2000:]
    elif words[:2] in (["fhir-module", "export"], ["fhir-module", "validate"]):
        pass  # exit status 0 is what they promise; the files are checked at the end
    else:
        pytest.fail(f"the tour runs {line!r}, which this test does not know how to check: add it here")


def test_every_repository_path_and_python_name_the_readme_gives_exists() -> None:
    """Paths such as `fhir_module/api/` or `benchmarks/speed.py` (a `<name>` placeholder matches any
    folder), and the `module:attribute` names given to uvicorn."""
    missing = []
    for path in sorted(set(re.findall(r"(?<![\w./-])((?:fhir_module|tests|benchmarks|examples|deploy|profiles|\.ci)"
                                      r"/[\w./<>-]*)", readme()))):
        if path == "deploy/trusted-clients.json":  # the user makes it from the example (gitignored)
            continue
        if not list(REPO.glob(re.sub(r"<\w+>", "*", path.rstrip("/.")))):
            missing.append(path)
    for module, attribute in re.findall(r"\b(fhir_module[\w.]*):(\w+)", readme()):
        if not hasattr(__import__(module, fromlist=[attribute]), attribute):
            missing.append(f"{module}:{attribute}")
    assert not missing, missing
