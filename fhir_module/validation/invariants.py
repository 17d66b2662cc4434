"""FHIRPath invariants (ElementDefinition.constraint) through fhirpathpy.

Expressions are compiled once and cached, with the R4 model so choice elements resolve. An invariant
fhirpathpy cannot parse or evaluate (it lacks `resolve()`, `memberOf()`, `conformsTo()` ...) is reported
as an information issue that it was not checked, never as a pass or a crash.
"""

from __future__ import annotations

from typing import Any, Callable

import fhirpathpy
from fhirpathpy.engine.nodes import ResourceNode
from fhirpathpy.models import models

# Checked natively instead: ele-1 (an element has a value or children) is the JSON layer's empty-value
# rule, and evaluating it through FHIRPath on every element would dominate the run time.
NATIVE = frozenset({"ele-1"})

_compiled: dict[str, Callable[..., Any] | Exception] = {}


def _silent_trace(label: str, value: Any) -> None:
    """Core invariants (ref-1) call trace(); fhirpathpy would print to standard output."""


def _compile(expression: str) -> Callable[..., Any] | Exception:
    fn = _compiled.get(expression)
    if fn is None:
        try:
            fn = fhirpathpy.compile(expression, models["r4"], options={"traceFn": _silent_trace})
        except Exception as exc:  # noqa: BLE001 - any parser failure means "cannot evaluate"
            fn = exc
        _compiled[expression] = fn
    return fn


def evaluate(expression: str, node: Any, type_path: str, resource: dict[str, Any]) -> bool | Exception:
    """Whether `node` (at model path `type_path`) satisfies the invariant; the exception if it cannot be told.

    Only an explicit `false` is a violation: an empty result means the invariant does not apply.
    """
    fn = _compile(expression)
    if isinstance(fn, Exception):
        return fn
    try:
        result = fn(ResourceNode.create_node(node, type_path), {"resource": resource, "rootResource": resource})
    except Exception as exc:  # noqa: BLE001 - unimplemented functions raise all sorts of errors
        return exc
    return not (len(result) == 1 and result[0] is False)
