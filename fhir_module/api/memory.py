"""glibc's malloc keeps the memory of a large body's parse for the next one.

orjson parses a text through one buffer of about 12 times its size (yyjson's pool: `len / 2 * 24`
bytes), allocated and freed on every call. glibc serves a block that large with mmap and unmaps it
when freed, unless the block is under its mmap threshold, which grows to the largest block freed so
far, but never beyond 32 MiB. A body over ~2.7 MB needs a buffer past that cap, so its every parse
touched fresh pages: ~1,650 page faults for a 5,000-resource, 2.8 MB body, about 10 ms of its
parse on this VM (a fault costs ~4 us, the unmapping more), while a 1,000-resource body's buffer
is reused and faults none.

On the first body that large, the service asks glibc for what it does by itself below the cap:
serve large blocks from its heap (M_MMAP_MAX 0) and keep freed memory at the heap's top for reuse,
up to enough for the largest body's parse (M_TRIM_THRESHOLD). The cost is memory: the process
keeps the high-water mark of such parses (34 MB for a 2.8 MB body) instead of returning it.
Elsewhere than glibc (musl, macOS), or without ctypes, nothing changes.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger("fhir_module.api.memory")

# orjson's buffer for a body of this size nears glibc's 32 MiB cap on its mmap threshold.
LARGE_BODY_BYTES = (30 << 20) // 12
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4

_asked = False


def parse_buffer_bytes(body_bytes: int) -> int:
    """orjson's buffer for a text of `body_bytes` (its `buffer_capacity_to_allocate`, rounded up)."""
    return body_bytes // 2 * 24 + 4096 + 256


def keep_parse_memory(max_body_bytes: int) -> bool:
    """Before parsing a body past LARGE_BODY_BYTES: set glibc, once per process, to keep the memory
    of parses up to `max_body_bytes`. Whether it was set (False also when asked before)."""
    global _asked
    if _asked:
        return False
    _asked = True
    try:
        if not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
        import ctypes  # only now: ~3 ms that a service never sent a large body does not pay at start

        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (ValueError, ImportError, OSError, AttributeError):  # ValueError: no such confstr name
        return False
    # Freed memory beyond this at the heap's top is returned: the largest body's parse buffer, and
    # some room for what is built beside it.
    keep = parse_buffer_bytes(max(max_body_bytes, LARGE_BODY_BYTES)) + (16 << 20)
    if mallopt(_M_TRIM_THRESHOLD, keep) != 1 or mallopt(_M_MMAP_MAX, 0) != 1:
        log.info("glibc did not take the malloc settings for large bodies; their parses stay as they were")
        return False
    return True
