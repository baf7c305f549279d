"""How long the Python kernel's completion takes, and that it keeps to its budget.

    python bench/completion.py [--repeat 20]

Each case runs first in a fresh interpreter (``cold``: modules the cell
imports are not imported yet, so completion may import them in the
background or read their source) and then ``--repeat`` times in this one
(``warm``).  Prints, per case, the cold time, the warm median and max, and the
number of matches.  The last case imports a module that takes 2 s to import
(written to a temporary directory and counted as installed): completion must
return within its budget (150 ms) with the names read from the source.

A quick check of our own numbers, calling ``complete`` directly (no sockets).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

CASES = [
    "import collections; collections.Ord",
    "from os import pa",
    "import json\njson.du",
    "import xml.etree.ElementTree as ET; ET.Ele",
    "import email; email.mime.",
    "import ",
    "s = 'text'; s.",
    "import numpy as np; np.ar",
]

_ONE = """
import json, sys, time
from txkernel.python import modules
from txkernel.python.completion import complete
if len(sys.argv) > 2:
    sys.path.insert(0, sys.argv[2])
    roots = modules._install_roots() + (sys.argv[2] + "/",)
    modules._install_roots = lambda: roots
code = sys.argv[1]
start = time.perf_counter()
reply = complete(code, len(code), {})
print(json.dumps([time.perf_counter() - start, len(reply["matches"])]))
"""


def cold(code: str, path: str | None = None) -> tuple[float, int]:
    args = [sys.executable, "-c", _ONE, code] + ([path] if path else [])
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    elapsed, count = json.loads(out)
    return elapsed, count


def warm(code: str, repeat: int) -> list[float]:
    from txkernel.python.completion import complete

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        complete(code, len(code), {})
        times.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    for code in CASES:
        first, count = cold(code)
        times = warm(code, args.repeat)
        print(
            f"{code!r:48} cold {first * 1000:6.1f} ms   warm median "
            f"{statistics.median(times) * 1000:6.2f} ms, max {max(times) * 1000:6.2f} ms   "
            f"{count} matches"
        )
    with tempfile.TemporaryDirectory() as path:
        with open(os.path.join(path, "slow_to_import.py"), "w") as f:
            f.write("import time\ntime.sleep(2)\ndef from_the_source(): pass\n")
        elapsed, count = cold("import slow_to_import as s; s.", path)
        print(
            f"{'a module that takes 2 s to import':48} cold {elapsed * 1000:6.1f} ms   {count} matches"
        )


if __name__ == "__main__":
    main()
