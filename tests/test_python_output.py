"""What a cell shows: failing reprs, the display protocol's corners, through a served kernel."""

from __future__ import annotations

import textwrap
import warnings

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from txkernel.python import PythonKernel

from .helpers import connect, serve

original_showwarnmsg = warnings._showwarnmsg  # type: ignore[attr-defined]


class OutputTestCase(TestCase):
    timeout = 60

    async def start(self) -> None:
        self.kernel = PythonKernel()
        self.service = await serve(self, self.kernel)
        self.client = await connect(self, self.service)

    def execute(self, code: str, **kwargs) -> Deferred:
        """Fires with the ExecuteResult of ``code`` (dedented)."""
        return self.client.execute(textwrap.dedent(code), **kwargs)


FAILING_HTML = """
class Bad:
    def _repr_html_(self):
        raise ValueError("no html today")
    def __repr__(self):
        return "Bad()"
"""

FAILING_REPR = """
class Unprintable:
    def __repr__(self):
        raise KeyError("no repr")
"""


class FailingReprTests(OutputTestCase):
    async def test_a_failing_rich_repr_of_the_result_fails_the_cell(self) -> None:
        await self.start()
        result = await self.execute(FAILING_HTML + "Bad()")
        self.assertEqual(result.content["status"], "error")
        self.assertEqual(result.content["ename"], "ValueError")
        self.assertEqual(result.content["evalue"], "no html today")
        shown = "\n".join(result.content["traceback"])
        self.assertIn('raise ValueError("no html today")', shown)
        self.assertIn("Bad()", shown)
        self.assertNotIn("txkernel", shown)
        [error] = result.of_type("error")
        self.assertEqual(error["content"]["traceback"], result.content["traceback"])
        # What could be shown still is: the plain text.
        [value] = result.of_type("execute_result")
        self.assertEqual(value["content"]["data"], {"text/plain": "Bad()"})

    async def test_a_failing_repr_of_the_result_fails_the_cell(self) -> None:
        await self.start()
        result = await self.execute(FAILING_REPR + "Unprintable()")
        self.assertEqual(result.content["status"], "error")
        self.assertEqual(result.content["ename"], "KeyError")
        self.assertIn(
            'raise KeyError("no repr")', "\n".join(result.content["traceback"])
        )
        [value] = result.of_type("execute_result")
        self.assertIn("Unprintable object at", value["content"]["data"]["text/plain"])

    async def test_a_failing_repr_of_an_async_cells_result_fails_the_cell(self) -> None:
        await self.start()
        code = (
            FAILING_HTML
            + "from twisted.internet import defer\nawait defer.succeed(None)\nBad()"
        )
        result = await self.execute(code)
        self.assertEqual(result.content["ename"], "ValueError")
        shown = "\n".join(result.content["traceback"])
        self.assertIn('raise ValueError("no html today")', shown)
        self.assertNotIn("txkernel", shown)

    async def test_the_next_cell_runs_normally(self) -> None:
        await self.start()
        await self.execute(FAILING_HTML + "Bad()")
        result = await self.execute("'fine'")
        self.assertEqual(result.content["status"], "ok")

    async def test_display_of_a_failing_repr_shows_the_error_and_the_cell_goes_on(
        self,
    ) -> None:
        await self.start()
        result = await self.execute(FAILING_HTML + "display(Bad())\nprint('after')")
        self.assertEqual(result.content["status"], "ok")
        kinds = [m["msg_type"] for m in result.outputs if m["msg_type"] != "status"]
        self.assertEqual(kinds, ["execute_input", "error", "display_data", "stream"])
        [error] = result.of_type("error")
        self.assertEqual(error["content"]["ename"], "ValueError")
        self.assertIn("no html today", "\n".join(error["content"]["traceback"]))
        self.assertEqual(result.stream_text(), "after\n")


SELF_DISPLAYING = """
class Chart:
    def _ipython_display_(self):
        display({"text/plain": "chart", "application/vnd.test+json": {"n": 1}}, raw=True)
    def _repr_html_(self):
        return "<p>never asked</p>"
"""


class DisplayProtocolTests(OutputTestCase):
    async def test_ipython_display_shows_the_result_its_own_way(self) -> None:
        await self.start()
        result = await self.execute(SELF_DISPLAYING + "Chart()")
        self.assertEqual(result.content["status"], "ok")
        self.assertEqual(result.of_type("execute_result"), [])
        [shown] = result.of_type("display_data")
        self.assertEqual(
            shown["content"]["data"],
            {"text/plain": "chart", "application/vnd.test+json": {"n": 1}},
        )
        self.assertEqual(
            (await self.execute("type(_).__name__")).content["status"], "ok"
        )

    async def test_display_calls_ipython_display(self) -> None:
        await self.start()
        result = await self.execute(SELF_DISPLAYING + "display(Chart(), Chart())")
        shown = [m["content"]["data"] for m in result.of_type("display_data")]
        self.assertEqual([data["text/plain"] for data in shown], ["chart", "chart"])
        self.assertNotIn("text/html", shown[0])

    async def test_a_failing_ipython_display_of_the_result_fails_the_cell(self) -> None:
        await self.start()
        code = (
            "class Broken:\n    def _ipython_display_(self):\n        1 / 0\nBroken()"
        )
        result = await self.execute(code)
        self.assertEqual(result.content["ename"], "ZeroDivisionError")
        self.assertIn("1 / 0", "\n".join(result.content["traceback"]))

    async def test_repr_mimebundle_gets_include_and_exclude(self) -> None:
        await self.start()
        result = await self.execute(
            """
            class Plot:
                def _repr_mimebundle_(self, include=None, exclude=None):
                    return {
                        "text/plain": f"Plot(include={include}, exclude={exclude})",
                        "image/svg+xml": "<svg/>",
                        "text/html": "<div/>",
                    }
            display(Plot(), include=["text/html", "text/plain"])
            display(Plot(), exclude=["text/html"])
            Plot()
            """
        )
        first, second = (m["content"]["data"] for m in result.of_type("display_data"))
        self.assertEqual(
            first,
            {
                "text/plain": "Plot(include=['text/html', 'text/plain'], exclude=None)",
                "text/html": "<div/>",
            },
        )
        self.assertEqual(set(second), {"text/plain", "image/svg+xml"})
        [value] = result.of_type("execute_result")
        self.assertEqual(
            set(value["content"]["data"]), {"text/plain", "image/svg+xml", "text/html"}
        )

    async def test_transient_and_update_display_reach_the_frontend(self) -> None:
        await self.start()
        result = await self.execute(
            """
            display("progress 0", transient={"display_id": "bar", "note": "kept"})
            update_display("progress 1", display_id="bar")
            handle = display("other", display_id="other-id", metadata={"isolated": True})
            handle.update("other 2")
            """
        )
        shown = result.of_type("display_data")
        self.assertEqual(
            shown[0]["content"]["transient"], {"display_id": "bar", "note": "kept"}
        )
        self.assertEqual(shown[1]["content"]["transient"], {"display_id": "other-id"})
        self.assertEqual(shown[1]["content"]["metadata"], {"isolated": True})
        updates = result.of_type("update_display_data")
        self.assertEqual(
            [
                (
                    u["content"]["transient"]["display_id"],
                    u["content"]["data"]["text/plain"],
                )
                for u in updates
            ],
            [("bar", "'progress 1'"), ("other-id", "'other 2'")],
        )

    async def test_clear_output_wait_comes_after_the_text_before_it(self) -> None:
        """A progress loop: each clear waits for the next output, so nothing flickers."""
        await self.start()
        result = await self.execute(
            """
            for i in range(3):
                clear_output(wait=True)
                print(f"step {i}")
            display("done")
            """
        )
        sequence = [
            (m["msg_type"], m["content"].get("wait", m["content"].get("text")))
            for m in result.outputs
            if m["msg_type"] in ("clear_output", "stream", "display_data")
        ]
        self.assertEqual(
            sequence,
            [
                ("clear_output", True),
                ("stream", "step 0\n"),
                ("clear_output", True),
                ("stream", "step 1\n"),
                ("clear_output", True),
                ("stream", "step 2\n"),
                ("display_data", None),
            ],
        )


class CellWarningTests(OutputTestCase):
    """Warnings a cell raises go to its stderr; the host's stay the host's."""

    def setUp(self) -> None:
        # Python's own default: show once per location.
        catcher = warnings.catch_warnings()
        catcher.__enter__()
        self.addCleanup(catcher.__exit__, None, None, None)
        warnings.resetwarnings()
        warnings.simplefilter("default")
        # What a host's logging (twisted.logger under twistd) installs.
        self.host_shown: list[str] = []
        self.patch(
            warnings,
            "showwarning",
            lambda message, *args, **kwargs: self.host_shown.append(str(message)),
        )

    async def test_a_cells_warning_is_shown_in_the_cell_once_per_location(self) -> None:
        await self.start()
        result = await self.execute(
            """
            import warnings
            for i in range(3):
                warnings.warn("careful")
            warnings.warn("elsewhere")
            """
        )
        text = result.stream_text("stderr")
        self.assertEqual(text.count("UserWarning: careful"), 1, text)
        self.assertIn(
            '<cell-1>:4: UserWarning: careful\n  warnings.warn("careful")\n', text
        )
        self.assertIn("UserWarning: elsewhere", text)
        self.assertEqual(self.host_shown, [])

    async def test_a_cell_run_again_warns_again(self) -> None:
        await self.start()
        code = "import warnings\nwarnings.warn('again')"
        for _ in range(2):
            result = await self.execute(code)
            self.assertEqual(
                result.stream_text("stderr").count("UserWarning: again"), 1
            )

    async def test_a_warning_from_a_thread_the_cell_started_is_the_cells(self) -> None:
        await self.start()
        result = await self.execute(
            """
            import threading, warnings
            t = threading.Thread(target=lambda: warnings.warn("from a thread"))
            t.start(); t.join()
            """
        )
        self.assertIn("UserWarning: from a thread", result.stream_text("stderr"))

    async def test_catch_warnings_record_still_records(self) -> None:
        await self.start()
        result = await self.execute(
            """
            import warnings
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                warnings.warn("recorded")
            [str(w.message) for w in caught]
            """
        )
        [value] = result.of_type("execute_result")
        self.assertEqual(value["content"]["data"]["text/plain"], "['recorded']")
        self.assertEqual(result.stream_text("stderr"), "")

    async def test_the_hosts_warnings_go_to_the_host(self) -> None:
        await self.start()
        await self.execute("1")
        warnings.warn("the host's own", stacklevel=1)
        self.assertEqual(self.host_shown, ["the host's own"])
        result = await self.execute("2")
        self.assertEqual(result.stream_text("stderr"), "")

    async def test_warnings_are_shown_as_before_once_the_kernel_stops(self) -> None:
        await self.start()
        self.assertIsNot(warnings._showwarnmsg, original_showwarnmsg)
        await self.service.stopService()
        self.assertIs(warnings._showwarnmsg, original_showwarnmsg)
