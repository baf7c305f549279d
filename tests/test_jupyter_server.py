"""txkernel behind a real Jupyter Server, driven through its REST and websocket API.

This is the path every web front end takes (JupyterLab, Notebook 7, VS Code
on a remote server): ``/api/kernels`` starts the kernel from its kernelspec,
``/api/kernels/<id>/channels`` carries the messages as JSON over a websocket,
and ``/interrupt``, ``/restart`` and ``DELETE`` manage the process.  The
server is a child process (see :mod:`tests.jupyter_server`); the websocket
client is autobahn's, on the reactor.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import TimeoutError
from twisted.trial.unittest import TestCase

from .jupyter_server import (
    JupyterServer,
    KernelChannels,
    interrupt_sleeping_cell,
    start_server,
)


async def wait_until_ready(
    channels: KernelChannels, seconds: int = 60
) -> dict[str, Any]:
    """Send a ``kernel_info_request`` each second until one of them has both
    its reply and its ``idle`` status on IOPub (as jupyter_client waits for a
    kernel that is starting: only then is IOPub known to be connected, so
    that no output of the next request is lost); fires with that reply's
    content.  A reply that comes later than a second still counts, so a
    slow server only delays this, and after ``seconds`` it fails."""
    sent: set[str] = set()
    replies: dict[str, dict[str, Any]] = {}
    idle: set[str] = set()

    def answered(msg: dict[str, Any]) -> bool:
        parent = msg["parent_header"].get("msg_id")
        if parent not in sent:
            return False
        if msg["msg_type"] == "kernel_info_reply":
            replies[parent] = msg
        elif (
            msg["msg_type"] == "status"
            and msg["content"]["execution_state"] == "idle"
        ):
            idle.add(parent)
        return parent in replies and parent in idle

    for _ in range(seconds):
        sent.add(channels.send("shell", "kernel_info_request", {}))
        try:
            last = await channels.wait(answered, 1.0, "a kernel_info_reply and idle")
        except TimeoutError:
            continue
        return replies[last["parent_header"]["msg_id"]]["content"]
    raise AssertionError(
        f"none of {len(sent)} kernel_info_requests in {seconds} s had its reply"
        f" and idle ({len(replies)} replies, {len(idle)} idle statuses)"
    )


class JupyterServerTests(TestCase):
    timeout = 150

    async def start_kernel(self) -> tuple[JupyterServer, str, KernelChannels]:
        server = await start_server(self)
        code, specs = await server.request("GET", "api/kernelspecs")
        self.assertEqual(code, 200)
        self.assertIn(server.kernel_name, specs["kernelspecs"])
        code, model = await server.request(
            "POST", "api/kernels", {"name": server.kernel_name}
        )
        self.assertEqual(code, 201, model)
        self.assertEqual(model["name"], server.kernel_name)
        channels = await KernelChannels.connect(self, server, model["id"])
        return server, model["id"], channels

    async def test_execute_interrupt_restart_shutdown(self) -> None:
        server, kernel_id, channels = await self.start_kernel()
        info = await wait_until_ready(channels)
        self.assertEqual(info["implementation"], "txkernel")
        self.assertEqual(info["language_info"]["name"], "python")
        (first_pid,) = server.kernel_processes()

        # Execute: the reply, the output, then idle.
        msg_id = channels.execute("x = 6 * 7\nprint('hello', x)\nx")
        reply = await channels.reply_to(msg_id)
        await channels.status(msg_id, "idle")
        self.assertEqual(reply["msg_type"], "execute_reply")
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(reply["content"]["execution_count"], 1)
        iopub = channels.iopub_for(msg_id)
        self.assertEqual(
            [m["msg_type"] for m in iopub],
            ["status", "execute_input", "stream", "execute_result", "status"],
        )
        self.assertEqual(iopub[2]["content"], {"name": "stdout", "text": "hello 42\n"})
        self.assertEqual(iopub[3]["content"]["data"], {"text/plain": "42"})

        # Interrupt a cell that would sleep for a minute; the namespace survives.
        code, reply = await interrupt_sleeping_cell(server, channels, kernel_id)
        self.assertEqual(code, 204)
        self.assertEqual(reply["content"]["status"], "error")
        self.assertEqual(reply["content"]["ename"], "KeyboardInterrupt")
        msg_id = channels.execute("x")
        reply = await channels.reply_to(msg_id)
        self.assertEqual(reply["content"]["status"], "ok")
        self.assertEqual(reply["content"]["execution_count"], 3)
        await channels.status(msg_id, "idle")

        # Restart: a new process, answering kernel_info before anything else
        # is sent; the count starts again and the namespace is fresh.
        code, model = await server.request("POST", f"api/kernels/{kernel_id}/restart")
        self.assertEqual(code, 200, model)
        self.assertEqual(model["id"], kernel_id)
        info = await wait_until_ready(channels)
        self.assertEqual(info["implementation"], "txkernel")
        (second_pid,) = server.kernel_processes()
        self.assertNotEqual(second_pid, first_pid)
        msg_id = channels.execute("'x' in globals()")
        reply = await channels.reply_to(msg_id)
        await channels.status(msg_id, "idle")
        self.assertEqual(reply["content"]["execution_count"], 1)
        (result,) = [
            m for m in channels.iopub_for(msg_id) if m["msg_type"] == "execute_result"
        ]
        self.assertEqual(result["content"]["data"], {"text/plain": "False"})

        # Shut down: the server forgets the kernel, the process is gone, and
        # the websocket is closed by the server.
        code, _ = await server.request("DELETE", f"api/kernels/{kernel_id}")
        self.assertEqual(code, 204)
        code, kernels = await server.request("GET", "api/kernels")
        self.assertEqual((code, kernels), (200, []))
        self.assertEqual(server.kernel_processes(), [])
        code, _ = await server.request("GET", f"api/kernels/{kernel_id}")
        self.assertEqual(code, 404)

    async def test_stopping_the_server_ends_its_kernels(self) -> None:
        """A kernel still running when the server is told to stop is shut down
        with it (the cleanup would fail the test if its process survived)."""
        server, kernel_id, channels = await self.start_kernel()
        await wait_until_ready(channels)
        self.assertEqual(len(server.kernel_processes()), 1)
        await channels.close()
        await server.stop()
        self.assertEqual(server.kernel_processes(), [])
        self.assertIn("Shutting down 1 kernel", server.output.output)
