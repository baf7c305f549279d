"""``python -m txkernel install --kernel package.module:Class``: a kernelspec for
any interpreter class, then Jupyter (jupyter_client) running it."""

from __future__ import annotations

import io
import json
import os
import sys
import textwrap
import uuid
from contextlib import redirect_stderr, redirect_stdout

from jupyter_client import KernelManager
from jupyter_client.kernelspec import KernelSpecManager
from twisted.trial.unittest import TestCase

from txkernel.connection import parse_connection_info
from txkernel.kernelspec import main
from txkernel.testing import connect

from .helpers import REPO_ROOT, OtherThread

SHOUT = """
import os

from txkernel.interpreter import BaseInterpreter


class Shout(BaseInterpreter):
    language_info = {"name": "shout", "mimetype": "text/plain", "file_extension": ".txt"}
    implementation = "shout"

    def execute(self, execution):
        suffix = os.environ.get("SHOUT_SUFFIX", "")
        self.host.send_stream("stdout", execution.code.upper() + suffix)
        return {"status": "ok"}


class NotAKernel:
    pass
"""


class CustomKernelSpecTests(TestCase):
    timeout = 90

    def setUp(self) -> None:
        self.prefix = os.path.abspath(self.mktemp())
        self.modules = os.path.abspath(self.mktemp())
        os.makedirs(self.modules)
        self.module = f"shout_{uuid.uuid4().hex[:8]}"
        with open(os.path.join(self.modules, self.module + ".py"), "w") as f:
            f.write(textwrap.dedent(SHOUT))
        self.patch(sys, "path", [*sys.path, self.modules])
        saved = os.environ.get("JUPYTER_PATH")
        os.environ["JUPYTER_PATH"] = os.path.join(self.prefix, "share", "jupyter")
        self.addCleanup(
            lambda: os.environ.pop("JUPYTER_PATH")
            if saved is None
            else os.environ.__setitem__("JUPYTER_PATH", saved)
        )
        self.addCleanup(sys.modules.pop, self.module, None)

    def install(self, *args: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            status = main(["install", "--prefix", self.prefix, *args])
        return status, out.getvalue(), err.getvalue()

    def kernel_dir(self, name: str) -> str:
        return os.path.join(self.prefix, "share", "jupyter", "kernels", name)

    def test_the_spec_names_the_class_and_takes_its_language(self) -> None:
        status, out, err = self.install(
            "--kernel", f"{self.module}:Shout", "--env", "A=1", "--env", "B=two=2"
        )
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(out, f"Installed kernelspec shout in {self.kernel_dir('shout')}\n")
        with open(os.path.join(self.kernel_dir("shout"), "kernel.json")) as f:
            spec = json.load(f)
        self.assertEqual(
            spec["argv"],
            [sys.executable, "-m", "txkernel", "-f", "{connection_file}", "--kernel", f"{self.module}:Shout"],
        )
        self.assertEqual(spec["language"], "shout")
        self.assertEqual(spec["display_name"], "Shout (txkernel)")
        self.assertEqual(spec["interrupt_mode"], "signal")
        self.assertEqual(spec["env"], {"A": "1", "B": "two=2"})

    def test_bad_names_and_env_are_one_line_usage_errors(self) -> None:
        for args, reason in (
            (["--kernel", "no_such_module_here:K"], "cannot import no_such_module_here"),
            (["--kernel", f"{self.module}:Missing"], f"{self.module} has no Missing"),
            (["--kernel", f"{self.module}:NotAKernel"], "not a txkernel interpreter class"),
            (["--kernel", "nocolon"], "expected package.module:name"),
            (["--env", "NOVALUE"], "--env 'NOVALUE': expected NAME=VALUE"),
        ):
            status, out, err = self.install(*args)
            self.assertEqual(status, 2, args)
            self.assertEqual(out, "")
            self.assertIn(reason, err)
            self.assertEqual(len(err.strip().splitlines()), 1, err)
        self.assertFalse(os.path.exists(os.path.join(self.prefix, "share")))

    async def test_jupyter_client_runs_the_installed_kernel(self) -> None:
        name = f"shout-{uuid.uuid4().hex[:8]}"
        status, _, err = self.install(
            "--kernel",
            f"{self.module}:Shout",
            "--name",
            name,
            "--display-name",
            "Shouting",
            "--interrupt-mode",
            "message",
            "--env",
            f"PYTHONPATH={self.modules}{os.pathsep}{REPO_ROOT}",
            "--env",
            "SHOUT_SUFFIX=!",
        )
        self.assertEqual((status, err), (0, ""))
        thread = OtherThread(self)
        kernel_dirs = [os.path.join(self.prefix, "share", "jupyter", "kernels")]

        def start() -> KernelManager:
            km = KernelManager(
                kernel_name=name, kernel_spec_manager=KernelSpecManager(kernel_dirs=kernel_dirs)
            )
            km.start_kernel()
            return km

        km = await thread.run(start)

        def stop() -> None:
            if km.is_alive():
                km.shutdown_kernel(now=False)
            km.cleanup_resources()

        self.addCleanup(thread.run, stop)
        self.assertEqual(km.kernel_spec.display_name, "Shouting")
        self.assertEqual(km.kernel_spec.interrupt_mode, "message")
        client = await connect(self, parse_connection_info(km.get_connection_info(session=False)))
        info = await client.kernel_info()
        self.assertEqual(info["content"]["language_info"]["name"], "shout")
        self.assertEqual(info["content"]["implementation"], "shout")
        self.assertEqual((await client.execute("hello")).stream_text(), "HELLO!")
        await thread.run(km.interrupt_kernel)  # message mode: an interrupt_request
        self.assertEqual((await client.execute("still")).stream_text(), "STILL!")
        await thread.run(stop)
        self.assertFalse(await thread.run(km.is_alive))

    def test_a_module_from_the_working_directory_gets_a_note(self) -> None:
        self.patch(os, "getcwd", lambda: self.modules)
        status, out, err = self.install("--kernel", f"{self.module}:Shout")
        self.assertEqual(status, 0)
        self.assertEqual(
            err,
            f"note: {self.module} was found in the working directory, which Jupyter"
            " does not search when it starts the kernel; install it, or add"
            f" --env PYTHONPATH={os.path.realpath(self.modules)}\n",
        )
