"""FHIRPath for the knowledge: a strict parser, its syntax tree, and the checks that need no data.

    from fhir_module.engine.fhirpath import parse, FHIRPathSyntaxError, ast
    tree = parse("%dose.mgPerDay > %limit")     # ast.Binary(op='>', ...); cached per text
    parse("%orderMatch.exists(")                 # FHIRPathSyntaxError: ... at column 20

    call_problems(tree, functions)               # unknown functions, arity, literal argument kinds
    variables_used(tree)                         # the %variables read, with their positions

The grammar is fhirpathpy's, so the tree means what fhirpathpy computes; `parse_for_fhirpathpy`
also gives fhirpathpy's own tree from the same (strict) parse, for evaluation.
"""

from . import ast
from .analysis import Problem, call_problems, presence_traps, valueset_arguments, variables_used
from .functions import STANDARD_FUNCTIONS, Function
from .parser import FHIRPathSyntaxError, describe_position, parse, parse_for_fhirpathpy

__all__ = [
    "FHIRPathSyntaxError",
    "Function",
    "Problem",
    "STANDARD_FUNCTIONS",
    "ast",
    "call_problems",
    "describe_position",
    "parse",
    "parse_for_fhirpathpy",
    "presence_traps",
    "valueset_arguments",
    "variables_used",
]
