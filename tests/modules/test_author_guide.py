"""The module author's guide (docs/modules.md) describes the knowledge file as the schema defines it:
every field of every object of knowledge.schema.json is named in the guide's section for that object,
and the README links to the guide."""

from __future__ import annotations

import contextlib
import io
import json
import re
import shlex
from collections import defaultdict
from importlib import resources
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
GUIDE = REPO / "docs" / "modules.md"


def _schema() -> dict[str, Any]:
    return json.loads(resources.files("fhir_module.data.knowledge").joinpath("knowledge.schema.json").read_text("utf-8"))


def schema_objects(schema: dict[str, Any]) -> dict[str, set[str]]:
    """Each object of the schema by its path (`drug.dosing`, `rules[]`, `merged_topics.*`; a `$defs`
    object by its definition's name, `quote`) -> the names of its fields."""
    objects: dict[str, set[str]] = defaultdict(set)
    walked: set[str] = set()

    def walk(node: Any, path: str) -> None:
        if isinstance(node, list):
            for item in node:
                walk(item, path)
            return
        if not isinstance(node, dict):
            return
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            name = ref.rsplit("/", 1)[1]
            if name not in walked:
                walked.add(name)
                walk(schema["$defs"][name], name)
        for key, value in node.get("properties", {}).items():
            objects[path].add(key)
            walk(value, f"{path}.{key}" if path else key)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]")
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*")
        for key in ("allOf", "anyOf", "oneOf", "if", "then", "not"):
            if key in node:
                walk(node[key], path)

    walk(schema, "")
    return dict(objects)


def guide_sections() -> list[tuple[str, str]]:
    """(heading, body) of each section of the guide, a section running to the next heading."""
    text = GUIDE.read_text("utf-8")
    text = re.sub(r"^```.*?^```$", "", text, flags=re.MULTILINE | re.DOTALL)  # headings inside examples are not the guide's
    parts = re.split(r"^(#{1,6} .*)$", text, flags=re.MULTILINE)
    return [(parts[i], parts[i + 1]) for i in range(1, len(parts) - 1, 2)]


def test_the_schema_walk_finds_every_object() -> None:
    objects = schema_objects(_schema())
    assert {"", "module", "drug.dosing.renal", "adjustment", "rules[]", "rules[].parameters.*", "merged_topics.*",
            "suggestion", "suggestion.steps[]", "order_kinds[].facts[]", "quote", "note"} <= set(objects)
    assert "usage" in objects["module"] or "label" in objects["module"]
    assert sum(len(fields) for fields in objects.values()) > 100


def test_every_field_of_the_knowledge_schema_is_in_the_guide_under_its_object() -> None:
    sections = guide_sections()
    missing = []
    for path, fields in schema_objects(_schema()).items():
        if path == "":
            body = GUIDE.read_text("utf-8")
        else:
            bodies = [body for heading, body in sections if f"`{path}`" in heading]
            if not bodies:
                missing.append(f"no section headed `{path}`")
                continue
            body = "\n".join(bodies)
        missing += [f"`{path}`: field `{name}`" for name in sorted(fields) if f"`{name}`" not in body]
    assert missing == []


def test_the_readme_links_to_the_guide() -> None:
    assert "(docs/modules.md)" in (REPO / "README.md").read_text("utf-8")


def test_the_guide_describes_no_field_the_schema_does_not_have() -> None:
    """The other way round: each field a guide table lists under a schema object is a field of it."""
    objects = schema_objects(_schema())
    invented = []
    for heading, body in guide_sections():
        paths = [path for path in re.findall(r"`([^`]+)`", heading) if path in objects]
        if not paths:
            continue
        fields = set().union(*(objects[path] for path in paths))
        for row in re.findall(r"^\| *([^|]+?) *\|", body, flags=re.MULTILINE):
            invented += [f"{heading.strip()}: `{name}`" for name in re.findall(r"`([^`]+)`", row) if name not in fields]
    assert invented == []


def test_every_command_line_of_the_guide_parses_with_the_real_command_line_parser() -> None:
    from fhir_module.cli import _parser

    text = GUIDE.read_text("utf-8")
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```$", text, flags=re.MULTILINE | re.DOTALL)
    lines = [line.strip().removeprefix("$ ") for block in blocks for line in block.splitlines()]
    commands = [shlex.split(line.split(" #", 1)[0])[1:] for line in lines if line.startswith("fhir-module ")]
    assert len(commands) >= 8
    refused = []
    for args in commands:
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                _parser().parse_args(args)
        except SystemExit:
            refused.append(" ".join(args))
    assert refused == []
