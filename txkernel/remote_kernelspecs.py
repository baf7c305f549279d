"""Kernelspecs that start txkernel as a remote kernel of a gateway.

Jupyter Enterprise Gateway picks a *process proxy* from a kernelspec's
``metadata.process_proxy``; gateway_provisioners (under Jupyter Server)
picks a *provisioner* from ``metadata.kernel_provisioner``.  Either then runs
the spec's ``argv`` with the launch protocol's substitutions
(``{kernel_id}``, ``{response_address}``, ``{public_key}``,
``{port_range}``).  This module writes those kernelspecs for txkernel:

=====================  ==================================================
target                 what starts the kernel
=====================  ==================================================
``eg-distributed``     EG's ``DistributedProcessProxy``: ssh to one of
                       ``remote_hosts`` (or directly on this host), runs
                       ``python -m txkernel.remote``
``eg-kubernetes``      EG's ``KubernetesProcessProxy``: the spec's
                       ``scripts/launch_pod.py`` creates a kernel pod from
                       ``scripts/kernel-pod.yaml.j2`` whose image runs
                       ``python -m txkernel.remote`` (see the Dockerfile)
``gp-distributed``     gateway_provisioners' ``distributed-provisioner``
``gp-kubernetes``      gateway_provisioners' ``kubernetes-provisioner``
=====================  ==================================================

From the command line: ``python -m txkernel install --remote TARGET
[--remote-hosts a,b] [--image IMAGE] [--remote-python PATH] ...``.
Plain file writing on the caller's thread; imports nothing heavy.
"""

from __future__ import annotations

import argparse
import os
import tempfile
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

__all__ = [
    "DISTRIBUTED",
    "KUBERNETES",
    "TARGETS",
    "install_remote",
    "main",
    "remote_kernel_json",
    "write_remote_kernelspec",
]

#: Targets whose kernels are started over ssh (or on this host).
DISTRIBUTED = ("eg-distributed", "gp-distributed")
#: Targets whose kernels run in a Kubernetes pod.
KUBERNETES = ("eg-kubernetes", "gp-kubernetes")
TARGETS = DISTRIBUTED + KUBERNETES

_PROCESS_PROXIES = {
    "eg-distributed": "enterprise_gateway.services.processproxies.distributed."
    "DistributedProcessProxy",
    "eg-kubernetes": "enterprise_gateway.services.processproxies.k8s."
    "KubernetesProcessProxy",
}
_PROVISIONERS = {
    "gp-distributed": "distributed-provisioner",
    "gp-kubernetes": "kubernetes-provisioner",
}

#: The launch protocol's arguments, as every target passes them.
LAUNCH_ARGS = [
    "--kernel-id",
    "{kernel_id}",
    "--port-range",
    "{port_range}",
    "--response-address",
    "{response_address}",
    "--public-key",
    "{public_key}",
]

#: Files of ``txkernel/kubernetes/`` copied into a Kubernetes kernelspec's
#: ``scripts/`` directory.
KUBERNETES_SCRIPTS = ("launch_pod.py", "kernel-pod.yaml.j2")

DEFAULT_IMAGE = "txkernel-kernel:latest"


def remote_kernel_json(
    target: str,
    python: str | None = None,
    remote_hosts: Sequence[str] = (),
    image: str = DEFAULT_IMAGE,
    display_name: str | None = None,
    extra_argv: Sequence[str] = (),
    config: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``kernel.json`` for ``target`` (one of :data:`TARGETS`).

    ``python`` is the interpreter on the kernel's host for the distributed
    targets (default: this one), ``remote_hosts`` the hosts to ssh to
    (default: the gateway's own ``remote_hosts`` setting); ``image`` the
    kernel image for the Kubernetes targets (built from txkernel's
    Dockerfile); ``extra_argv`` more ``txkernel.remote`` options (``--ip``,
    ``--kernel``, ``--transport``...), for the distributed targets;
    ``config`` more settings of the process proxy or provisioner (for
    example ``{"unauthorized_users": []}``).  :exc:`ValueError` for an
    unknown target."""
    from .kernelspec import kernel_json as local_kernel_json

    if target not in TARGETS:
        raise ValueError(
            f"unknown remote target {target!r} (one of {', '.join(TARGETS)})"
        )
    where = "Kubernetes" if target in KUBERNETES else "remote"
    spec = local_kernel_json(
        python=python, display_name=display_name or f"Python 3 (txkernel, {where})"
    )
    settings: dict[str, Any] = {}
    if target in DISTRIBUTED:
        spec["argv"] = [
            spec["argv"][0],
            "-m",
            "txkernel.remote",
            *LAUNCH_ARGS,
            *extra_argv,
        ]
        if remote_hosts:
            # EG reads a comma-separated string, gateway_provisioners a list.
            settings["remote_hosts"] = (
                ",".join(remote_hosts)
                if target.startswith("eg-")
                else list(remote_hosts)
            )
    else:
        # Runs in the gateway's environment ("python" is the gateway's own
        # interpreter there), which has the kubernetes client and jinja2.
        spec["argv"] = [
            "python",
            "{resource_dir}/scripts/launch_pod.py",
            *LAUNCH_ARGS,
        ]
        settings["image_name"] = image
    settings.update(config or {})
    if target in _PROCESS_PROXIES:
        proxy: dict[str, Any] = {"class_name": _PROCESS_PROXIES[target]}
        if settings:
            proxy["config"] = settings
        spec["metadata"]["process_proxy"] = proxy
    else:
        spec["metadata"]["kernel_provisioner"] = {
            "provisioner_name": _PROVISIONERS[target],
            "config": settings,
        }
    return spec


def write_remote_kernelspec(directory: str, target: str, spec: dict[str, Any]) -> None:
    """Write ``spec``, the logos and (for Kubernetes) the pod launcher and its
    template into ``directory``."""
    from .kernelspec import write_kernelspec

    write_kernelspec(directory, spec)
    if target in KUBERNETES:
        scripts = os.path.join(directory, "scripts")
        os.makedirs(scripts, exist_ok=True)
        source = resources.files("txkernel").joinpath("kubernetes")
        for filename in KUBERNETES_SCRIPTS:
            with open(os.path.join(scripts, filename), "wb") as f:
                f.write(source.joinpath(filename).read_bytes())


def install_remote(
    target: str,
    name: str | None = None,
    user: bool = False,
    prefix: str | None = None,
    **options: Any,
) -> str:
    """Install the kernelspec for ``target`` as ``name`` (default
    ``txkernel_<target>``, dashes as underscores) and return its directory.

    ``options`` go to :func:`remote_kernel_json`; ``user`` and ``prefix`` as
    for :func:`txkernel.kernelspec.install` (neither: system-wide)."""
    from .kernelspec import _manager

    spec = remote_kernel_json(target, **options)
    name = name or "txkernel_" + target.replace("-", "_")
    with tempfile.TemporaryDirectory(prefix="txkernel-kernelspec-") as tmp:
        staged = os.path.join(tmp, "kernelspec")
        os.mkdir(staged)
        write_remote_kernelspec(staged, target, spec)
        return _manager().install_kernel_spec(staged, name, user=user, prefix=prefix)


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=f"{prog} install --remote",
        description="Install a kernelspec that starts txkernel through a"
        " gateway: eg-distributed, eg-kubernetes (Enterprise Gateway's process"
        " proxies), gp-distributed, gp-kubernetes (gateway_provisioners).",
    )
    parser.add_argument("--remote", required=True, choices=TARGETS)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for the current user")
    where.add_argument(
        "--sys-prefix", action="store_true", help="into sys.prefix/share/jupyter"
    )
    where.add_argument("--prefix", help="into PREFIX/share/jupyter/kernels/NAME")
    parser.add_argument("--name", help="kernelspec name (default: txkernel_TARGET)")
    parser.add_argument("--display-name", help="name shown in Jupyter's menus")
    parser.add_argument(
        "--kernel",
        metavar="package.module:Class",
        help="with *-distributed: serve this interpreter class",
    )
    parser.add_argument(
        "--remote-hosts",
        metavar="HOST,HOST",
        help="with *-distributed: the hosts to start kernels on"
        " (default: the gateway's remote_hosts setting)",
    )
    parser.add_argument(
        "--remote-python",
        metavar="PATH",
        help="with *-distributed: the Python on those hosts that has"
        " txkernel[remote] (default: this one)",
    )
    parser.add_argument(
        "--image",
        default=DEFAULT_IMAGE,
        help="with *-kubernetes: the kernel image, built from txkernel's"
        f" Dockerfile (default: {DEFAULT_IMAGE})",
    )
    return parser


def main(argv: Sequence[str], prog: str = "python -m txkernel") -> int:
    """``python -m txkernel install --remote TARGET ...`` (``argv`` after
    ``install``); returns the exit status (2: usage, 1: cannot write)."""
    import sys

    try:
        args = _parser(prog).parse_args(list(argv))
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 0
    hosts = [h for h in (args.remote_hosts or "").split(",") if h]
    try:
        destination = install_remote(
            args.remote,
            name=args.name,
            user=args.user,
            prefix=sys.prefix if args.sys_prefix else args.prefix,
            python=args.remote_python,
            remote_hosts=hosts,
            image=args.image,
            display_name=args.display_name,
            extra_argv=["--kernel", args.kernel] if args.kernel else [],
        )
    except ValueError as e:
        print(f"{prog} install: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"{prog} install: error: cannot install kernelspec: {e}", file=sys.stderr)
        return 1
    print(f"Installed kernelspec {os.path.basename(destination)} in {destination}")
    return 0
