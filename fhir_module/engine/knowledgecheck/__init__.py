"""The knowledge check: knowledge the engine cannot run, all of it and as written, never serves.

`check_knowledge(resources, allow_draft=False)` reads FHIR artifacts (a bundle's entries, a
package's files, or the built-in build) the way the engine applies them and lists every finding:

- FHIRPath parsed strictly (a syntax error, trailing input, an unknown function or a wrong number
  of arguments), every `%variable` defined where it is evaluated, no variable that needs itself;
- every ValueSet a function names, the topic CodeSystems, the ActivityDefinitions suggestions
  use, the value sets those include, and everything the manifest Library lists, found in the
  knowledge; value sets the engine can evaluate (supported filters, compiling regexes);
- merged topics whose causes each define the merge variable, and whose texts read only the
  fields `%lowest`/`%causes` have; suggestions with a title, an `id` to remove or dynamicValue
  paths that address the dosageInstruction of the MedicationRequest the ActivityDefinition creates; rules with a topic and a summary;
- each rule's quote in the monograph the knowledge carries;
- status: only active PlanDefinitions serve (draft only when allowed, retired never), and the
  same for every artifact they use.

The KnowledgeBase runs it on load (so `serve`, `cards` and `test` refuse, `KnowledgeCheckError`),
`export` runs it before writing, and `validate` reports it as its "knowledge" layer.
"""

from .check import check_knowledge
from .findings import ERROR, EXIT_REFUSED, WARNING, Finding, KnowledgeCheckError, errors
from .index import is_eca_rule

__all__ = ["ERROR", "EXIT_REFUSED", "WARNING", "Finding", "KnowledgeCheckError", "check_knowledge", "errors", "is_eca_rule"]
