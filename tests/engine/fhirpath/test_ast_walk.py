"""A tree's walk is kept on its nodes: the same nodes, in the same order, as walking it afresh."""

from __future__ import annotations

from typing import Iterator

from fhir_module.engine.fhirpath import ast, parse
from fhir_module.engine.fhirpath.parser import antlr_parse
from tests.engine.fhirpath.test_fhirpath_parser import BUILT_IN

OTHERS = ["1 + 2 * 3 - 4", "%a.b[0].c | %d.where($this > 5 'mg').select(e.f).exists()",
          "x is FHIR.Quantity and (y as String).length() > 0", "iif({}, -1, @2024-01-01T10:00:00)",
          "a implies b xor c or d and e", "`quoted name`.where($index < $total)"]


def _afresh(node: ast.Node) -> Iterator[ast.Node]:
    # The walk as it was written before it was kept: a generator over children() each time.
    yield node
    for child in node.children():
        yield from _afresh(child)


def test_a_kept_walk_is_a_fresh_walk() -> None:
    for text in BUILT_IN + OTHERS:
        for tree in (parse(text), antlr_parse(text)):  # a shared tree, and a tree of its own
            fresh = list(_afresh(tree))
            for _ in range(2):
                walked = tree.walk()
                assert len(walked) == len(fresh) and all(a is b for a, b in zip(walked, fresh)), text
            for node in fresh:  # every subtree's own walk too
                assert list(node.walk()) == list(_afresh(node))
            assert tree == antlr_parse(text)  # what is kept is no part of the tree's value
