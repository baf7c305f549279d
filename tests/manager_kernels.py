"""Kernels for tests.test_manager, launched by kernelspecs with the repo on PYTHONPATH."""

from __future__ import annotations

from twisted.internet.defer import Deferred

from txkernel.echo import EchoKernel


class DeafToShutdown(EchoKernel):
    """Echoes, and never finishes a shutdown_request (so it is never answered)."""

    def shutdown(self, restart: bool) -> Deferred[None]:
        return Deferred()
