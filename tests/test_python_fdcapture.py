"""Output written to file descriptors: captured for the cell when the kernel owns the process.

``FdCapture`` is tested on descriptors of the test's own (pipes), never on the
test process's fds 1 and 2; the capture of fds 1 and 2 is tested in a kernel
Jupyter launches (``python -m txkernel`` through its kernelspec).  Under an
embedding application nothing is captured and ``fileno()`` gives the host's
descriptor.
"""

from __future__ import annotations

import faulthandler
import os
import subprocess
import sys
import tempfile
import threading

from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from txkernel.connection import read_connection_file
from txkernel.python import PythonKernel, fdcapture
from txkernel.python.debugcells import CellFiles
from txkernel.python.debugger import available
from txkernel.python.fdcapture import FdCapture

from .helpers import connect, connect_to, serve, spawn, spawn_twistd
from .test_python_launched import LaunchedKernelTestCase


class FdCaptureTests(TestCase):
    """A capture of one descriptor (the write end of a pipe the test reads)."""

    timeout = 30

    def setUp(self) -> None:
        self.original_read, self.fd = os.pipe()
        os.set_blocking(self.original_read, False)
        self.addCleanup(os.close, self.original_read)
        self.addCleanup(os.close, self.fd)
        self.delivered: list[tuple[str, str]] = []
        self.capture = FdCapture(
            lambda name, text: self.delivered.append((name, text)), {self.fd: "stdout"}
        )
        self.addCleanup(self.capture.stop)

    def original_output(self) -> bytes:
        """What reached the descriptor's original target."""
        try:
            return os.read(self.original_read, 65536)
        except BlockingIOError:
            return b""

    def test_what_is_written_to_the_descriptor_is_delivered_by_drain(self) -> None:
        os.write(self.fd, b"hi\n")
        self.capture.drain()
        self.assertEqual(self.delivered, [("stdout", "hi\n")])
        self.assertEqual(self.original_output(), b"")

    def test_drain_without_c_stdio_still_delivers_what_the_pipe_holds(self) -> None:
        os.write(self.fd, b"first\n")
        self.capture.drain(c_stdio=False)
        self.capture.drain(c_stdio=False)  # nothing more: nothing delivered twice
        self.assertEqual(self.delivered, [("stdout", "first\n")])

    def test_the_ready_check_names_the_pipes_with_input(self) -> None:
        from txkernel.python.fdcapture import _ReadyCheck

        empty_read, empty_write = os.pipe()
        full_read, full_write = os.pipe()
        for fd in (empty_read, empty_write, full_read, full_write):
            self.addCleanup(os.close, fd)
        os.write(full_write, b"x")
        check = _ReadyCheck([empty_read, full_read])
        self.assertEqual(check.ready(), [full_read])
        os.read(full_read, 1)
        self.assertEqual(check.ready(), [])

    def test_a_child_process_writing_to_the_inherited_descriptor_is_captured(
        self,
    ) -> None:
        # (not sh: dash cannot redirect to a descriptor above 9, and in a
        # whole-suite run the descriptor can be 13)
        subprocess.run(
            [sys.executable, "-c", f"import os; os.write({self.fd}, b'from child\\n')"],
            pass_fds=[self.fd],
            check=True,
        )
        self.capture.drain()
        self.assertEqual("".join(text for _, text in self.delivered), "from child\n")

    def test_utf8_split_between_writes_is_decoded_whole(self) -> None:
        encoded = "né".encode()
        os.write(self.fd, encoded[:2])
        self.capture.drain()
        os.write(self.fd, encoded[2:])
        self.capture.drain()
        self.assertEqual("".join(text for _, text in self.delivered), "né")

    def test_a_descriptor_that_is_not_open_is_refused_and_nothing_is_taken(
        self,
    ) -> None:
        closed = 4000  # a descriptor number nothing here opens
        self.assertRaises(OSError, os.fstat, closed)
        target_read, target = os.pipe()
        self.addCleanup(os.close, target_read)
        self.addCleanup(os.close, target)
        self.assertRaises(
            OSError,
            FdCapture,
            lambda name, text: None,
            {target: "stdout", closed: "stderr"},
        )
        os.write(target, b"still the original\n")
        self.assertEqual(os.read(target_read, 100), b"still the original\n")

    async def test_the_reader_thread_delivers_without_drain(self) -> None:
        arrived: Deferred[tuple[str, str]] = Deferred()
        capture_fd = os.dup(self.fd)
        self.addCleanup(os.close, capture_fd)
        capture = FdCapture(
            lambda name, text: reactor.callFromThread(arrived.callback, (name, text)),
            {capture_fd: "stderr"},
        )
        self.addCleanup(capture.stop)
        os.write(capture_fd, b"unprompted\n")
        self.assertEqual(await arrived, ("stderr", "unprompted\n"))

    def test_stop_restores_the_descriptor_and_the_terminal_writes_to_the_original(
        self,
    ) -> None:
        self.capture.terminal("stdout").write("log line\n")
        self.assertEqual(self.original_output(), b"log line\n")
        os.write(self.fd, b"last words\n")
        self.capture.stop()
        self.assertEqual(self.delivered, [("stdout", "last words\n")])
        os.write(self.fd, b"after\n")
        self.assertEqual(self.original_output(), b"after\n")
        self.assertNotIn("txkernel-fd-capture", [t.name for t in threading.enumerate()])


class EmbeddedFilenoTests(TestCase):
    """Served in this process (as under twistd): nothing captured, fileno() is the host's."""

    timeout = 60

    async def test_fileno_is_the_host_streams_and_faulthandler_enables(self) -> None:
        self.assertIsNone(fdcapture.active())
        was_enabled = faulthandler.is_enabled()
        self.addCleanup(lambda: None if was_enabled else faulthandler.disable())
        client = await connect(self, await serve(self, PythonKernel()))
        expected = sys.stderr.fileno()
        result = await client.execute(
            "import faulthandler, sys\nfaulthandler.enable()\n(sys.stdout.fileno(), sys.stderr.fileno())"
        )
        self.assertEqual(result.content["status"], "ok")
        [value] = result.of_type("execute_result")
        self.assertEqual(
            value["content"]["data"]["text/plain"],
            f"({sys.stdout.fileno()}, {expected})",
        )


class LaunchedCaptureTests(LaunchedKernelTestCase):
    """``python -m txkernel``: fds 1 and 2 are the cells'."""

    async def test_fd_output_of_commands_children_and_c_code_reaches_the_cell(
        self,
    ) -> None:
        client = await self.launch()
        result = await client.execute(
            "import os, subprocess, sys, ctypes\n"
            "print('a')\n"
            "os.system('echo b')\n"
            "print('c')\n"
            "subprocess.run(['echo', 'child'])\n"
            "subprocess.run(['echo', 'given'], stdout=sys.stdout)\n"
            "os.system('echo to-err >&2')\n"
            "ctypes.CDLL(None).printf(b'from C\\n');"
        )
        self.assertEqual(result.content["status"], "ok", result.content)
        self.assertEqual(result.stream_text(), "a\nb\nc\nchild\ngiven\nfrom C\n")
        self.assertEqual(result.stream_text("stderr"), "to-err\n")
        later = await client.execute("os.system('echo only here')")
        self.assertEqual(later.stream_text(), "only here\n")
        silent = await client.execute("os.system('echo silently')", silent=True)
        self.assertEqual(silent.stream_text(), "silently\n")

    async def test_faulthandler_writes_into_the_cell(self) -> None:
        client = await self.launch()
        code = "import faulthandler\nfaulthandler.enable()\nfaulthandler.dump_traceback(all_threads=False)"
        result = await client.execute(code)
        self.assertEqual(result.content["status"], "ok", result.content)
        text = result.stream_text("stderr")
        self.assertIn("Stack (most recent call first)", text)
        # faulthandler prints the code's own file name: with debugpy
        # installed, a cell's is its debugger cell file (see debugcells).
        name = "<cell-1>"
        if available():
            pid = self.km.provisioner.process.pid
            name = CellFiles(os.path.join(tempfile.gettempdir(), f"txkernel_{pid}")).path(code)
        self.assertIn(f'File "{name}", line 3', text)

    async def test_warnings_appear_in_the_cell_once_per_location(self) -> None:
        client = await self.launch()
        code = "import warnings\nfor i in range(3):\n    warnings.warn('careful')\nwarnings.warn('old', DeprecationWarning)"
        result = await client.execute(code)
        text = result.stream_text("stderr")
        self.assertEqual(text.count("UserWarning: careful"), 1, text)
        self.assertIn("<cell-1>:3: UserWarning: careful", text)
        self.assertIn("DeprecationWarning: old", text)


class HandRunTests(TestCase):
    """``python -m txkernel`` run by hand: its log stays on the terminal, cell output does not."""

    timeout = 60

    async def test_the_log_keeps_the_terminal_and_fd_output_goes_to_the_cell(
        self,
    ) -> None:
        proto = spawn(self, "-m", "txkernel")
        match = await proto.wait_for(r"jupyter console --existing (\S+)")
        client = await connect_to(self, read_connection_file(match.group(1)))
        result = await client.execute(
            "import os, sys\nos.system('echo fd-output')\nsys.__stdout__.write('raw-stdout\\n');"
        )
        self.assertEqual(result.stream_text(), "fd-output\nraw-stdout\n")
        proto.transport.signalProcess("TERM")
        self.assertEqual(await proto.ended, 0, proto.output)
        self.assertNotIn("fd-output", proto.output)
        self.assertIn("jupyter console --existing", proto.output)


class TwistdTests(TestCase):
    """Under twistd the host owns fds 1 and 2 and shows warnings in its log."""

    timeout = 90

    async def test_cell_warnings_reach_the_cell_and_fileno_is_the_processes(
        self,
    ) -> None:
        proto = spawn_twistd(self, "txkernel")
        match = await proto.wait_for(r"jupyter console --existing (\S+)")
        client = await connect_to(self, read_connection_file(match.group(1)))
        result = await client.execute(
            "import faulthandler, sys, warnings\n"
            "faulthandler.enable()\n"
            "warnings.warn('in the cell')\n"
            "(sys.stdout.fileno(), sys.stderr.fileno())"
        )
        self.assertEqual(result.content["status"], "ok", result.content)
        self.assertIn("UserWarning: in the cell", result.stream_text("stderr"))
        [value] = result.of_type("execute_result")
        self.assertEqual(value["content"]["data"]["text/plain"], "(1, 2)")
        self.assertNotIn("in the cell", proto.output)
