"""Small Deferred helpers shared by the modules that run on the reactor thread."""

from __future__ import annotations

from typing import Any, TypeVar

from twisted.internet.defer import Deferred

T = TypeVar("T")


def branch(d: Deferred[T]) -> Deferred[T]:
    """A new Deferred that fires with ``d``'s result, leaving ``d``'s chain as it is."""
    out: Deferred[T] = Deferred()

    def forward(result: Any) -> Any:
        if hasattr(result, "raiseException"):
            out.errback(result)
        else:
            out.callback(result)
        return result

    d.addBoth(forward)
    return out
