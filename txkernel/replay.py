"""The replay guard's memory: the fingerprints of the last accepted messages.

A :class:`ReplayHistory` keeps the first 64 bits of each verified signature
(an HMAC's bits are uniform without the key, so a fresh message is taken for
a replay with odds of about ``capacity / 2**64``) in two fixed arrays:

- an open-addressing hash table with twice ``capacity`` slots of 8 bytes
  (linear probing, deletion by backward shift; 0 marks an empty slot);
- a ring of ``capacity`` slots holding the fingerprints in arrival order, so
  that once full the oldest is forgotten first.

Both live in anonymous memory maps: the pages are the kernel's only once
written, a full guard of 2**16 entries holds 1.5 MiB (a set of ints held
4.3 MiB), and after that nothing grows, however many messages arrive.
Not thread-safe: one :class:`~txkernel.wire.Wire` per reading thread.
"""

from __future__ import annotations

import mmap

#: How many fingerprints are kept (as jupyter_client keeps digests).
DEFAULT_CAPACITY = 2**16

_WORD = 8


def fingerprint(signature: bytes) -> int:
    """The nonzero 64-bit fingerprint kept of a hex signature."""
    return int(signature[:16], 16) or 1


class ReplayHistory:
    """The fingerprints of the last ``capacity`` signatures remembered."""

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        slots = 2
        while slots < 2 * capacity:
            slots *= 2
        self._mask = slots - 1
        self._table_map = mmap.mmap(-1, slots * _WORD)
        self._ring_map = mmap.mmap(-1, capacity * _WORD)
        self._table = memoryview(self._table_map).cast("Q")
        self._ring = memoryview(self._ring_map).cast("Q")
        self._count = 0
        self._next = 0  # the ring slot written next (the oldest once full)

    def __len__(self) -> int:
        return self._count

    def __contains__(self, signature: bytes) -> bool:
        key = fingerprint(signature)
        return self._table[self._slot(key)] == key

    def remember(self, signature: bytes) -> None:
        """Keep ``signature``'s fingerprint; once full, forget the oldest."""
        key = fingerprint(signature)
        table = self._table
        i = self._slot(key)
        if table[i] == key:
            return
        ring = self._ring
        if self._count == self.capacity:
            self._delete(ring[self._next])
            i = self._slot(key)  # the deletion may have shifted entries
        else:
            self._count += 1
        table[i] = key
        ring[self._next] = key
        self._next = (self._next + 1) % self.capacity

    def _slot(self, key: int) -> int:
        """The table slot holding ``key``, or the empty one that ends its run."""
        table, mask = self._table, self._mask
        i = key & mask
        while True:
            found = table[i]
            if found == key or not found:
                return i
            i = (i + 1) & mask

    def _delete(self, key: int) -> None:
        """Empty ``key``'s slot and shift back the run after it."""
        table, mask = self._table, self._mask
        hole = self._slot(key)
        if table[hole] != key:
            return
        i = hole
        while True:
            i = (i + 1) & mask
            found = table[i]
            if not found:
                break
            home = found & mask
            # ``found`` may move into the hole unless its home lies
            # cyclically in (hole, i].
            if (i - home) & mask >= (i - hole) & mask:
                table[hole] = found
                hole = i
        table[hole] = 0
