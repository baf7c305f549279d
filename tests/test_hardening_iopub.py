"""IOPub against subscribers that read slowly or not at all (issue 14, defect 2).

The kernel's sockets are served here without a kernel: the test publishes
frames itself, a reading subscriber is a reactor socket, a stalled one is a
raw SUB that never reads (receive high-water mark 1, a 4 KiB buffer).
"""

from __future__ import annotations

import zmq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.trial.unittest import TestCase

from txkernel.channels import KernelSockets
from txkernel.connection import ConnectionInfo

from .helpers import numbered_reader
from .hostile import LogWatcher


class IOPubPolicyTests(TestCase):
    timeout = 60

    def serve(self, **kwargs) -> ConnectionInfo:
        self.subscribed: Deferred[None] = Deferred()
        self.subscriptions = 0
        self.wanted = 1

        def counted() -> None:
            self.subscriptions += 1
            if self.subscriptions == self.wanted and not self.subscribed.called:
                self.subscribed.callback(None)

        def on_subscribe(topic: bytes) -> None:
            # Runs on the IOPub thread; these tests want no welcome.
            reactor.callFromThread(counted)

        self.sockets = KernelSockets(
            reactor, ConnectionInfo(), lambda ch, f: None, on_subscribe, **kwargs
        )
        info = self.sockets.bind()
        self.addCleanup(self.sockets.close)
        return info

    def reader(
        self, info: ConnectionInfo, expected: int
    ) -> tuple[list[int], Deferred[None]]:
        """A reactor SUB that reads everything; fires once ``expected`` arrived."""
        return numbered_reader(self, info.endpoint("iopub"), expected)

    def stalled(self, info: ConnectionInfo) -> zmq.Socket:
        context = zmq.Context()
        sub = context.socket(zmq.SUB)
        sub.setsockopt(zmq.RCVHWM, 1)
        sub.setsockopt(zmq.RCVBUF, 4096)
        sub.setsockopt(zmq.SUBSCRIBE, b"")
        sub.linger = 0
        sub.connect(info.endpoint("iopub"))

        def close() -> None:
            sub.close(0)
            context.term()

        self.addCleanup(close)
        return sub

    def publish(self, count: int, size: int, batch: int) -> Deferred[None]:
        """Publish ``count`` numbered messages, ``batch`` per reactor turn of 5 ms."""
        payload = b"x" * size
        sent = iter(range(count))

        def some() -> None:
            for _ in range(batch):
                i = next(sent, None)
                if i is None:
                    loop.stop()
                    return
                self.sockets.publish([b"topic", b"%d" % i, payload])

        loop = LoopingCall(some)
        return loop.start(0.005).addCallback(lambda _: None)

    async def test_a_reader_behind_a_burst_loses_nothing(self) -> None:
        # A long stall timeout: however loaded the machine, this reader is never
        # taken for stalled, so what is checked is the waiting alone.
        info = self.serve(iopub_stall_timeout=60.0)
        got, done = self.reader(info, 5000)
        await self.subscribed
        # One burst, five times the per-subscriber queue: the thread waits
        # for the reader instead of dropping.
        for i in range(5000):
            self.sockets.publish([b"topic", b"%d" % i, b"y" * 512])
        await done
        self.assertEqual(got, list(range(5000)))

    async def test_a_stalled_subscriber_is_left_behind_and_readers_get_everything(
        self,
    ) -> None:
        logs = LogWatcher(self)
        info = self.serve(iopub_stall_timeout=0.2)
        self.wanted = 2
        got, done = self.reader(info, 5000)
        sub = self.stalled(info)
        await self.subscribed
        await self.publish(5000, 4096, batch=100)
        await done
        self.assertEqual(got, list(range(5000)))
        await self.sockets.flush()
        self.assertTrue(
            logs.matching("IOPub: a subscriber has read nothing"), logs.lines
        )
        # What the stalled subscriber can still read is bounded by its queue
        # (1,000 messages) and the socket buffers, not all 5,000.
        held = 0
        while sub.poll(300):
            sub.recv_multipart()
            held += 1
        self.assertLess(held, 2500)

    async def test_stopping_behind_a_burst_still_delivers_it_to_a_reader(
        self,
    ) -> None:
        # The kernel is stopped in the same turn as a burst far beyond the
        # per-subscriber queue (10 messages here) and the socket buffers: the
        # thread waits for the reader, as while running.
        info = self.serve(iopub_stall_timeout=60.0, iopub_hwm=10)
        got, done = self.reader(info, 3000)
        await self.subscribed
        for i in range(3000):
            self.sockets.publish([b"topic", b"%d" % i, b"y" * 4096])
        closed = self.sockets.close()
        await done
        await closed
        self.assertEqual(got, list(range(3000)))

    async def test_a_stalled_subscriber_holds_a_stop_back_only_for_the_timeout(
        self,
    ) -> None:
        # Nobody reads: the stop waits at most the stall timeout for room, then
        # closes (the trial timeout is what a stop without a bound would hit).
        info = self.serve(iopub_stall_timeout=0.2)
        self.stalled(info)
        await self.subscribed
        for i in range(3000):
            self.sockets.publish([b"topic", b"%d" % i, b"y" * 4096])
        await self.sockets.close()
        self.assertGreater(self.sockets._iopub.lossy_sends, 0)
