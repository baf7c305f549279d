"""The shipped kernelspecs for gateways (``python -m txkernel install --remote``).

Each target's ``kernel.json`` names the gateway's process proxy or
provisioner and runs the launcher with the launch protocol's substitutions;
the command line installs them where jupyter_client finds and loads them,
with the pod launcher and its template for the Kubernetes targets.  The
kernelspecs are used for real by ``tests/test_enterprise_gateway.py``
(eg-distributed) and ``tests/test_remote_launcher.py`` (eg-kubernetes).
"""

from __future__ import annotations

import io
import json
import os
import sys
from contextlib import redirect_stderr, redirect_stdout

from jupyter_client.kernelspec import KernelSpecManager
from twisted.trial.unittest import SynchronousTestCase

from txkernel.__main__ import main
from txkernel.remote_kernelspecs import LAUNCH_ARGS, TARGETS, remote_kernel_json

PROXIES = "enterprise_gateway.services.processproxies."


class RemoteKernelJsonTests(SynchronousTestCase):
    def test_enterprise_gateway_distributed(self) -> None:
        spec = remote_kernel_json(
            "eg-distributed",
            python="/opt/py/bin/python",
            remote_hosts=["node1", "node2"],
            extra_argv=["--ip", "10.0.0.5"],
        )
        self.assertEqual(
            spec["argv"],
            ["/opt/py/bin/python", "-m", "txkernel.remote", *LAUNCH_ARGS]
            + ["--ip", "10.0.0.5"],
        )
        self.assertIn("{response_address}", spec["argv"])
        self.assertEqual(
            spec["metadata"]["process_proxy"],
            {
                "class_name": PROXIES + "distributed.DistributedProcessProxy",
                "config": {"remote_hosts": "node1,node2"},
            },
        )
        self.assertNotIn("kernel_provisioner", spec["metadata"])
        self.assertEqual(spec["interrupt_mode"], "signal")

    def test_gateway_provisioners_distributed(self) -> None:
        spec = remote_kernel_json("gp-distributed", remote_hosts=["node1"])
        self.assertEqual(spec["argv"][0], sys.executable)
        self.assertEqual(
            spec["metadata"]["kernel_provisioner"],
            {
                "provisioner_name": "distributed-provisioner",
                "config": {"remote_hosts": ["node1"]},
            },
        )

    def test_kubernetes(self) -> None:
        for target, where in (
            ("eg-kubernetes", "process_proxy"),
            ("gp-kubernetes", "kernel_provisioner"),
        ):
            spec = remote_kernel_json(target, image="reg/kernel:2")
            # Run by the gateway, in its own environment.
            self.assertEqual(
                spec["argv"],
                ["python", "{resource_dir}/scripts/launch_pod.py", *LAUNCH_ARGS],
            )
            self.assertEqual(
                spec["metadata"][where]["config"], {"image_name": "reg/kernel:2"}
            )
            self.assertEqual(spec["display_name"], "Python 3 (txkernel, Kubernetes)")
        self.assertEqual(
            remote_kernel_json("eg-kubernetes")["metadata"]["process_proxy"][
                "class_name"
            ],
            PROXIES + "k8s.KubernetesProcessProxy",
        )

    def test_unknown_target(self) -> None:
        with self.assertRaises(ValueError) as caught:
            remote_kernel_json("yarn")
        self.assertIn("eg-distributed", str(caught.exception))


class InstallRemoteTests(SynchronousTestCase):
    def run_main(self, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with redirect_stdout(out), redirect_stderr(err):
            code = main(list(argv))
        return code, out.getvalue(), err.getvalue()

    def test_every_target_installs_and_loads(self) -> None:
        prefix = os.path.abspath(self.mktemp())
        kernels = os.path.join(prefix, "share", "jupyter", "kernels")
        for target in TARGETS:
            code, out, err = self.run_main(
                "install", "--remote", target, "--prefix", prefix
            )
            self.assertEqual(code, 0, err)
            name = "txkernel_" + target.replace("-", "_")
            self.assertIn(f"Installed kernelspec {name} in", out)
        manager = KernelSpecManager(kernel_dirs=[kernels], ensure_native_kernel=False)
        self.assertEqual(
            sorted(manager.find_kernel_specs()),
            sorted("txkernel_" + t.replace("-", "_") for t in TARGETS),
        )
        spec = manager.get_kernel_spec("txkernel_eg_kubernetes")
        self.assertEqual(
            sorted(os.listdir(os.path.join(spec.resource_dir, "scripts"))),
            ["kernel-pod.yaml.j2", "launch_pod.py"],
        )
        self.assertTrue(
            os.path.exists(os.path.join(spec.resource_dir, "logo-64x64.png"))
        )
        distributed = manager.get_kernel_spec("txkernel_eg_distributed")
        self.assertFalse(
            os.path.exists(os.path.join(distributed.resource_dir, "scripts"))
        )

    def test_options(self) -> None:
        prefix = os.path.abspath(self.mktemp())
        code, _, err = self.run_main(
            "install",
            "--remote",
            "eg-distributed",
            "--prefix",
            prefix,
            "--name",
            "cluster",
            "--display-name",
            "Cluster",
            "--remote-hosts",
            "a,b",
            "--remote-python",
            "/srv/py/bin/python",
            "--kernel",
            "mypackage.kernels:Shout",
        )
        self.assertEqual(code, 0, err)
        path = os.path.join(prefix, "share", "jupyter", "kernels", "cluster")
        with open(os.path.join(path, "kernel.json")) as f:
            spec = json.load(f)
        self.assertEqual(spec["display_name"], "Cluster")
        self.assertEqual(spec["argv"][0], "/srv/py/bin/python")
        self.assertEqual(spec["argv"][-2:], ["--kernel", "mypackage.kernels:Shout"])
        self.assertEqual(
            spec["metadata"]["process_proxy"]["config"], {"remote_hosts": "a,b"}
        )

    def test_unknown_target_is_a_usage_error(self) -> None:
        code, _, err = self.run_main("install", "--remote", "yarn", "--prefix", "p")
        self.assertEqual(code, 2)
        self.assertIn("--remote", err)
