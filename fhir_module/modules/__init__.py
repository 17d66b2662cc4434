"""The built-in modules, one folder each (see fhir_module/knowledge/modules.py for what a folder holds)."""
