"""The ZeroMQ glue: bounded reads, so one busy socket cannot starve the reactor."""

from __future__ import annotations

import zmq
from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults
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

    def read_once(
        self, messages: list[list[bytes]]
    ) -> tuple[ZmqSocket, list[list[bytes]], Deferred[None]]:
        """Push ``messages`` to a PULL socket, then call its ``doRead`` once: the
        socket, what it received (later reads add the rest), and a Deferred
        that fires once every message has arrived."""
        received: list[list[bytes]] = []
        done: Deferred[None] = Deferred()

        def got(frames: list[bytes]) -> None:
            received.append(frames)
            if len(received) == len(messages):
                done.callback(None)

        sock = ZmqSocket(self.factory, zmq.PULL, got)
        self.addCleanup(sock.shutdown)
        pusher = self.connected_pusher(sock)
        for message in messages:
            pusher.send_multipart(message)
        # inproc: all of them are in the socket's pipe now; nothing has been read
        sock.doRead()
        return sock, received, done

    def test_one_read_delivers_a_batch_and_schedules_the_rest(self) -> None:
        sock, received, done = self.read_once([[b"msg", b"%d" % i] for i in range(200)])
        self.assertEqual(len(received), ZmqSocket.readBatch)
        self.assertIsNotNone(sock.read_scheduled)
        return done.addCallback(
            lambda _: self.assertEqual([int(f[1]) for f in received], list(range(200)))
        )

    def test_one_read_stops_after_its_byte_budget(self) -> None:
        big = b"x" * (64 * 1024)
        sock, received, done = self.read_once([[b"%d" % i, big] for i in range(20)])
        # 64 KiB and a few bytes each: the fourth reaches 256 KiB.
        self.assertEqual(len(received), 4)
        self.assertIsNotNone(sock.read_scheduled)
        return done.addCallback(
            lambda _: self.assertEqual([int(f[0]) for f in received], list(range(20)))
        )

    def test_one_read_handles_a_message_bigger_than_the_budget(self) -> None:
        sock, received, done = self.read_once(
            [[b"x" * (ZmqSocket.readBytes + 1)], [b"next"]]
        )
        self.assertEqual([len(f[0]) for f in received], [ZmqSocket.readBytes + 1])
        self.assertIsNotNone(sock.read_scheduled)
        return done

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


class ReplyWhileReadingTests(TestCase):
    """A reply sent while its request is handled leaves the socket readable."""

    def setUp(self) -> None:
        self.factory = make_factory(reactor)
        self.addCleanup(self.factory.shutdown)

    def ping_pong(
        self, address: str, later: bool, rounds: int = 300
    ) -> Deferred[ZmqSocket]:
        """``rounds`` pings from a DEALER, each answered by a ROUTER bound
        to ``address``: from its handler, or (``later``) from a timer,
        outside any read; the client sends its next ping the same way.
        Fires with the server once every pong came back in order."""
        done: Deferred[None] = Deferred()
        answered: list[bytes] = []

        def send(sock: ZmqSocket, frames: list[bytes]) -> None:
            if later:
                reactor.callLater(0, sock.send, frames)
            else:
                sock.send(frames)

        def serve(frames: list[bytes]) -> None:
            send(server, [frames[0], b"pong", frames[1]])

        def pong(frames: list[bytes]) -> None:
            answered.append(frames[1])
            if len(answered) == rounds:
                done.callback(None)
            else:
                send(client, [b"%d" % len(answered)])

        server = ZmqSocket(self.factory, zmq.ROUTER, serve)
        self.addCleanup(server.shutdown)
        bound = server.bind(address)
        client = ZmqSocket(self.factory, zmq.DEALER, pong)
        self.addCleanup(client.shutdown)
        client.connect(bound)
        client.send([b"0"])

        def check(_: object) -> ZmqSocket:
            self.assertEqual(answered, [b"%d" % i for i in range(rounds)])
            return server

        return done.addCallback(check)

    def test_a_ping_pong_of_replies_sent_from_the_handler_never_stalls(self) -> None:
        def check(server: ZmqSocket) -> None:
            # The server's reads found it empty after each reply: no read
            # is left waiting for a later turn.
            self.assertIsNone(server.read_scheduled)

        return self.ping_pong("tcp://127.0.0.1:*", later=False).addCallback(check)

    def test_a_reply_sent_while_reading_needs_no_timer(self) -> None:
        """The read loop looks at the socket again after the handler's send,
        so a request answered while it is read costs no reactor timer; a
        send made outside a read still gets its read a turn later."""
        timers: list[object] = []

        class CountingReactor:
            def __getattr__(self, name: str) -> object:
                return getattr(reactor, name)

            def callLater(self, *args: object, **kwargs: object) -> object:
                call = reactor.callLater(*args, **kwargs)  # type: ignore[arg-type]
                timers.append(call)
                return call

        self.factory.reactor = CountingReactor()
        answered: Deferred[list[bytes]] = Deferred()
        server = ZmqSocket(
            self.factory, zmq.ROUTER, lambda f: server.send([f[0], b"pong"])
        )
        self.addCleanup(server.shutdown)
        address = server.bind("inproc://reply-while-reading")
        client = ZmqSocket(self.factory, zmq.DEALER, answered.callback)
        self.addCleanup(client.shutdown)
        client.connect(address)
        client.send([b"ping"])
        self.assertEqual(len(timers), 1)  # the client's send, outside any read
        server.drain()  # the ping arrives and is answered inside the read
        self.assertEqual(len(timers), 1)
        self.assertIsNone(server.read_scheduled)
        # The client's scheduled read finds the pong.
        return answered.addCallback(self.assertEqual, [b"pong"])

    def test_a_send_outside_a_read_with_input_waiting_schedules_a_read(self) -> None:
        got: list[list[bytes]] = []
        server = ZmqSocket(self.factory, zmq.ROUTER, got.append)
        self.addCleanup(server.shutdown)
        address = server.bind("inproc://send-with-input-waiting")
        peer = self.factory.context.socket(zmq.DEALER)
        self.addCleanup(peer.close, 0)
        peer.connect(address)
        peer.send(b"hello")
        peer.send(b"again")
        server.drain()  # (the first, and the peer's identity)
        identity = got[0][0]
        peer.send(b"waiting")
        self.assertTrue(server.socket.poll(5000))  # (inproc: there at once)
        server.send([identity, b"out of turn"])
        self.assertIsNotNone(server.read_scheduled)
        self.assertEqual(peer.recv(), b"out of turn")

    def test_a_ping_pong_of_replies_sent_on_later_turns_never_stalls(self) -> None:
        """Each reply is sent from a timer, outside any read (as a cell's
        reply is), over TCP and inproc: the socket keeps announcing input."""
        return gatherResults(
            [
                self.ping_pong("tcp://127.0.0.1:*", later=True),
                self.ping_pong("inproc://later-turns", later=True),
            ]
        )
