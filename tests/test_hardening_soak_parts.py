"""The parts behind the soak targets, each checked alone and without timing.

- A thread that publishes stream text (a cell printing without pause) never
  makes another thread's message wait unless that message must follow text
  the other thread wrote itself (``OutputBuffer.flush_own``).
- What the kernel keeps for each execute stays small: the history's own cost
  per entry, and the replay guard's per signature (nothing); and what it
  holds for each ``print`` of a flood until the batch goes out is about the
  text itself, not an object or three per write.
"""

from __future__ import annotations

import threading
import tracemalloc
from typing import Any

from twisted.internet.task import Clock
from twisted.trial.unittest import TestCase

from txkernel.python.history import History
from txkernel.python.output import OutputBuffer
from txkernel.wire import Wire

#: Bound on joining the helper threads (they finish at once when all is well).
JOIN = 10.0


class FakeReactor(Clock):
    """A ``Clock`` that also takes ``callFromThread`` (kept to be run by hand)."""

    def __init__(self) -> None:
        super().__init__()
        self.from_threads: list[Any] = []

    def callFromThread(self, f, *args) -> None:  # noqa: N802 (Twisted's name)
        self.from_threads.append((f, args))


class StalledPublisher:
    """A ``publish`` callable that stops, inside its first call, until released."""

    def __init__(self) -> None:
        self.published: list[tuple[str, str]] = []
        self.entered = threading.Event()
        self.release = threading.Event()

    def __call__(self, name: str, text: str, request: Any) -> None:
        if not self.entered.is_set():
            self.entered.set()
            self.release.wait(JOIN)
        self.published.append((name, text))


class FlushOwnTests(TestCase):
    def setUp(self) -> None:
        self.publisher = StalledPublisher()
        self.buffer = OutputBuffer(self.publisher, FakeReactor())
        self.printer = threading.Thread(target=self._print_and_flush)
        self.addCleanup(self._finish)

    def _print_and_flush(self) -> None:
        self.buffer.write("stdout", "from the printer\n", None)
        self.buffer.flush()

    def _finish(self) -> None:
        self.publisher.release.set()
        self.printer.join(JOIN)

    def _start_printer_mid_publish(self) -> None:
        self.printer.start()
        self.assertTrue(self.publisher.entered.wait(JOIN))

    def test_a_thread_with_no_text_of_its_own_does_not_wait_for_a_printer(self) -> None:
        self._start_printer_mid_publish()
        # Returns while the printer is still inside publish: had it waited,
        # it would wait until the cleanup released the printer.
        self.buffer.flush_own()
        self.assertEqual(self.publisher.published, [])
        self.publisher.release.set()
        self.printer.join(JOIN)
        self.assertEqual(self.publisher.published, [("stdout", "from the printer\n")])

    def test_text_this_thread_wrote_still_goes_out_before_its_message(self) -> None:
        self._start_printer_mid_publish()
        wrote = threading.Event()
        seen_on_return: list[list[tuple[str, str]]] = []

        def write_then_publish() -> None:
            self.buffer.write("stdout", "mine\n", None)
            wrote.set()
            self.buffer.flush_own()  # waits for the printer's batch, then sends "mine"
            seen_on_return.append(list(self.publisher.published))

        writer = threading.Thread(target=write_then_publish)
        writer.start()
        self.assertTrue(wrote.wait(JOIN))
        self.publisher.release.set()
        writer.join(JOIN)
        self.assertEqual(
            seen_on_return,
            [[("stdout", "from the printer\n"), ("stdout", "mine\n")]],
        )

    def test_the_timer_does_not_wait_for_a_printer_and_tries_again(self) -> None:
        reactor = self.buffer._reactor
        self._start_printer_mid_publish()
        self.buffer.write("stdout", "late\n", None)
        for f, args in reactor.from_threads:
            f(*args)  # arms the 50 ms timer
        reactor.advance(0.05)  # the timer fires while the printer publishes
        self.assertEqual(self.publisher.published, [])
        self.assertEqual(len(reactor.getDelayedCalls()), 1, "no second try armed")
        self.publisher.release.set()
        self.printer.join(JOIN)
        reactor.advance(0.05)
        self.assertEqual(
            self.publisher.published,
            [("stdout", "from the printer\n"), ("stdout", "late\n")],
        )
        self.assertEqual(reactor.getDelayedCalls(), [])


def allocated_per_item(make, count: int = 20000) -> float:
    """Bytes still allocated per item after ``make(i)`` for ``count`` items."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        kept = make(count)
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    del kept
    return (after - before) / count


class PerExecuteCostTests(TestCase):
    def test_the_history_costs_little_beyond_the_source_itself(self) -> None:
        sources = [f"_soak = {i}" for i in range(20000)]

        def fill(count: int) -> History:
            history = History()
            for i in range(1, count + 1):
                history.store(i, sources[i - 1])
            return history

        # A list slot (8 bytes, with the list's spare room): a dict of
        # [source, output] lists cost about 150 bytes an entry.
        self.assertLess(allocated_per_item(fill), 16)

    def test_buffered_output_holds_the_text_not_objects_per_write(self) -> None:
        published: list[str] = []
        request = object()

        def print_lines(count: int) -> OutputBuffer:
            # As print(i) writes: the number, then the newline.
            buffer = OutputBuffer(
                lambda name, text, req: published.append(text),
                FakeReactor(),
                max_chars=10**9,
            )
            for i in range(count // 2):
                buffer.write("stdout", str(i % 1000), request)
                buffer.write("stdout", "\n", request)
            return buffer

        # About 2.5 characters a write, joined; a tuple, a str and an int
        # per write (the chunks before) cost about 150 bytes.
        self.assertLess(allocated_per_item(print_lines), 8)
        self.assertEqual(published, [])
        buffer = print_lines(20)
        buffer.flush()
        self.assertEqual(published, ["".join(f"{i}\n" for i in range(10))])

    def test_the_replay_guard_allocates_nothing_per_signature(self) -> None:
        sender = Wire(key=b"k")
        receiver = Wire(key=b"k")

        def receive(count: int) -> None:
            # The frames are gone once read, as in a kernel: what stays is
            # what the guard keeps.
            for _ in range(count):
                receiver.deserialize(sender.serialize(sender.new_message("x", {})))

        # The fingerprints go into the guard's fixed arrays; a set of ints
        # cost about 140 bytes an entry at 20,000 entries (the hex digests
        # kept before that about 210).
        self.assertLess(allocated_per_item(receive), 2)
        self.assertEqual(len(receiver.replay_history), 20000)
