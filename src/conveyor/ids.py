"""Time-ordered identifiers (UUIDv7, RFC 9562), so that ids sort in creation order."""

from __future__ import annotations

import os
import threading
import time
from uuid import UUID

_lock = threading.Lock()
_last_millis = 0
_counter = 0


def uuid7() -> UUID:
    """A UUIDv7 whose 12-bit counter keeps ids from one process strictly increasing."""
    global _last_millis, _counter
    with _lock:
        millis = time.time_ns() // 1_000_000
        if millis > _last_millis:
            _last_millis = millis
            _counter = int.from_bytes(os.urandom(2)) & 0x3FF
        else:
            _counter += 1
            if _counter > 0xFFF:
                _last_millis += 1
                _counter = 0
        millis = _last_millis
        counter = _counter
    random_tail = int.from_bytes(os.urandom(8)) & 0x3FFF_FFFF_FFFF_FFFF
    value = (millis & 0xFFFF_FFFF_FFFF) << 80
    value |= 0x7 << 76
    value |= counter << 64
    value |= 0b10 << 62
    value |= random_tail
    return UUID(int=value)
