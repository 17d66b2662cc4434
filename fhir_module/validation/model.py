"""Layer 3: model checks with `fhir.resources` (R5 models for R5, R4B models for R4).

The pydantic models check element types, primitive formats and the elements the models require. R4 has no
model of its own in `fhir.resources` 8; R4B's is used, as its JSON matches R4 for the module's resource
types. For a resource type R4B does not have (R4's MedicinalProduct*, for instance) the layer says it
was not run instead of reporting R4B's view of R4 as errors.

Loading the models is most of a `validate` command's start (pydantic builds a validator for each
of the ~85 classes a bundle reaches: ~0.3 s), so the command runs this layer in a forked process
beside the other layers when it has a second CPU (`check_beside`).
"""

from __future__ import annotations

import os
import pickle
import sys
import threading
from typing import Any, Callable

from fhir_module.validation.outcome import MODEL, Issue, fhirpath_location


def _model_class(version: str, resource_type: str) -> Any:
    if version == "R4":
        from fhir.resources.R4B import get_fhir_model_class
    else:
        from fhir.resources import get_fhir_model_class
    try:
        return get_fhir_model_class(resource_type)
    except (ValueError, KeyError, AttributeError, ImportError):
        return None


def check(resource: dict[str, Any], version: str) -> list[Issue]:
    """Model issues of a resource and everything nested in it."""
    import pydantic  # here, not at import: the process that forks this layer off never needs it

    rtype = resource["resourceType"]
    model = _model_class(version, rtype)
    label = "R4B model (for R4)" if version == "R4" else "R5 model"
    if model is None:
        return [Issue("information", "not-supported", f"No {label} for {rtype}: model checks not run", rtype, MODEL)]
    try:
        model.model_validate(resource)
    except pydantic.ValidationError as exc:
        return [_issue(err, rtype) for err in exc.errors()]
    except (ValueError, TypeError) as exc:  # some model validators raise outside pydantic's error type
        return [Issue("error", "structure", f"{label} rejected the resource: {exc}", rtype, MODEL)]
    return []


def _issue(error: Any, base: str) -> Issue:
    loc = [seg for seg in error.get("loc", ()) if isinstance(seg, (str, int))]
    where = fhirpath_location(base, loc)
    kind = error.get("type", "")
    msg = error.get("msg", "invalid")
    if kind == "missing" or "is required" in msg:
        return Issue("error", "required", f"Required element missing: {msg}", where, MODEL)
    if kind == "extra_forbidden":
        return Issue("error", "structure", f"Unknown element: {msg}", where, MODEL)
    return Issue("error", "value" if kind == "value_error" else "structure", msg, where, MODEL)


def check_beside(resource: dict[str, Any], version: str) -> Callable[[], list[Issue]]:
    """`check` run in a forked process while the caller goes on with the other layers; the function
    returned waits for its issues. Without a second CPU to run it on, in a process with threads
    (a fork copies none of them, and could copy a lock one holds), or where fork fails, `check`
    runs here, now. Whatever the child fails to hand back (it crashed, was killed, raised), the
    layer runs here instead: the issues (or the exception) are those `check` gives.

    The resource must not change meanwhile: the child checks it as it was at the fork (`check`
    itself changes nothing, so the later layers see it as they would after a `check` here)."""
    forked = _fork() if _cpus() > 1 and threading.active_count() == 1 else None
    if forked is None:
        issues = check(resource, version)
        return lambda: issues
    child, pipe = forked
    if child == 0:  # the child: the issues, pickled, then gone without the parent's exit handlers
        status = 1
        try:
            with open(pipe, "wb") as out:
                out.write(pickle.dumps(check(resource, version)))
            status = 0
        finally:
            os._exit(status)

    def issues() -> list[Issue]:
        with open(pipe, "rb") as handed:
            data = handed.read()
        _, status = os.waitpid(child, 0)
        if status == 0:
            try:
                found = pickle.loads(data)
            except Exception:  # noqa: BLE001 - cut short: the layer runs here
                found = None
            if isinstance(found, list):
                return found
        return check(resource, version)

    return issues


def _cpus() -> int:
    """The CPUs this process may run on (taskset and cgroups' cpusets count, not the machine's)."""
    affinity = getattr(os, "sched_getaffinity", None)
    return len(affinity(0)) if affinity else os.cpu_count() or 1


def _fork() -> tuple[int, int] | None:
    """(0, the pipe's write end) in the child; (the child's pid, its read end) in the parent; None
    when no child could be made."""
    if not hasattr(os, "fork"):
        return None
    sys.stdout.flush()  # nothing buffered is copied into the child
    sys.stderr.flush()
    read, write = os.pipe()
    try:
        pid = os.fork()
    except OSError:  # out of processes or memory: no child
        os.close(read)
        os.close(write)
        return None
    os.close(read if pid == 0 else write)
    return (0, write) if pid == 0 else (pid, read)
