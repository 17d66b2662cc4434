"""FHIRPath invariants (ElementDefinition.constraint) through fhirpathpy.

Expressions are compiled once and cached, with the R4 model so choice elements resolve; those of
the shipped definitions from fhirpathpy's parse made ahead of time (`parsed`). An invariant
fhirpathpy cannot parse or evaluate (it lacks `resolve()`, `memberOf()`, `conformsTo()` ...) is reported
as an information issue that it was not checked, never as a pass or a crash.
"""

from __future__ import annotations

from typing import Any, Callable
from xml.etree import ElementTree

import fhirpathpy
import orjson
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.engine.util import set_paths

from fhir_module.engine.fhirpath.typepaths import R4_MODEL
from fhir_module.validation.parsed import parsed


_compiled: dict[str, Callable[..., Any] | Exception] = {}


def _silent_trace(label: str, value: Any) -> None:
    """Core invariants (ref-1) call trace(); fhirpathpy would print to standard output."""


def _has_value(inputs: list[Any]) -> list[bool]:
    """FHIRPath hasValue(), which fhirpathpy lacks: a single primitive with an actual value."""
    return [len(inputs) == 1 and inputs[0] is not None and not isinstance(inputs[0], (dict, list))]


_XHTML = "{http://www.w3.org/1999/xhtml}"
# Elements and attributes the FHIR narrative rules (txt-1) forbid: active content and document-level markup.
_FORBIDDEN_TAGS = frozenset("script object applet embed form iframe input button base link meta style head body html".split())


def _html_checks(inputs: list[Any]) -> list[bool]:
    """FHIRPath htmlChecks() (txt-1, txt-2), which fhirpathpy lacks: the narrative is an XHTML div with
    only basic formatting (no scripts, forms, event attributes) and some content."""
    if len(inputs) != 1 or not isinstance(inputs[0], str):
        return [False]
    try:
        root = ElementTree.fromstring(inputs[0])
    except ElementTree.ParseError:
        return [False]
    if root.tag != f"{_XHTML}div":
        return [False]
    for element in root.iter():
        tag = element.tag.removeprefix(_XHTML)
        if tag in _FORBIDDEN_TAGS or any(name.lower().startswith("on") for name in element.attrib):
            return [False]
    has_content = "".join(root.itertext()).strip() != "" or any(e.tag == f"{_XHTML}img" for e in root.iter())
    return [has_content]


_OPTIONS = {
    "traceFn": _silent_trace,
    "userInvocationTable": {
        "hasValue": {"fn": _has_value, "arity": {0: []}},
        "htmlChecks": {"fn": _html_checks, "arity": {0: []}},
    },
}


def _compile(expression: str) -> Callable[..., Any] | Exception:
    fn = _compiled.get(expression)
    if fn is None:
        tree = parsed(expression)
        try:
            # What fhirpathpy.compile makes, from the parse tree it would make (see `parsed`).
            fn = (set_paths(fhirpathpy.apply_parsed_path, parsedPath=tree, model=R4_MODEL, options=_OPTIONS)
                  if tree is not None else fhirpathpy.compile(expression, R4_MODEL, options=_OPTIONS))
        except Exception as exc:  # noqa: BLE001 - any parser failure means "cannot evaluate"
            fn = exc
        _compiled[expression] = fn
    return fn


# Beyond the value: the resource (%resource, %rootResource, %context) and the clock.
_READS_MORE = ("now()", "today()", "timeOfDay()")


def _depends_on_value_only(expression: str) -> bool:
    return "%" not in expression.replace("%ucum", "") and not any(call in expression for call in _READS_MORE)


Answers = dict[tuple[str, str, bytes], "bool | Exception"]


def evaluate(expression: str, node: Any, type_path: str, resource: dict[str, Any],
             answers: Answers | None = None, texts: dict[int, bytes] | None = None) -> bool | Exception:
    """Whether `node` (at model path `type_path`) satisfies the invariant; the exception if it cannot be told.

    Only an explicit `false` is a violation: an empty result means the invariant does not apply.
    `answers` remembers, by expression, type path and the value's JSON text, what the invariants
    that read nothing but the value said: half of a bundle's evaluations repeat one already made
    (the same extension, coding or action in several resources). `texts` keeps the JSON text of
    each value by id, for a caller that holds the values meanwhile (a resource's several
    invariants on the resource itself would each write all of it again).
    """
    if answers is None or not _depends_on_value_only(expression):
        return _evaluate(expression, node, type_path, resource)
    text = texts.get(id(node)) if texts is not None else None
    if text is None:
        try:
            text = orjson.dumps(node)  # keys in their order: the same JSON text
        except TypeError:  # not JSON (a dict given to validate() with other values): not remembered
            return _evaluate(expression, node, type_path, resource)
        if texts is not None:
            texts[id(node)] = text
    key = (expression, type_path, text)
    answer = answers.get(key)
    if answer is None:
        answer = answers[key] = _evaluate(expression, node, type_path, resource)
    return answer


def _evaluate(expression: str, node: Any, type_path: str, resource: dict[str, Any]) -> bool | Exception:
    fn = _compile(expression)
    if isinstance(fn, Exception):
        return fn
    try:
        result = fn(ResourceNode.create_node(node, type_path), {"resource": resource, "rootResource": resource})
    except Exception as exc:  # noqa: BLE001 - unimplemented functions raise all sorts of errors
        return exc
    return not (len(result) == 1 and result[0] is False)
