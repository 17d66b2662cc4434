"""A large body's parse reuses memory (api/memory.py): after the first body past LARGE_BODY_BYTES,
orjson's parse buffer of ~12 times the body comes from glibc's heap, not fresh pages each time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from fhir_module.api.memory import LARGE_BODY_BYTES, parse_buffer_bytes


def _glibc() -> bool:
    try:
        return (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc")
    except ValueError:
        return False


def test_the_large_body_size_is_where_the_parse_buffer_nears_glibcs_cap() -> None:
    assert parse_buffer_bytes(LARGE_BODY_BYTES) <= 32 << 20 < parse_buffer_bytes(2_800_000)


@pytest.mark.skipif(not _glibc(), reason="the setting is glibc's")
def test_after_the_first_large_body_its_parse_touches_no_fresh_pages() -> None:
    # In a fresh interpreter: the setting is the process's. Large strings, few objects: the page
    # faults counted are the parse buffer's (pymalloc's arenas barely move).
    script = textwrap.dedent("""
        import resource
        import orjson
        from fhir_module import strictjson
        from fhir_module.api.memory import keep_parse_memory
        text = orjson.dumps({"items": ["x" * 1000] * 3000})
        def faults():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            assert strictjson.loads(text)["items"][0] == "x" * 1000
            return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        faults()
        print(faults(), faults())
        print(keep_parse_memory(5 << 20), keep_parse_memory(5 << 20))
        faults()
        print(faults(), faults())
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout.split("\n")
    unset, answers, kept = [list(map(str.strip, line.split())) for line in out[:3]]
    assert answers == ["True", "False"]  # set on the first ask only
    assert min(map(int, unset)) > 500, unset  # every parse maps its ~36 MB buffer afresh
    assert max(map(int, kept)) < 50, kept
