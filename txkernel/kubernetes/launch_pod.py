"""Start a txkernel kernel pod for Enterprise Gateway or gateway_provisioners.

The gateway's ``KubernetesProcessProxy`` (or ``KubernetesProvisioner``)
runs this script, in the gateway's own environment, with the launch
protocol's arguments (``--kernel-id``, ``--response-address``,
``--public-key``, ``--port-range``) and the pod's settings in ``KERNEL_*``
variables (``KERNEL_POD_NAME``, ``KERNEL_NAMESPACE``, ``KERNEL_IMAGE``,
``KERNEL_SERVICE_ACCOUNT_NAME``, ``KERNEL_UID``, ``KERNEL_GID``,
``KERNEL_WORKING_DIR``, ``KERNEL_CPUS``, ``KERNEL_MEMORY``).  It renders
``kernel-pod.yaml.j2`` beside it and creates that pod, then exits; the pod's
image (txkernel's Dockerfile) runs ``python -m txkernel.remote``, which reads
``KERNEL_ID``, ``RESPONSE_ADDRESS``, ``PUBLIC_KEY`` and ``PORT_RANGE`` from
its environment and sends its connection info to the gateway.  The gateway
then finds the pod by its labels and follows it.

``--dry-run`` prints the pod's manifest instead of creating it.  Needs
jinja2 and PyYAML, and the kubernetes client to create the pod: all three
come with Enterprise Gateway (and gateway_provisioners' ``k8s`` extra).
This file is copied into the kernelspec by ``python -m txkernel install
--remote eg-kubernetes``; it imports nothing from txkernel.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping
from typing import Any

TEMPLATE = "kernel-pod.yaml.j2"


def _int_or_none(environ: Mapping[str, str], name: str) -> int | None:
    value = environ.get(name, "").strip()
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise SystemExit(
            f"launch_pod.py: {name} must be a number, not {value!r}"
        ) from None


def template_values(
    args: argparse.Namespace, environ: Mapping[str, str]
) -> dict[str, Any]:
    """What ``kernel-pod.yaml.j2`` is rendered with."""
    namespace = environ.get("KERNEL_NAMESPACE") or "default"
    env = {
        # Everything the client and the gateway set for the kernel...
        **{k: v for k, v in environ.items() if k.startswith("KERNEL_")},
        # ...and the launch protocol's values, read by txkernel.remote.
        "KERNEL_ID": args.kernel_id,
        "RESPONSE_ADDRESS": args.response_address,
        "PUBLIC_KEY": args.public_key,
        "PORT_RANGE": args.port_range,
        "KERNEL_NAMESPACE": namespace,
    }
    return {
        "kernel_id": args.kernel_id,
        "pod_name": environ.get("KERNEL_POD_NAME") or f"txkernel-{args.kernel_id}",
        "namespace": namespace,
        "image": environ.get("KERNEL_IMAGE") or args.image,
        "service_account": environ.get("KERNEL_SERVICE_ACCOUNT_NAME") or "default",
        "uid": _int_or_none(environ, "KERNEL_UID"),
        "gid": _int_or_none(environ, "KERNEL_GID"),
        "working_dir": environ.get("KERNEL_WORKING_DIR", ""),
        "cpus": environ.get("KERNEL_CPUS", ""),
        "memory": environ.get("KERNEL_MEMORY", ""),
        "env": env,
    }


def render(values: Mapping[str, Any], directory: str | None = None) -> str:
    """The pod manifest (YAML) from the template in ``directory``."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    loader = FileSystemLoader(directory or os.path.dirname(os.path.abspath(__file__)))
    environment = Environment(
        loader=loader,
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=StrictUndefined,
        autoescape=False,
    )
    return environment.get_template(TEMPLATE).render(**values)


def create_pod(manifest: Mapping[str, Any]) -> None:
    """Create the pod in its namespace (in-cluster config, else kubeconfig)."""
    from kubernetes import client, config

    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config()
    else:
        config.load_kube_config()
    namespace = manifest["metadata"]["namespace"]
    client.CoreV1Api().create_namespaced_pod(namespace=namespace, body=manifest)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="launch_pod.py", description="Start a txkernel kernel pod."
    )
    parser.add_argument("--kernel-id", required=True)
    parser.add_argument("--response-address", required=True)
    parser.add_argument("--public-key", required=True)
    parser.add_argument("--port-range", default="0..0")
    parser.add_argument(
        "--image",
        default="txkernel-kernel:latest",
        help="the kernel image when KERNEL_IMAGE is not set",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="print the manifest, create nothing"
    )
    # Passed by some gateways' launch commands; nothing to do with them.
    parser.add_argument("--spark-context-initialization-mode", default="none")
    parser.add_argument("--kernel-class-name", default="")
    return parser


def main(argv: list[str] | None = None) -> int:
    import yaml

    args = _parser().parse_args(argv)
    text = render(template_values(args, os.environ))
    if args.dry_run:
        sys.stdout.write(text)
        return 0
    create_pod(yaml.safe_load(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
