"""The thread that runs, while a frontend debugs, the calls cells left to the reactor.

Without debugpy: a stop at a breakpoint is what debugpy's ``suspended``
reads (``additional_info.is_in_wait_loop`` on the thread), set by the call
itself.  The end-to-end flow with debugpy is in ``tests.test_python_debugger``.
"""

from __future__ import annotations

import contextvars
import threading
from types import SimpleNamespace
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import deferLater
from twisted.python.threadable import isInIOThread
from twisted.trial.unittest import TestCase

from txkernel.python import executor
from txkernel.python.debugcalls import ReactorCalls, kernels_own

JOIN = 10.0
marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="unset")


class ReactorCallsTests(TestCase):
    def setUp(self) -> None:
        self.calls = ReactorCalls(reactor)
        self.addCleanup(self._stop)

    def _stop(self) -> None:
        thread = self.calls._thread
        self.calls.stop()
        if thread is not None:
            thread.join(JOIN)
            self.assertFalse(thread.is_alive())

    def test_a_call_runs_on_the_calls_thread_in_the_callers_context(self) -> None:
        token = marker.set("the cell's")
        try:
            seen = self.calls.run(
                lambda a, b=0: (threading.current_thread().name, marker.get(), a + b),
                (1,),
                {"b": 2},
            )
        finally:
            marker.reset(token)
        self.assertEqual(seen, ("txkernel-reactor-calls", "the cell's", 3))
        # The same thread for the next call.
        self.assertEqual(
            self.calls.run(lambda: threading.current_thread().name, (), {}),
            "txkernel-reactor-calls",
        )

    def test_an_exception_is_raised_to_the_reactor(self) -> None:
        def fail() -> None:
            raise ValueError("from the call")

        with self.assertRaises(ValueError):
            self.calls.run(fail, (), {})

    async def test_a_stopped_call_lets_the_reactor_go_on_and_later_calls_run_here(self) -> None:
        release = threading.Event()
        ended: Deferred[None] = Deferred()

        def stops_then_fails() -> None:
            thread = threading.current_thread()
            thread.additional_info = SimpleNamespace(is_in_wait_loop=True)  # type: ignore[attr-defined]
            release.wait(JOIN)
            thread.additional_info.is_in_wait_loop = False  # type: ignore[attr-defined]
            reactor.callFromThread(ended.callback, None)
            raise KeyError("after the stop")

        here = threading.get_ident()
        self.assertIsNone(self.calls.run(stops_then_fails, (), {}))
        # Stopped: the next call runs on the reactor's thread.
        self.assertEqual(self.calls.run(threading.get_ident, (), {}), here)
        release.set()
        await ended
        # Its failure is logged once it has ended (from the reactor thread).
        await deferLater(reactor, 0, lambda: None)
        await deferLater(reactor, 0, lambda: None)
        [failure] = self.flushLoggedErrors(KeyError)
        self.assertEqual(str(failure.value), "'after the stop'")
        # Ended: calls go to the calls thread again.
        self.assertNotEqual(self.calls.run(threading.get_ident, (), {}), here)

    async def test_run_in_reactor_from_a_call_gives_the_reactor_back(self) -> None:
        done: Deferred[Any] = Deferred()

        def asks_the_reactor() -> None:
            answer = executor.call_in_reactor(reactor, lambda: ("answered", isInIOThread()))
            reactor.callFromThread(done.callback, answer)

        # The reactor went on (it had to, to answer), so the call returned None.
        self.assertIsNone(self.calls.run(asks_the_reactor, (), {}))
        self.assertEqual(await done, ("answered", True))

    def test_the_kernels_own_calls_are_known(self) -> None:
        self.assertTrue(kernels_own(executor.call_in_reactor))
        self.assertFalse(kernels_own(lambda: None))
        self.assertFalse(kernels_own(Deferred().callback))
