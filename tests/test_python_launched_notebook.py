"""A kernel Jupyter launches, driven by jupyter_client's own blocking client as a notebook would."""

from __future__ import annotations

from typing import Any

from .test_python_launched import LaunchedKernelTestCase

CELL = """\
import os, warnings
os.system("echo hi")
warnings.warn("mind the gap")
class Bad:
    def _repr_html_(self):
        raise RuntimeError("cannot draw")
    def __repr__(self):
        return "Bad()"
Bad()
"""


class NotebookUserTests(LaunchedKernelTestCase):
    async def test_completion_output_and_a_failing_repr(self) -> None:
        await self.launch()

        def drive() -> dict[str, Any]:
            kc = self.km.client()
            kc.start_channels()
            try:
                kc.wait_for_ready(timeout=30)
                found: dict[str, Any] = {}
                found["complete"] = kc.complete(
                    "import collections; collections.Ord", reply=True, timeout=30
                )["content"]
                found["from"] = kc.complete(
                    "from os import pa", reply=True, timeout=30
                )["content"]
                outputs: list[dict] = []
                found["reply"] = kc.execute_interactive(
                    CELL, output_hook=outputs.append, timeout=30
                )["content"]
                found["outputs"] = outputs
                return found
            finally:
                kc.stop_channels()

        found = await self.thread.run(drive)
        self.assertEqual(found["complete"]["matches"], ["OrderedDict"])
        [entry] = found["complete"]["metadata"]["_jupyter_types_experimental"]
        # "class", unless the machine is so loaded that 150 ms went by first.
        self.assertIn(entry["type"], ("class", "<unknown>"))
        self.assertEqual(
            (entry["text"], entry["start"], entry["end"]), ("OrderedDict", 32, 35)
        )
        self.assertIn("path", found["from"]["matches"])

        reply, outputs = found["reply"], found["outputs"]
        self.assertEqual(reply["status"], "error")
        self.assertEqual(
            (reply["ename"], reply["evalue"]), ("RuntimeError", "cannot draw")
        )
        self.assertIn(
            'raise RuntimeError("cannot draw")', "\n".join(reply["traceback"])
        )
        streams = {"stdout": "", "stderr": ""}
        for message in outputs:
            if message["msg_type"] == "stream":
                streams[message["content"]["name"]] += message["content"]["text"]
        self.assertEqual(streams["stdout"], "hi\n")
        self.assertIn("UserWarning: mind the gap", streams["stderr"])
        [result] = [m for m in outputs if m["msg_type"] == "execute_result"]
        self.assertEqual(result["content"]["data"], {"text/plain": "Bad()"})
        [error] = [m for m in outputs if m["msg_type"] == "error"]
        self.assertEqual(error["content"]["ename"], "RuntimeError")
