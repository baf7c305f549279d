"""Input/output history of the built-in Python kernel.

``History`` keeps, in memory and for the kernel's life, the source of every
execution (and optionally its ``text/plain`` result) and answers Jupyter
``history_request`` messages with ``History.reply``.

Behaviour choices:

* ``tail``: the last ``n`` entries (all when ``n`` is absent or None).
* ``range``: ``session`` 0 (or this session's number) is the current session;
  a negative session is relative to the current one, and earlier sessions
  are not kept, so they reply with no entries.  ``start`` (default 1) and
  ``stop`` are line numbers, ``stop`` exclusive and None for "to the end";
  negative values count back from the end, as in IPython.
* ``search``: ``pattern`` (default ``"*"``) is a case-sensitive glob matched
  with ``fnmatch`` against the *whole* input, like IPython's history
  database and ipykernel; it is not wrapped in ``*...*``, so look for a
  substring with ``"*text*"``.  ``unique`` keeps only the latest occurrence
  of each input; ``n`` keeps the last ``n`` matches.
* ``raw`` is accepted and ignored: inputs are stored untransformed.
* An unknown ``hist_access_type`` gives ``{"status": "ok", "history": []}``,
  as Jupyter kernels do; a known field of the wrong type gives an error reply.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from fnmatch import fnmatchcase
from typing import Any

__all__ = ["History", "HistoryEntry"]

#: One stored execution: ``(line_number, source, output)``.
HistoryEntry = tuple[int, str, str | None]


class History:
    """The kernel's history of inputs (and outputs), safe across threads."""

    def __init__(self, session: int = 1) -> None:
        self.session = session
        self._lock = threading.Lock()
        # Execution numbers are consecutive, so the sources are a list indexed
        # by line number (None where a number was not stored): a few bytes an
        # entry beyond the source itself, where a dict of [source, output]
        # lists cost about 150.  Outputs are rarer and kept by line number.
        self._sources: list[str | None] = []
        self._outputs: dict[int, str | None] = {}

    def store(self, line_number: int, source: str, output: str | None = None) -> None:
        """Record *source* (and its *output*) as execution *line_number*."""
        if line_number < 0:
            raise ValueError(f"line number {line_number} is negative")
        with self._lock:
            sources = self._sources
            if line_number >= len(sources):
                sources.extend([None] * (line_number + 1 - len(sources)))
            sources[line_number] = source
            if output is None:
                self._outputs.pop(line_number, None)
            else:
                self._outputs[line_number] = output

    def set_output(self, line_number: int, output: str | None) -> None:
        """Record the ``text/plain`` *output* of execution *line_number*.

        Raises ``KeyError`` if that execution's input was never stored.
        """
        with self._lock:
            sources = self._sources
            if not 0 <= line_number < len(sources) or sources[line_number] is None:
                raise KeyError(line_number)
            if output is None:
                self._outputs.pop(line_number, None)
            else:
                self._outputs[line_number] = output

    def entries(self) -> list[HistoryEntry]:
        """Return a snapshot of every entry, oldest first."""
        with self._lock:
            outputs = self._outputs
            return [
                (n, src, outputs.get(n))
                for n, src in enumerate(self._sources)
                if src is not None
            ]

    def __len__(self) -> int:
        with self._lock:
            return sum(1 for src in self._sources if src is not None)

    def reply(self, content: dict[str, Any]) -> dict[str, Any]:
        """Return the ``history_reply`` content for a ``history_request``."""
        try:
            output = _field(content, "output", bool, False)
            _field(content, "raw", bool, True)
            select = _SELECTORS.get(content.get("hist_access_type"))
            entries = select(self, content) if select else []
        except (TypeError, ValueError) as e:
            return _error_reply(e)
        return {"status": "ok", "history": [self._row(e, output) for e in entries]}

    def _row(self, entry: HistoryEntry, output: bool) -> list[Any]:
        """Format *entry* as a ``history_reply`` row."""
        line, source, out = entry
        return [self.session, line, [source, out] if output else source]

    def _tail(self, content: dict[str, Any]) -> list[HistoryEntry]:
        """Entries for a ``tail`` request: the last ``n``."""
        n = _field(content, "n", int, None)
        return _last(self.entries(), n)

    def _range(self, content: dict[str, Any]) -> list[HistoryEntry]:
        """Entries for a ``range`` request: lines start <= line < stop."""
        session = _field(content, "session", int, 0)
        start = _field(content, "start", int, 1)
        stop = _field(content, "stop", int, None)
        if session not in (0, self.session):
            return []
        entries = self.entries()
        end = entries[-1][0] + 1 if entries else 1
        start = start + end if start < 0 else start
        stop = end if stop is None else (stop + end if stop < 0 else stop)
        return [e for e in entries if start <= e[0] < stop]

    def _search(self, content: dict[str, Any]) -> list[HistoryEntry]:
        """Entries for a ``search`` request: inputs matching ``pattern``."""
        pattern = _field(content, "pattern", str, "*")
        unique = _field(content, "unique", bool, False)
        n = _field(content, "n", int, None)
        found = [e for e in self.entries() if fnmatchcase(e[1], pattern)]
        if unique:
            found = _latest_unique(found)
        return _last(found, n)


_SELECTORS: dict[Any, Callable[[History, dict[str, Any]], list[HistoryEntry]]] = {
    "tail": History._tail,
    "range": History._range,
    "search": History._search,
}


def _field(content: dict[str, Any], name: str, kind: type, default: Any) -> Any:
    """Return ``content[name]`` checked to be a *kind*, or *default*.

    An absent or None field gives *default*; a wrong type raises TypeError.
    """
    value = content.get(name)
    if value is None:
        return default
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise TypeError(f"{name} must be {kind.__name__}, not {value!r}")
    return value


def _last(entries: list[HistoryEntry], n: int | None) -> list[HistoryEntry]:
    """The last *n* of *entries* (all of them when *n* is None)."""
    if n is None:
        return entries
    return entries[-n:] if n > 0 else []


def _latest_unique(entries: list[HistoryEntry]) -> list[HistoryEntry]:
    """Keep only the latest entry for each distinct input, oldest first."""
    latest = {source: (line, source, out) for line, source, out in entries}
    return sorted(latest.values(), key=lambda entry: entry[0])


def _error_reply(error: Exception) -> dict[str, Any]:
    """A ``history_reply`` reporting a malformed request."""
    return {
        "status": "error",
        "ename": type(error).__name__,
        "evalue": str(error),
        "traceback": [],
    }
