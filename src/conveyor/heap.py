"""The garbage collector of a long-running Conveyor process.

Python's cyclic collector runs a full collection once enough objects have outlived the
two younger generations, and a full collection walks every tracked object: mostly the
modules, classes and functions loaded at start-up, which never become garbage. A worker
moving thousands of jobs a second makes many objects that live for a batch (a claimed
job waits for its completion batch), outlive the young collections and so make full
collections frequent: walking the start-up heap took a third of an in-process worker's
CPU (docs/benchmarks.md). `gc.freeze()` moves what exists once start-up is done to a
generation the collector never walks; everything made afterwards is collected as before.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect what start-up left behind, then exempt every object alive now from future
    collections. For the process's owner to call once its modules are loaded and its
    long-lived objects built (`conveyor serve` and `conveyor worker` call it just before
    they start serving or working). Returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
