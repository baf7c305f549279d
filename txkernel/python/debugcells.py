"""Where the debugger finds a cell's code: one file per cell source, named by its hash.

JupyterLab computes a cell's file name itself, as ``tmpFilePrefix`` +
the decimal Murmur2 hash (32-bit, of the UTF-8 code, with ``hashSeed``) +
``tmpFileSuffix``, from what ``debugInfo`` tells it; a breakpoint set in a
cell is a breakpoint in that file.  While debugpy is installed the kernel
compiles every cell under the same name, from the first cell on (whether a
frontend is debugging or not), so a breakpoint in a function an earlier cell
defined stops there too; the code is written to the file while the debugger
runs and by ``dumpCell``, so the stack shows the cell.
Pure functions and one small class; any thread.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import lru_cache

#: The seed the kernel announces in ``debugInfo`` (any 32-bit value works).
HASH_SEED = 0xC70F6907
SUFFIX = ".py"
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


@lru_cache(maxsize=256)
def _hash(code: str, seed: int) -> int:
    return murmur2(code.encode("utf-8"), seed)


def murmur2(data: bytes, seed: int) -> int:
    """MurmurHash2 (Austin Appleby's 32-bit version) of ``data``."""
    length = len(data)
    h = (seed ^ length) & _MASK
    whole = length - length % 4
    for i in range(0, whole, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = data[whole:]
    if rest:
        h = ((h ^ int.from_bytes(rest, "little")) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


class CellFiles:
    """The kernel's directory of cell files (``<tmp>/txkernel_<pid>/``)."""

    def __init__(self, directory: str | None = None) -> None:
        self.directory = directory or os.path.join(
            tempfile.gettempdir(), f"txkernel_{os.getpid()}"
        )
        self.prefix = self.directory + os.sep
        self.seed = HASH_SEED
        self.suffix = SUFFIX

    def path(self, code: str) -> str:
        """The file name JupyterLab expects for a cell holding ``code``."""
        return f"{self.prefix}{_hash(code, self.seed)}{self.suffix}"

    def write(self, code: str) -> str:
        """Write ``code`` to its file (once per content); returns the path."""
        path = self.path(code)
        if not os.path.exists(path):
            os.makedirs(self.directory, mode=0o700, exist_ok=True)
            partial = f"{path}.{os.getpid()}.tmp"
            with open(partial, "w", encoding="utf-8") as f:
                f.write(code)
            os.replace(partial, path)
        return path

    def is_cell(self, path: str) -> bool:
        """Whether ``path`` is one of these cell files."""
        return path.startswith(self.prefix) and path.endswith(self.suffix)

    def remove(self) -> None:
        """Delete the directory and every cell file in it."""
        shutil.rmtree(self.directory, ignore_errors=True)
