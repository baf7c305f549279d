"""Inline matplotlib in the built-in Python kernel.

In this process the tests name the inline backend in ``MPLBACKEND``, so
that nothing needs a display whichever test imports matplotlib first; the
kernels under twistd choose it themselves (no ``MPLBACKEND``), or keep the
backend their host chose.
"""

from __future__ import annotations

import base64
import os
import textwrap

from twisted.internet.defer import Deferred
from twisted.trial.unittest import TestCase

from txkernel.client import KernelClient
from txkernel.connection import read_connection_file
from txkernel.python import PythonKernel

from .helpers import connect, serve, spawn_twistd

INLINE = "module://txkernel.python.matplotlib_inline"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def without_mplbackend(test) -> None:
    """Unset MPLBACKEND for the rest of ``test`` (children inherit the environment)."""
    saved = os.environ.pop("MPLBACKEND", None)
    if saved is not None:
        test.addCleanup(os.environ.__setitem__, "MPLBACKEND", saved)


class InlineTestCase(TestCase):
    timeout = 60

    async def start(self) -> KernelClient:
        saved = os.environ.get("MPLBACKEND")
        os.environ["MPLBACKEND"] = INLINE
        self.addCleanup(
            lambda: os.environ.pop("MPLBACKEND") if saved is None else os.environ.__setitem__("MPLBACKEND", saved)
        )
        self.kernel = PythonKernel()
        self.service = await serve(self, self.kernel)
        self.client = await connect(self, self.service)
        # Every test starts with pyplot as a notebook user finds it.
        await self.ok("import matplotlib.pyplot as plt\nplt.close('all')\nplt.ion()")
        self.addCleanup(self._reset)
        return self.client

    def _reset(self) -> None:
        import matplotlib
        import matplotlib.pyplot as plt

        from txkernel.python.matplotlib_inline import set_figure_format

        set_figure_format("png")
        if matplotlib.get_backend() != INLINE:
            matplotlib.use(INLINE)
        plt.close("all")
        plt.ion()

    def execute(self, code: str, **kwargs) -> Deferred:
        return self.client.execute(textwrap.dedent(code), **kwargs)

    async def ok(self, code: str, **kwargs):
        result = await self.execute(code, **kwargs)
        self.assertEqual(result.content["status"], "ok", result.content)
        return result

    async def value(self, code: str) -> str:
        result = await self.ok(code)
        return result.of_type("execute_result")[0]["content"]["data"]["text/plain"]

    def images(self, result, mimetype="image/png"):
        return [m for m in result.of_type("display_data") if mimetype in m["content"]["data"]]

    def assert_png(self, bundle_msg) -> bytes:
        data = bundle_msg["content"]["data"]
        png = base64.b64decode(data["image/png"])
        self.assertTrue(png.startswith(PNG_SIGNATURE))
        self.assertIn("Figure size", data["text/plain"])
        size = bundle_msg["content"]["metadata"]["image/png"]
        self.assertGreater(size["width"], 100)
        self.assertGreater(size["height"], 100)
        return png


class InlineFigureTests(InlineTestCase):
    async def test_plt_show_displays_a_png_and_closes_the_figure(self) -> None:
        await self.start()
        result = await self.ok("plt.plot([1, 3, 2])\nplt.title('shown')\nplt.show()")
        [image] = self.images(result)
        self.assert_png(image)
        self.assertEqual(image["parent_header"]["msg_id"], result.reply["parent_header"]["msg_id"])
        self.assertEqual(await self.value("plt.get_fignums()"), "[]")

    async def test_figures_open_at_the_end_of_the_cell_are_shown_once_then_closed(self) -> None:
        await self.start()
        result = await self.ok(
            """
            fig, (a, b) = plt.subplots(1, 2)
            a.plot([1, 2])
            b.bar([1, 2], [3, 4])
            plt.figure()
            plt.plot([5, 6])
            """
        )
        images = self.images(result)
        self.assertEqual(len(images), 2)
        for image in images:
            self.assert_png(image)
        self.assertEqual(await self.value("plt.get_fignums()"), "[]")
        again = await self.ok("x = 1")
        self.assertEqual(self.images(again), [])

    async def test_a_figure_as_the_value_of_a_cell_is_an_image(self) -> None:
        await self.start()
        result = await self.ok("fig, ax = plt.subplots()\nax.plot([1, 2, 4])\nfig")
        [value] = result.of_type("execute_result")
        self.assert_png(value)
        self.assertEqual(self.images(result), [], "the figure is shown once, as the value")

    async def test_a_figure_made_without_pyplot_displays_as_an_image(self) -> None:
        await self.start()
        result = await self.ok(
            """
            from matplotlib.figure import Figure
            fig = Figure()
            fig.add_subplot().plot([1, 2])
            display(fig)
            """
        )
        [image] = self.images(result)
        self.assert_png(image)

    async def test_no_image_when_nothing_was_drawn(self) -> None:
        await self.start()
        result = await self.ok("import matplotlib.pyplot as plt\nx = [1, 2]")
        self.assertEqual(result.of_type("display_data"), [])
        empty = await self.ok("plt.figure()\nplt.show()")
        self.assertEqual(empty.of_type("display_data"), [])

    async def test_savefig_writes_the_file(self) -> None:
        await self.start()
        path = os.path.abspath(self.mktemp()) + ".png"
        result = await self.ok(f"plt.plot([1, 2])\nplt.savefig({path!r})")
        with open(path, "rb") as f:
            self.assertTrue(f.read().startswith(PNG_SIGNATURE))
        self.assertEqual(len(self.images(result)), 1)

    async def test_ioff_holds_figures_until_show(self) -> None:
        await self.start()
        held = await self.ok("plt.ioff()\nplt.plot([1, 2])")
        self.assertEqual(held.of_type("display_data"), [])
        self.assertEqual(await self.value("len(plt.get_fignums())"), "1")
        shown = await self.ok("plt.show()")
        self.assertEqual(len(self.images(shown)), 1)
        back_on = await self.ok("plt.ion()\nplt.plot([3, 4])")
        self.assertEqual(len(self.images(back_on)), 1)

    async def test_svg_and_retina_formats(self) -> None:
        await self.start()
        svg = await self.ok(
            """
            from txkernel.python.matplotlib_inline import set_figure_format
            set_figure_format("svg")
            plt.plot([1, 2])
            """
        )
        [image] = self.images(svg, "image/svg+xml")
        self.assertIn("<svg", image["content"]["data"]["image/svg+xml"])
        self.assertNotIn("image/png", image["content"]["data"])
        png = await self.ok("set_figure_format('png')\nplt.plot([1, 2])")
        retina = await self.ok("set_figure_format('retina')\nplt.plot([1, 2])")
        [plain], [double] = self.images(png), self.images(retina)
        self.assert_png(double)
        # Shown at the same size (to a pixel: the tight box is found at each resolution).
        for side in ("width", "height"):
            shown = double["content"]["metadata"]["image/png"][side]
            self.assertLessEqual(abs(shown - plain["content"]["metadata"]["image/png"][side]), 1)
        self.assertGreater(len(double["content"]["data"]["image/png"]), len(plain["content"]["data"]["image/png"]))
        bad = await self.execute("set_figure_format('gif')")
        self.assertEqual(bad.content["ename"], "ValueError")

    async def test_a_backend_chosen_in_a_cell_is_kept(self) -> None:
        await self.start()
        result = await self.ok(
            """
            import matplotlib
            matplotlib.use("agg")
            plt.plot([1, 2])
            matplotlib.get_backend()
            """
        )
        self.assertEqual(result.of_type("execute_result")[0]["content"]["data"]["text/plain"], "'agg'")
        self.assertEqual(result.of_type("display_data"), [])
        self.assertEqual(await self.value("len(plt.get_fignums())"), "1")
        # Figures made under Agg stay Agg figures: start a new one.
        back = await self.ok(f"matplotlib.use({INLINE!r})\nplt.ion()\nplt.close('all')\nplt.plot([3, 4])")
        self.assertEqual(len(self.images(back)), 1)

    async def test_figures_of_the_host_are_not_shown_or_closed_by_cells(self) -> None:
        await self.start()
        import matplotlib.pyplot as plt

        host = plt.figure()  # made here, on the reactor thread, by no cell
        plt.plot([9, 9])
        self.addCleanup(plt.close, host)
        result = await self.ok("plt.figure()\nplt.plot([1, 2])\nplt.show()")
        self.assertEqual(len(self.images(result)), 1)
        self.assertIn(host.number, plt.get_fignums())
        self.assertEqual(await self.value("len(plt.get_fignums())"), "1")

    async def test_interact_shows_its_plot_inside_its_output(self) -> None:
        await self.start()
        result = await self.ok(
            """
            import ipywidgets
            def draw(n):
                plt.plot(range(n))
            w = ipywidgets.interactive(draw, n=ipywidgets.IntSlider(3, 1, 5))
            w
            """
        )
        out_ids = [
            m["content"]["comm_id"]
            for m in result.of_type("comm_open")
            if m["content"]["data"]["state"]["_model_name"] == "OutputModel"
        ]
        self.assertEqual(len(out_ids), 1)
        order = []
        for m in result.outputs:
            if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == out_ids[0]:
                if "msg_id" in m["content"]["data"].get("state", {}):
                    order.append("capture on" if m["content"]["data"]["state"]["msg_id"] else "capture off")
            elif m["msg_type"] == "display_data" and "image/png" in m["content"]["data"]:
                order.append("image")
            elif m["msg_type"] == "clear_output":
                order.append("clear")
        # The plot is made while the Output widget captures this request's output.
        self.assertEqual(order, ["capture on", "clear", "image", "capture off"])


class TwistdBackendTests(TestCase):
    """Kernels under twistd, with no MPLBACKEND: what cells get, and what the host keeps."""

    timeout = 60

    async def start(self, *args: str) -> KernelClient:
        without_mplbackend(self)
        proto = spawn_twistd(self, "txkernel", *args)
        match = await proto.wait_for(r"jupyter console --existing (\S+)")
        client = KernelClient(read_connection_file(match.group(1)))
        client.start()
        self.addCleanup(client.stop)
        await client.wait_for_ready(timeout=30)
        return client

    async def test_cells_get_the_inline_backend_and_the_kernel_imports_no_matplotlib(self) -> None:
        client = await self.start()
        before = await client.execute("import sys\n'matplotlib' in sys.modules, 'comm' in sys.modules")
        self.assertEqual(before.of_type("execute_result")[0]["content"]["data"]["text/plain"], "(False, False)")
        result = await client.execute(
            "import matplotlib, matplotlib.pyplot as plt\nplt.plot([1, 2])\nmatplotlib.get_backend()"
        )
        self.assertEqual(result.content["status"], "ok", result.content)
        self.assertEqual(result.of_type("execute_result")[0]["content"]["data"]["text/plain"], repr(INLINE))
        [image] = result.of_type("display_data")
        self.assertIn("image/png", image["content"]["data"])

    async def test_the_hosts_backend_and_figures_stay_the_hosts(self) -> None:
        client = await self.start("--kernel", "tests.mpl_host:HostKernel")
        result = await client.execute(
            """\
import matplotlib, matplotlib.pyplot as plt
import tests.mpl_host as host
fig = plt.figure()
plt.plot([1, 2])
plt.close(fig)
matplotlib.get_backend(), host.host_figure.number in plt.get_fignums()
"""
        )
        self.assertEqual(result.content["status"], "ok", result.content)
        self.assertEqual(result.of_type("execute_result")[0]["content"]["data"]["text/plain"], "('agg', True)")
        self.assertEqual(result.of_type("display_data"), [])
        shown = await client.execute("host.host_figure")
        [value] = shown.of_type("execute_result")
        self.assertIn("image/png", value["content"]["data"], "a Figure value is an image whatever the backend")
