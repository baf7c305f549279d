"""IOPub messages queued by the reactor thread, whose doorbell rings once per
reactor turn (or every RING_EVERY messages): none waits, none is lost, order
is kept, and stopping at once still sends everything."""

from __future__ import annotations

import threading

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from txkernel.connection import ConnectionInfo
from txkernel.iopub import RING_EVERY, IOPubThread
from txkernel.testing import expect_logged
from txkernel.wire import PendingFrames

from .helpers import numbered_reader


class DoorbellTests(TestCase):
    timeout = 30

    async def start(
        self, expected: int
    ) -> tuple[IOPubThread, list[int], Deferred[None]]:
        """An IOPub thread with one reading subscriber (once it is subscribed);
        the Deferred fires when ``expected`` messages have arrived."""
        subscribed: Deferred[None] = Deferred()

        def welcome(topic: bytes) -> None:
            # On the IOPub thread; these tests want no welcome.
            reactor.callFromThread(lambda: subscribed.called or subscribed.callback(None))

        iopub = IOPubThread(reactor, ConnectionInfo().endpoint("iopub"), welcome)
        endpoint = iopub.start()
        self.addCleanup(iopub.stop)
        got, done = numbered_reader(self, endpoint, expected)
        await subscribed
        return iopub, got, done

    async def test_one_turn_of_many_messages_arrives_in_order(self) -> None:
        count = 3 * RING_EVERY + 5
        iopub, got, done = await self.start(count)
        for i in range(count):  # one reactor turn, no flush
            iopub.send([b"topic", str(i).encode()])
        await done
        self.assertEqual(got, list(range(count)))

    async def test_a_single_message_is_sent_without_a_flush(self) -> None:
        iopub, got, done = await self.start(1)
        iopub.send([b"topic", b"7"])
        await done
        self.assertEqual(got, [7])

    async def test_messages_from_other_threads_keep_their_order(self) -> None:
        iopub, got, done = await self.start(20)
        for i in range(10):
            iopub.send([b"topic", str(i).encode()])
        worker = threading.Thread(
            target=lambda: [
                iopub.send([b"topic", str(i).encode()]) for i in range(10, 20)
            ]
        )
        worker.start()
        worker.join()
        await done
        self.assertEqual(got, list(range(20)))

    async def test_stop_right_after_sending_delivers_everything(self) -> None:
        iopub, got, done = await self.start(5)
        for i in range(5):
            iopub.send([b"topic", str(i).encode()])
        await iopub.stop()
        await done
        self.assertEqual(got, list(range(5)))
        # and leaves no call of its own behind on the reactor
        left = [
            c
            for c in reactor.getDelayedCalls()
            if getattr(c.func, "__self__", None) is iopub
        ]
        self.assertEqual(left, [])

    async def test_pending_frames_go_out_in_their_place(self) -> None:
        """Frames serialized by the IOPub thread keep their place in the queue."""
        iopub, got, done = await self.start(30)
        threads: set[str] = set()

        def pending(i: int) -> PendingFrames:
            def make() -> list[bytes]:
                threads.add(threading.current_thread().name)
                return [b"topic", str(i).encode()]

            return PendingFrames(make)

        for i in range(30):
            iopub.send(pending(i) if i % 3 else [b"topic", str(i).encode()])
        await done
        self.assertEqual(got, list(range(30)))
        self.assertEqual(threads, {"txkernel-iopub"})

    async def test_a_message_that_cannot_be_serialized_is_logged_and_skipped(
        self,
    ) -> None:
        expect_logged(self, ZeroDivisionError)
        iopub, got, done = await self.start(2)
        iopub.send([b"topic", b"1"])
        iopub.send(PendingFrames(lambda: [b"topic", str(1 // 0).encode()]))
        iopub.send([b"topic", b"2"])
        await done
        self.assertEqual(got, [1, 2])
        await iopub.flush()
        self.assertEqual(len(self.flushLoggedErrors(ZeroDivisionError)), 1)
