"""JSON as RFC 8259 defines it, for everything that arrives from outside (request bodies, FHIR
server answers, files given to `validate`).

Python's `json` accepts more than JSON: `NaN`, `Infinity` and `-Infinity`, numbers such as `1e400`
that become infinite, integers of any length (a 5,000-digit one raises a ValueError past Python's
conversion limit), lone UTF-16 surrogates (`"\\ud800"`, a string no UTF-8 encoder can write back) and
nesting deep enough to exhaust the stack. Each of those read silently would become a wrong number
in a dose check or a 500 when the answer is written; `loads` refuses them all with a `JsonError`
whose message says what was wrong, so callers answer 400 (or a fatal validation issue).
"""

from __future__ import annotations

import functools
import json
import math
import re
from typing import Any, Callable

import orjson

# Real requests and resources nest a few dozen levels at most (a prefetch Bundle of resources with
# extensions); the code that reads them walks recursively, so deeper input is refused here.
MAX_DEPTH = 64
# Integers beyond 64 bits have no FHIR meaning (FHIR `integer` is 32-bit, `integer64` 64-bit) and
# no interoperable JSON reading (RFC 8259 section 6).
MIN_INT, MAX_INT = -(2**63), 2**64 - 1

_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class JsonError(ValueError):
    """Input that is not (interoperable) JSON. `code` is the OperationOutcome issue type."""

    def __init__(self, message: str, code: str = "structure", *, line: int | None = None,
                 column: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.line, self.column = line, column  # of a syntax error


def _refuse_constant(name: str) -> Any:
    raise JsonError(f"{name} is not a JSON number")


def _integer(text: str) -> int:
    digits = text.lstrip("-")
    if len(digits) > 20:  # cheap first: int() of a huge literal costs quadratic time
        raise JsonError(f"the integer {text[:12]}... ({len(digits)} digits) is larger than 64 bits")
    value = int(text)
    if not MIN_INT <= value <= MAX_INT:
        raise JsonError(f"the integer {text} is larger than 64 bits")
    return value


def _decimal(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise JsonError(f"the number {text[:24]} is out of range")
    return value


def check_tree(value: Any, max_depth: int = MAX_DEPTH, *, strings: bool = False) -> None:
    """Depth (and, when `strings`, lone surrogates in keys and strings) without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > max_depth:
                raise JsonError(f"the JSON nests deeper than {max_depth} levels", code="too-costly")
            for key, item in node.items():
                if strings and _LONE_SURROGATE.search(key):
                    raise JsonError("a property name holds a lone UTF-16 surrogate (not Unicode text)")
                stack.append((item, depth + 1))
        elif isinstance(node, list):
            if depth > max_depth:
                raise JsonError(f"the JSON nests deeper than {max_depth} levels", code="too-costly")
            stack.extend((item, depth + 1) for item in node)
        elif strings and isinstance(node, str) and _LONE_SURROGATE.search(node):
            raise JsonError("a string holds a lone UTF-16 surrogate (not Unicode text)")


def _fast(text: str | bytes, max_depth: int) -> Any:
    """orjson's reading when it is certainly what `loads` would give, else None.

    orjson is strict where Python is lax (NaN, Infinity, 1e400, lone surrogates, bad UTF-8 are
    errors) but reads an integer beyond 64 bits as a float, and nests up to 1024 levels. So a text
    with a run of 19 or more digits anywhere (such an integer, even under a key a later duplicate
    replaces) goes the exact way, and the depth is checked: on the value read for a small text,
    by orjson's own limit for a large one (`_read_within`). Whatever orjson refuses is read again
    the exact way, for its message.
    """
    raw = text if isinstance(text, (bytes, bytearray)) else text.encode("utf-8", "surrogatepass")
    if raw.translate(_DIGIT_FLAGS).find(_LONG_DIGIT_RUN) != -1:
        return None
    if len(raw) >= WRAPPED_FROM_BYTES and _orjson_limits_depth():
        return _read_within(text, max_depth)
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(value, (dict, list)):
        return None  # a bare scalar: rare, read the exact way
    if not _nesting(max_depth).is_valid(value):
        return None
    return value


# From this size on, the depth is checked by orjson's own limit, not by a walk of the value read:
# the walk costs ~2 ns a byte (14 ms of a 2.8 MB, 5,000-resource request in the service), the
# wrapper ~60 us whatever the size (parsing and unwrapping its 960 levels).
WRAPPED_FROM_BYTES = 32 * 1024
_ORJSON_DEPTH = 1024  # orjson reads up to 1024 nested arrays and objects, and refuses more (3.9.15+)


def _read_within(text: str | bytes, max_depth: int) -> Any:
    """orjson's reading of `text` if it is a JSON array or object nesting at most `max_depth`
    levels, else None: the text is read at depth 1024 - max_depth, inside as many one-item
    arrays, so orjson's limit of 1024 levels is the limit of `max_depth` for the text's own.

    The wrapper hides nothing: orjson reads it only if the text is one JSON value (with
    whitespace). A text that closes the wrapper's arrays and opens others (`1], [2`) leaves some
    wrapper array with more than one item, and an empty text leaves the innermost one empty;
    unpacking each level as exactly one item refuses both."""
    levels = _ORJSON_DEPTH - max_depth
    if levels < 0:
        return None
    if isinstance(text, str):
        wrapped: str | bytes = "".join(("[" * levels, text, "]" * levels))
    else:
        wrapped = b"".join((b"[" * levels, text, b"]" * levels))
    try:
        value = orjson.loads(wrapped)
    except orjson.JSONDecodeError:
        return None
    try:
        for _ in range(levels):
            (value,) = value  # a list of exactly one item (every wrapper level is an array)
    except ValueError:
        return None
    if not isinstance(value, (dict, list)):
        return None  # a bare scalar: rare, read the exact way
    return value


@functools.lru_cache(maxsize=None)
def _orjson_limits_depth() -> bool:
    """Whether the installed orjson reads 1024 nested levels and refuses 1025, arrays and objects
    counted alike, found by reading: the wrapper of `_read_within` is used only while orjson keeps
    exactly that limit; under any other, the depth is checked on the value read."""
    def reads(inside: bytes, depth: int) -> bool:
        try:
            orjson.loads(b"[" * depth + inside + b"]" * depth)
        except orjson.JSONDecodeError:
            return False
        return True

    limit = _ORJSON_DEPTH
    return (reads(b"[]", limit - 1) and reads(b"{}", limit - 1)
            and not reads(b"[]", limit) and not reads(b"{}", limit) and not reads(b'{"a": {}}', limit - 1))


@functools.lru_cache(maxsize=None)
def _nesting(max_depth: int) -> Any:
    """A validator of "at most `max_depth` levels of objects and arrays": a JSON Schema whose level
    i lets the members and items of a container be level i + 1, and whose level max_depth + 1 holds
    no container. Checked in Rust (jsonschema-rs), it runs on every request body: a third of the
    time of the same walk in Python (10 against 26 us for an order-select, 0.4 against 1.5 ms for
    1,000 prefetched resources)."""
    import jsonschema_rs  # also what knowledge loading and $validate use; here from the first body on

    levels: dict[str, Any] = {f"level{max_depth + 1}": {"not": {"type": ["object", "array"]}}}
    for level in range(max_depth, 0, -1):
        below = {"$ref": f"#/$defs/level{level + 1}"}
        levels[f"level{level}"] = {"items": below, "additionalProperties": below}
    return jsonschema_rs.Draft202012Validator({"$defs": levels, "$ref": "#/$defs/level1"})


# Every byte as b"1" (an ASCII digit) or b"0": a run of 19 digits is then one bytes.find.
_DIGIT_FLAGS = bytes(0x31 if 0x30 <= byte <= 0x39 else 0x30 for byte in range(256))
_LONG_DIGIT_RUN = b"1" * 19


def loads(
    text: str | bytes,
    *,
    max_depth: int = MAX_DEPTH,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """Parse JSON text (bytes are UTF-8), refusing what RFC 8259 and FHIR do not allow."""
    if object_pairs_hook is None:
        fast = _fast(text, max_depth)
        if fast is not None:
            return fast
    return exact_loads(text, max_depth=max_depth, object_pairs_hook=object_pairs_hook)


def exact_loads(
    text: str | bytes,
    *,
    max_depth: int = MAX_DEPTH,
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """`loads` without orjson: Python's parser with a check of every number and string."""
    if isinstance(text, (bytes, bytearray)):
        try:
            text = bytes(text).decode("utf-8")
        except UnicodeDecodeError:
            raise JsonError("the text is not UTF-8") from None
    try:
        value = json.loads(
            text,
            parse_constant=_refuse_constant,
            parse_int=_integer,
            parse_float=_decimal,
            object_pairs_hook=object_pairs_hook,
        )
    except JsonError:
        raise
    except json.JSONDecodeError as exc:
        raise JsonError(f"{exc.msg} at line {exc.lineno} column {exc.colno}", line=exc.lineno,
                        column=exc.colno) from None
    except RecursionError:
        raise JsonError(f"the JSON nests deeper than {max_depth} levels", code="too-costly") from None
    # Surrogate escapes are rare: the string walk runs only when the text has one.
    check_tree(value, max_depth, strings=_SURROGATE_ESCAPE.search(text) is not None)
    return value
