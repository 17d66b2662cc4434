"""Where things are in a knowledge file: every error names the file and the line it is about.

The YAML is read with the safe loader (libyaml's when PyYAML has it), extended to remember the line
of each mapping, each mapping key and each sequence item it builds. The checks then point at the
object they are looking at: `levomilnacipran/knowledge.yaml:212: rule D1: ...`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import yaml

# libyaml's safe loader when PyYAML was built with it (five times faster: the knowledge file is read
# at every start), else the pure-Python one; both build the same values.
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

Lines = dict[tuple[int, Any], int]  # (id of a dict or list, key or index or None) -> line (1-based)


class KnowledgeError(ValueError):
    """The knowledge definition is not consistent with its schema, terminology or monograph."""


class KnowledgeUnreadable(KnowledgeError):
    """A knowledge or monograph file that cannot be read, or is not YAML: nothing to check yet.
    The commands answer it as usage (exit 2), where knowledge that fails its checks is refused (1)."""


class _LineLoader(SAFE_LOADER):  # type: ignore[misc, valid-type]
    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: Lines = {}


def _mapping(loader: _LineLoader, node: yaml.MappingNode) -> Any:
    data: dict[Any, Any] = {}
    yield data
    data.update(loader.construct_mapping(node))
    loader.lines[(id(data), None)] = node.start_mark.line + 1
    for key_node, _ in node.value:
        if isinstance(key_node, yaml.ScalarNode):
            loader.lines.setdefault((id(data), key_node.value), key_node.start_mark.line + 1)


def _sequence(loader: _LineLoader, node: yaml.SequenceNode) -> Any:
    data: list[Any] = []
    yield data
    data.extend(loader.construct_sequence(node))
    loader.lines[(id(data), None)] = node.start_mark.line + 1
    for index, item in enumerate(node.value):
        loader.lines[(id(data), index)] = item.start_mark.line + 1


_LineLoader.add_constructor("tag:yaml.org,2002:map", _mapping)
_LineLoader.add_constructor("tag:yaml.org,2002:seq", _sequence)


class Located:
    """A parsed knowledge file with the lines of its parts (none when it was not read from a file)."""

    def __init__(self, data: Any, source: str, lines: Lines | None = None) -> None:
        self.data = data  # kept: the line table is keyed by the ids of its dicts and lists
        self.source = source
        self.lines = lines or {}

    @classmethod
    def read(cls, path: Path) -> "Located":
        try:
            loader = _LineLoader(path.read_text(encoding="utf-8"))
            try:
                data = loader.get_single_data()
            finally:
                loader.dispose()
        except (OSError, UnicodeDecodeError) as error:
            raise KnowledgeUnreadable(f"{path}: cannot read: {error}") from error
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f"{path}:{mark.line + 1}" if mark is not None else str(path)
            raise KnowledgeUnreadable(f"{where}: not valid YAML: {getattr(error, 'problem', None) or error}") from error
        return cls(data, str(path), loader.lines)

    def line(self, node: Any, key: Any = None) -> int | None:
        """The line of a dict or list of the file, or of one of its keys or items."""
        found = self.lines.get((id(node), key)) if key is not None else None
        return found or self.lines.get((id(node), None))

    def at(self, node: Any = None, key: Any = None) -> str:
        """`file:line` of the node (or just the file when the line is unknown)."""
        line = self.line(node, key) if node is not None else None
        return f"{self.source}:{line}" if line else self.source

    def error(self, node: Any, where: str, message: str, key: Any = None) -> KnowledgeError:
        return KnowledgeError(f"{self.at(node, key)}: {where}: {message}")

    def path_line(self, path: Sequence[Any]) -> int | None:
        """The line of the element at a path of keys and indexes (the nearest one that has a line)."""
        node, found = self.data, self.line(self.data)
        for step in path:
            found = self.line(node, step) or found
            try:
                node = node[step]
            except (KeyError, IndexError, TypeError):
                break
        return found


__all__ = ["KnowledgeError", "Located", "SAFE_LOADER"]
