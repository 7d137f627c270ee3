"""The collector settings of a long-running process, observed in a fresh process (they are global)."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import gc
from consentry.runtime import YOUNG_COLLECTION_EVERY, tune_collector_for_long_run
before = gc.get_threshold()
tune_collector_for_long_run()
after = gc.get_threshold()
print(gc.get_freeze_count() > 0, after[0] == YOUNG_COLLECTION_EVERY > before[0], after[1:] == before[1:])
"""


def test_a_long_running_process_freezes_its_start_up_heap_and_collects_the_young_less_often() -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["True", "True", "True"]
