"""A frozen start-up heap: exempt from collections, while new garbage is still collected.
In a child process, so the suite's own collector is left as it is."""

from __future__ import annotations

import subprocess
import sys

CHILD = """
import gc, weakref
import conveyor.api.app  # what `conveyor serve` loads before it freezes
from conveyor.heap import freeze_startup_heap

frozen = freeze_startup_heap()
assert frozen == gc.get_freeze_count(), (frozen, gc.get_freeze_count())
assert sum(len(gc.get_objects(generation)) for generation in range(3)) < frozen / 10


class Node:
    pass


made_after = Node()
made_after.itself = made_after  # a cycle: only the collector can free it
gone = weakref.ref(made_after)
del made_after
gc.collect()
assert gone() is None, "garbage made after the freeze was not collected"
print(frozen)
"""


def test_freezing_exempts_the_start_up_heap_and_later_garbage_is_still_collected() -> None:
    child = subprocess.run(
        [sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60
    )
    assert child.returncode == 0, child.stderr
    assert int(child.stdout) > 10_000, "the API's modules were frozen"
