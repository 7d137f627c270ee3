"""The server's malloc arena cap, observed through glibc's own arena statistics in a fresh process."""

from __future__ import annotations

import os
import platform
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's arenas")

# Eight threads allocate at once (what pooled SQLite connections do), then glibc prints one block per arena.
PROBE = """
import ctypes, sys, threading
from consentry.process_memory import cap_malloc_arenas
print("capped" if cap_malloc_arenas() else "left", flush=True)
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    held = [bytearray(4096) for _ in range(100)]
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
ctypes.CDLL(None).malloc_stats()
"""


def arenas_after_probe(**env: str) -> tuple[str, int]:
    environment = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    result = subprocess.run(
        [sys.executable, "-c", PROBE], env=environment, capture_output=True, text=True, check=True
    )
    arenas = sum(line.startswith("Arena ") for line in result.stderr.splitlines())
    return result.stdout.strip(), arenas


def test_the_cap_keeps_threads_to_two_arenas() -> None:
    assert arenas_after_probe() == ("capped", 2)


def test_an_operators_setting_wins() -> None:
    decision, arenas = arenas_after_probe(MALLOC_ARENA_MAX="4")
    assert decision == "left"
    assert arenas == 4


def test_without_a_cap_threads_take_arenas_of_their_own() -> None:
    # The probe's baseline: glibc's default would give these threads more than two arenas.
    _, arenas = arenas_after_probe(MALLOC_ARENA_MAX="64")
    assert arenas > 2
