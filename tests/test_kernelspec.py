"""Tests for txkernel.kernelspec: installing and removing the Jupyter kernelspec.

Nothing here writes to the real user or system Jupyter directories: installs
go under ``self.mktemp()``, ``JUPYTER_DATA_DIR`` points at a temporary
directory, the kernelspec names are unique per test, and the default
(system-wide) and ``--sys-prefix`` installs are checked against a stand-in for
``KernelSpecManager.install_kernel_spec``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import uuid
from contextlib import redirect_stderr, redirect_stdout
from typing import Any

from jupyter_client.kernelspec import KernelSpecManager
from twisted.trial.unittest import SynchronousTestCase

from txkernel import kernelspec
from txkernel.kernelspec import (
    DEFAULT_DISPLAY_NAME,
    DEFAULT_NAME,
    LOGO_FILES,
    NoSuchKernelSpec,
    install,
    kernel_json,
    main,
    uninstall,
)
from txkernel.python.debugger import available as debugger_available


def expected_metadata() -> dict[str, Any]:
    """What a kernelspec's metadata says here: the debugger when debugpy is
    importable, Curve when libzmq has it."""
    import zmq

    metadata: dict[str, Any] = {"debugger": debugger_available()}
    if zmq.has("curve"):
        metadata["supported_encryption"] = ["curve"]
    return metadata

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class KernelJsonTests(SynchronousTestCase):
    """kernel_json() describes how Jupyter starts txkernel's Python kernel."""

    def test_defaults(self) -> None:
        self.assertEqual(
            kernel_json(),
            {
                "argv": [sys.executable, "-m", "txkernel", "-f", "{connection_file}"],
                "display_name": DEFAULT_DISPLAY_NAME,
                "language": "python",
                "interrupt_mode": "signal",
                "metadata": expected_metadata(),
            },
        )
        self.assertEqual(DEFAULT_NAME, "txkernel")
        self.assertEqual(DEFAULT_DISPLAY_NAME, "Python 3 (txkernel)")

    def test_options(self) -> None:
        spec = kernel_json("/opt/py/bin/python3", "Other", interrupt_mode="message")
        self.assertEqual(spec["argv"][0], "/opt/py/bin/python3")
        self.assertEqual(spec["display_name"], "Other")
        self.assertEqual(spec["interrupt_mode"], "message")

    def test_bad_interrupt_mode(self) -> None:
        self.assertRaises(ValueError, kernel_json, interrupt_mode="sigint")

    def test_logo_resources(self) -> None:
        """The packaged logos are real PNGs of the right size, and an SVG."""
        from importlib import resources

        folder = resources.files("txkernel").joinpath("resources")
        for size in (32, 64):
            data = folder.joinpath(f"logo-{size}x{size}.png").read_bytes()
            self.assertEqual(data[:8], PNG_SIGNATURE)
            self.assertEqual(data[12:16], b"IHDR")
            width = int.from_bytes(data[16:20], "big")
            height = int.from_bytes(data[20:24], "big")
            self.assertEqual((width, height), (size, size))
        svg = folder.joinpath("logo-svg.svg").read_text(encoding="utf-8")
        self.assertIn("<svg", svg)


class _IsolatedJupyter(SynchronousTestCase):
    """Base: a private Jupyter environment and a unique kernelspec name."""

    def setUp(self) -> None:
        self.prefix = os.path.abspath(self.mktemp())
        self.data_dir = os.path.abspath(self.mktemp())
        self.name = f"txkernel-test-{uuid.uuid4().hex[:12]}"
        self.setEnv("JUPYTER_PATH", os.path.join(self.prefix, "share", "jupyter"))
        self.setEnv("JUPYTER_DATA_DIR", self.data_dir)
        # Guard: the "user" directory must now be the private one.
        self.assertTrue(
            KernelSpecManager().user_kernel_dir.startswith(self.data_dir + os.sep)
        )

    def setEnv(self, key: str, value: str) -> None:
        """Set an environment variable, restoring it after the test."""
        old = os.environ.get(key)
        os.environ[key] = value
        if old is None:
            self.addCleanup(os.environ.pop, key, None)
        else:
            self.addCleanup(os.environ.__setitem__, key, old)

    def kernelDir(self, name: str | None = None) -> str:
        return os.path.join(
            self.prefix, "share", "jupyter", "kernels", name or self.name
        )

    def assertInstalled(self, path: str, **expected: Any) -> dict[str, Any]:
        """Check the kernelspec in ``path``: kernel.json and the logos."""
        with open(os.path.join(path, "kernel.json"), encoding="utf-8") as f:
            spec = json.load(f)
        self.assertEqual(spec["argv"][0], sys.executable)
        self.assertEqual(
            spec["argv"][1:], ["-m", "txkernel", "-f", "{connection_file}"]
        )
        self.assertEqual(spec["language"], "python")
        self.assertEqual(spec["metadata"], expected_metadata())
        for key, value in expected.items():
            self.assertEqual(spec[key], value)
        for filename in LOGO_FILES:
            self.assertTrue(os.path.isfile(os.path.join(path, filename)), filename)
        for size in (32, 64):
            with open(os.path.join(path, f"logo-{size}x{size}.png"), "rb") as f:
                self.assertEqual(f.read(8), PNG_SIGNATURE)
        return spec

    def fakeInstallKernelSpec(self) -> list[dict[str, Any]]:
        """Replace KernelSpecManager.install_kernel_spec; record its calls."""
        calls: list[dict[str, Any]] = []

        def fake(
            manager: KernelSpecManager,
            source_dir: str,
            kernel_name: str | None = None,
            user: bool = False,
            replace: bool | None = None,
            prefix: str | None = None,
        ) -> str:
            with open(os.path.join(source_dir, "kernel.json"), encoding="utf-8") as f:
                spec = json.load(f)
            calls.append(
                {"name": kernel_name, "user": user, "prefix": prefix, "spec": spec}
            )
            return "/fake/destination"

        self.patch(KernelSpecManager, "install_kernel_spec", fake)
        return calls

    def runMain(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            status = main(list(argv))
        return status, out.getvalue(), err.getvalue()


class InstallTests(_IsolatedJupyter):
    """install() and uninstall() as a library."""

    def test_install_prefix(self) -> None:
        path = install(self.name, prefix=self.prefix)
        self.assertEqual(path, self.kernelDir())
        self.assertInstalled(
            path, display_name=DEFAULT_DISPLAY_NAME, interrupt_mode="signal"
        )

    def test_install_message_mode(self) -> None:
        path = install(
            self.name, "Message variant", prefix=self.prefix, interrupt_mode="message"
        )
        self.assertInstalled(
            path, display_name="Message variant", interrupt_mode="message"
        )

    def test_kernel_spec_manager_finds_it(self) -> None:
        install(self.name, "Found me", prefix=self.prefix)
        manager = KernelSpecManager()
        self.assertEqual(manager.find_kernel_specs()[self.name], self.kernelDir())
        spec = manager.get_kernel_spec(self.name)
        self.assertEqual(spec.display_name, "Found me")
        self.assertEqual(spec.language, "python")
        self.assertEqual(spec.interrupt_mode, "signal")
        self.assertEqual(spec.argv[0], sys.executable)

    def test_reinstall_replaces(self) -> None:
        install(self.name, "First", prefix=self.prefix)
        path = install(self.name, "Second", prefix=self.prefix)
        self.assertInstalled(path, display_name="Second")

    def test_name_lowercased(self) -> None:
        path = install(self.name.upper(), prefix=self.prefix)
        self.assertEqual(path, self.kernelDir())

    def test_invalid_name(self) -> None:
        self.assertRaises(ValueError, install, "no spaces", prefix=self.prefix)
        self.assertFalse(os.path.exists(self.prefix))

    def test_conflicting_locations(self) -> None:
        for kwargs in (
            {"user": True, "sys_prefix": True},
            {"user": True, "prefix": self.prefix},
            {"sys_prefix": True, "prefix": self.prefix},
            {"prefix": ""},
        ):
            self.assertRaises(ValueError, install, self.name, **kwargs)
        self.assertFalse(os.path.exists(self.prefix))

    def test_install_user(self) -> None:
        """--user goes to Jupyter's user data directory (private here)."""
        path = install(self.name, user=True)
        self.assertEqual(path, os.path.join(self.data_dir, "kernels", self.name))
        self.assertInstalled(path)

    def test_default_is_system_wide(self) -> None:
        """With no location, install like `ipykernel install`: user=False,
        prefix=None, i.e. KernelSpecManager's system-wide directory."""
        calls = self.fakeInstallKernelSpec()
        self.assertEqual(install(), "/fake/destination")
        self.assertEqual(len(calls), 1)
        self.assertEqual(calls[0]["name"], DEFAULT_NAME)
        self.assertEqual(calls[0]["user"], False)
        self.assertIsNone(calls[0]["prefix"])
        self.assertEqual(calls[0]["spec"], kernel_json())

    def test_sys_prefix(self) -> None:
        calls = self.fakeInstallKernelSpec()
        install(self.name, sys_prefix=True)
        self.assertEqual(calls[0]["prefix"], sys.prefix)
        self.assertEqual(calls[0]["user"], False)

    def test_uninstall(self) -> None:
        path = install(self.name, prefix=self.prefix)
        self.assertEqual(uninstall(self.name), path)
        self.assertFalse(os.path.exists(path))
        self.assertNotIn(self.name, KernelSpecManager().find_kernel_specs())

    def test_uninstall_missing(self) -> None:
        error = self.assertRaises(NoSuchKernelSpec, uninstall, self.name)
        self.assertIsInstance(error, KeyError)
        self.assertEqual(
            str(error),
            f"no kernelspec named {self.name!r} is installed"
            " (see `jupyter kernelspec list`)",
        )


class MainTests(_IsolatedJupyter):
    """The `python -m txkernel install/uninstall` command line."""

    def test_install_and_uninstall(self) -> None:
        status, out, err = self.runMain(
            "install",
            "--prefix",
            self.prefix,
            "--name",
            self.name,
            "--display-name",
            "Via main",
            "--interrupt-mode",
            "message",
        )
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(
            out, f"Installed kernelspec {self.name} in {self.kernelDir()}\n"
        )
        self.assertInstalled(
            self.kernelDir(), display_name="Via main", interrupt_mode="message"
        )

        status, out, err = self.runMain("uninstall", "--name", self.name)
        self.assertEqual((status, err), (0, ""))
        self.assertEqual(
            out, f"Removed kernelspec {self.name} from {self.kernelDir()}\n"
        )
        self.assertFalse(os.path.exists(self.kernelDir()))

    def test_default_options(self) -> None:
        status, out, err = self.runMain("install", "--prefix", self.prefix)
        self.assertEqual(status, 0)
        self.assertInstalled(
            self.kernelDir(DEFAULT_NAME),
            display_name=DEFAULT_DISPLAY_NAME,
            interrupt_mode="signal",
        )

    def test_default_location(self) -> None:
        calls = self.fakeInstallKernelSpec()
        self.patch(kernelspec, "_on_search_path", lambda directory: True)
        status, out, err = self.runMain("install")
        self.assertEqual(
            (status, out, err),
            (0, f"Installed kernelspec {DEFAULT_NAME} in /fake/destination\n", ""),
        )
        self.assertEqual((calls[0]["user"], calls[0]["prefix"]), (False, None))

    def test_prefix_not_on_search_path(self) -> None:
        """A prefix Jupyter does not search gets a one-line note on stderr."""
        other = os.path.abspath(self.mktemp())
        status, out, err = self.runMain(
            "install", "--prefix", other, "--name", self.name
        )
        self.assertEqual(status, 0)
        self.assertEqual(len(out.splitlines()), 1)
        self.assertEqual(len(err.splitlines()), 1)
        self.assertIn("JUPYTER_PATH", err)
        self.assertIn(os.path.join(other, "share", "jupyter"), err)

    def test_uninstall_missing(self) -> None:
        status, out, err = self.runMain("uninstall", "--name", self.name)
        self.assertEqual(status, 1)
        self.assertEqual(out, "")
        self.assertEqual(len(err.splitlines()), 1)
        self.assertIn(f"no kernelspec named {self.name!r}", err)
        self.assertNotIn("Traceback", err)

    def assertUsageError(self, *argv: str) -> str:
        status, out, err = self.runMain(*argv)
        self.assertEqual(status, 2, err)
        self.assertEqual(out, "")
        self.assertEqual(len(err.splitlines()), 1, err)
        self.assertIn("error:", err)
        self.assertFalse(os.path.exists(self.prefix))
        return err

    def test_conflicting_options(self) -> None:
        for argv in (
            ("install", "--user", "--sys-prefix"),
            ("install", "--user", "--prefix", self.prefix),
            ("install", "--sys-prefix", "--prefix", self.prefix),
        ):
            err = self.assertUsageError(*argv)
            self.assertIn("not allowed with", err)

    def test_other_usage_errors(self) -> None:
        self.assertUsageError()
        self.assertUsageError("frobnicate")
        self.assertUsageError("install", "--interrupt-mode", "sigint")
        self.assertUsageError("install", "--bogus")
        self.assertUsageError("uninstall", "extra")
        err = self.assertUsageError(
            "install", "--prefix", self.prefix, "--name", "no spaces"
        )
        self.assertIn("Invalid kernel name", err)

    def test_help(self) -> None:
        status, out, err = self.runMain("install", "--help")
        self.assertEqual(status, 0)
        self.assertIn("--sys-prefix", out)
        self.assertIn("system-", out)
        self.assertIn("ipykernel install", out)

    def test_permission_error(self) -> None:
        """Failing to write the destination is exit status 1, one line."""

        def denied(*args: object, **kwargs: object) -> str:
            raise PermissionError(13, "Permission denied", "/usr/local/share/jupyter")

        self.patch(KernelSpecManager, "install_kernel_spec", denied)
        status, out, err = self.runMain("install")
        self.assertEqual(status, 1)
        self.assertEqual(out, "")
        self.assertEqual(len(err.splitlines()), 1)
        self.assertIn("Permission denied", err)
        self.assertIn("--user", err)


class JupyterCommandTests(_IsolatedJupyter):
    """`jupyter kernelspec list` sees an installed kernelspec."""

    def kernelspecList(self) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "jupyter", "kernelspec", "list"],
            env=os.environ.copy(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_kernelspec_list(self) -> None:
        status, out, err = self.runMain(
            "install", "--prefix", self.prefix, "--name", self.name
        )
        self.assertEqual(status, 0, err)
        listing = self.kernelspecList()
        self.assertIn(self.name, listing)
        self.assertIn(self.kernelDir(), listing)

        self.assertEqual(self.runMain("uninstall", "--name", self.name)[0], 0)
        self.assertNotIn(self.name, self.kernelspecList())
