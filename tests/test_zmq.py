"""The ZeroMQ glue: bounded reads, so one busy socket cannot starve the reactor."""

from __future__ import annotations

import zmq
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from txkernel._zmq import ZmqSocket, make_factory


class BoundedReadTests(TestCase):
    def setUp(self) -> None:
        self.factory = make_factory(reactor)
        self.addCleanup(self.factory.shutdown)

    def connected_pusher(self, sock: ZmqSocket) -> zmq.Socket:
        address = sock.bind(f"inproc://bounded-read-{id(sock)}")
        pusher = self.factory.context.socket(zmq.PUSH)
        self.addCleanup(pusher.close, 0)
        pusher.connect(address)
        return pusher

    def test_one_read_delivers_a_batch_and_schedules_the_rest(self) -> None:
        received: list[list[bytes]] = []
        done: Deferred[None] = Deferred()

        def got(frames: list[bytes]) -> None:
            received.append(frames)
            if len(received) == 200:
                done.callback(None)

        sock = ZmqSocket(self.factory, zmq.PULL, got)
        self.addCleanup(sock.shutdown)
        pusher = self.connected_pusher(sock)
        for i in range(200):
            pusher.send_multipart([b"msg", b"%d" % i])
        # inproc: all 200 are in the socket's pipe now; nothing has been read
        sock.doRead()
        self.assertEqual(len(received), ZmqSocket.readBatch)
        self.assertIsNotNone(sock.read_scheduled)
        return done.addCallback(
            lambda _: self.assertEqual([int(f[1]) for f in received], list(range(200)))
        )

    def test_drain_reads_everything_waiting(self) -> None:
        received: list[list[bytes]] = []
        sock = ZmqSocket(self.factory, zmq.PULL, received.append)
        self.addCleanup(sock.shutdown)
        pusher = self.connected_pusher(sock)
        for i in range(150):
            pusher.send(b"%d" % i)
        sock.drain()
        self.assertEqual([int(f[0]) for f in received], list(range(150)))
        self.assertIsNone(sock.read_scheduled)
