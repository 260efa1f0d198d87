"""Time-ordered identifiers (UUIDv7, RFC 9562), so that ids sort in creation order."""

from __future__ import annotations

import os
import struct
import threading
import time
from uuid import UUID, SafeUUID

_lock = threading.Lock()
_last_millis = 0
_counter = 0


def uuid7() -> UUID:
    """A UUIDv7 whose 12-bit counter keeps ids from one process strictly increasing."""
    return uuid7s(1)[0]


def uuid7s(count: int) -> list[UUID]:
    """`count` UUIDv7s, strictly increasing: one clock read and one call for randomness
    for all of them (a bulk create asks for hundreds at once)."""
    global _last_millis, _counter
    stamps: list[int] = []
    with _lock:
        millis = time.time_ns() // 1_000_000
        if millis > _last_millis:
            _last_millis = millis
            _counter = int.from_bytes(os.urandom(2)) & 0x3FF
        else:
            _counter += 1
        for _ in range(count):
            if _counter > 0xFFF:
                _last_millis += 1
                _counter = 0
            # unix_ts_ms (48 bits), version 7, the counter in rand_a (12 bits)
            stamps.append((_last_millis & 0xFFFF_FFFF_FFFF) << 80 | 0x7 << 76 | _counter << 64)
            _counter += 1
        _counter -= 1
    randomness = struct.unpack(f">{count}Q", os.urandom(8 * count))
    made = [_new_uuid(UUID) for _ in range(count)]
    for uuid, stamp, random in zip(made, stamps, randomness, strict=True):
        # the variant (0b10), then 62 random bits. Set as `UUID.__init__` sets them (the
        # class refuses plain assignment), without its checks: the value fits in 128 bits,
        # and the checks cost more than the rest of making an id.
        _set(uuid, "int", stamp | 0b10 << 62 | random >> 2)
        _set(uuid, "is_safe", SafeUUID.unknown)
    return made


_new_uuid = UUID.__new__
_set = object.__setattr__
