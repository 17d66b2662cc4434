"""fhirpathpy's evaluation, the reference the compiled code agrees with, loaded on first use.

The engine evaluates with fhirpathpy only an expression outside the compiled subset, or the rare
data the compiled code defers (none of the built-in knowledge's self-test cases), so the service
starts without importing fhirpathpy (its evaluator and ANTLR parser).
"""

from __future__ import annotations

from typing import Any


def apply_parsed_path(resource: Any, parsed_path: Any, context: Any = None, model: Any = None,
                      options: Any = None) -> Any:
    """`fhirpathpy.apply_parsed_path`, the same arguments and result."""
    from fhirpathpy import apply_parsed_path as apply

    return apply(resource, parsed_path, context, model, options)
