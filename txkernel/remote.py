"""``python -m txkernel.remote``: txkernel as a remote kernel of Jupyter Enterprise Gateway.

Enterprise Gateway and gateway_provisioners start remote kernels (over ssh,
in containers, on YARN) through a *kernel launcher* that speaks their launch
protocol, as IJulia and IRkernel do with launchers of their own.  Started
with a response address, a public key and a kernel id (the kernelspec's
``{response_address}``, ``{public_key}``, ``{kernel_id}``, ``{port_range}``),
this module:

1. picks the five kernel ports and a *communication port* on the address it
   is given (within ``--port-range`` if one is set) and writes a connection
   file (mode 0600) with a new key; with ``--transport ipc`` the kernel's
   sockets are files in a new private directory (0700) of the Jupyter
   runtime directory instead, removed on exit (the communication port stays
   TCP);
2. sends the connection information back to the gateway: the JSON (plus
   ``pid``, ``pgid``, ``comm_port`` and ``kernel_id``) encrypted with a fresh
   AES-128 key (ECB, PKCS#7 padding), that key encrypted with the gateway's
   RSA public key (PKCS#1 v1.5), both base64 in a ``{"version": 1, "key",
   "conn_info"}`` JSON object, itself base64, written to the response address;
3. listens on the communication port for ``{"signum": N}`` (deliver signal N
   to this process; 0 only tells the gateway it is alive) and
   ``{"shutdown": 1}`` (stop listening), on a daemon thread of its own;
4. serves the kernel on the main thread exactly as ``python -m txkernel -f``
   does (SIGINT interrupts a cell, SIGTERM ends the kernel).

In a container (a Kubernetes kernel pod) the four launch values may come
from the environment: ``KERNEL_ID``, ``RESPONSE_ADDRESS``, ``PUBLIC_KEY``,
``PORT_RANGE``.  Encryption needs the ``cryptography`` package (``pip install
'txkernel[remote]'``); the rest of txkernel does not.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import random
import signal
import socket
import sys
import threading
import uuid
from typing import Any

from .connection import CHANNELS, ConnectionInfo, write_connection_file
from .ipc import remove_socket_files, socket_path

#: The payload version of the launch protocol this module speaks.
LAUNCHER_VERSION = 1

#: The longest ipc socket path Linux takes (``sun_path`` less its NUL).
MAX_IPC_PATH = 107

__all__ = [
    "LAUNCHER_VERSION",
    "LaunchError",
    "encrypt_connection_info",
    "kernel_json",
    "main",
    "parse_port_range",
]


class LaunchError(Exception):
    """The kernel cannot be launched as asked; ``str()`` is one line."""


def parse_port_range(text: str) -> tuple[int, int]:
    """``"LOWER..UPPER"`` as two ints; ``"0..0"`` (or empty) means any port."""
    if not text or text.startswith("{"):
        return 0, 0
    try:
        lower, upper = (int(part) for part in text.split(".."))
    except ValueError:
        raise LaunchError(f"--port-range must be LOWER..UPPER, not {text!r}") from None
    if (lower, upper) != (0, 0) and not 0 < lower <= upper < 65536:
        raise LaunchError(f"--port-range {text!r} is not a range of ports")
    return lower, upper


def _bound_socket(ip: str, ports: tuple[int, int], tries: int = 50) -> socket.socket:
    """A TCP socket bound on ``ip``, to a free port within ``ports``."""
    lower, upper = ports
    last: OSError | None = None
    for _ in range(tries if upper else 1):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((ip, random.randint(lower, upper) if upper else 0))
        except OSError as e:
            sock.close()
            last = e
            continue
        return sock
    raise LaunchError(f"no free port on {ip} in {lower}..{upper}: {last}")


def choose_ports(ip: str, ports: tuple[int, int], count: int) -> list[int]:
    """``count`` distinct free ports on ``ip`` within ``ports``.

    Each is bound while the others are found, then released for the kernel
    to bind (the kernel binds them a moment later)."""
    sockets = [_bound_socket(ip, ports) for _ in range(count)]
    try:
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def encrypt_connection_info(info: dict[str, Any], public_key: str) -> bytes:
    """The launch protocol's payload for ``info``, for the gateway holding the
    private half of ``public_key`` (base64 DER or PEM, as the gateway gives it)."""
    try:
        from cryptography.hazmat.primitives import padding, serialization
        from cryptography.hazmat.primitives.asymmetric import padding as rsa_padding
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
    except ImportError:
        raise LaunchError(
            "sending connection info to a gateway needs the cryptography package"
            " (pip install 'txkernel[remote]')"
        ) from None
    text = public_key.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = serialization.load_pem_public_key(text.encode("ascii"))
        else:
            key = serialization.load_der_public_key(base64.b64decode(text))
    except ValueError as e:
        raise LaunchError(f"--public-key is not an RSA public key ({e})") from None
    aes_key = os.urandom(16)
    padder = padding.PKCS7(128).padder()
    plain = padder.update(json.dumps(info).encode("utf-8")) + padder.finalize()
    encryptor = Cipher(algorithms.AES(aes_key), modes.ECB()).encryptor()  # noqa: S305 - the protocol's mode
    sealed = encryptor.update(plain) + encryptor.finalize()
    wrapped = key.encrypt(aes_key, rsa_padding.PKCS1v15())  # type: ignore[union-attr]
    payload = {
        "version": LAUNCHER_VERSION,
        "key": base64.b64encode(wrapped).decode("ascii"),
        "conn_info": base64.b64encode(sealed).decode("ascii"),
    }
    return base64.b64encode(json.dumps(payload).encode("utf-8"))


def kernel_json(
    python: str | None = None,
    display_name: str = "Python 3 (txkernel, remote)",
    provisioner: str = "distributed-provisioner",
    provisioner_config: dict[str, Any] | None = None,
    extra_argv: list[str] | None = None,
) -> dict[str, Any]:
    """A ``kernel.json`` that starts txkernel through a gateway's provisioner.

    ``provisioner`` is the name of a gateway_provisioners provisioner that
    runs the launcher on the kernel's host (``distributed-provisioner``: ssh
    to ``remote_hosts``; for pods, the ``gp-kubernetes`` target of
    :mod:`txkernel.remote_kernelspecs`); ``provisioner_config``
    its settings (for example ``{"remote_hosts": ["node1", "node2"]}``);
    ``extra_argv`` more launcher options (``--ip``, ``--kernel``...).  For
    Enterprise Gateway's process proxies, and the shipped targets, see
    :func:`txkernel.remote_kernelspecs.remote_kernel_json`."""
    from .kernelspec import kernel_json as local_kernel_json
    from .remote_kernelspecs import LAUNCH_ARGS

    spec = local_kernel_json(python=python, display_name=display_name)
    spec["argv"] = [
        spec["argv"][0],
        "-m",
        "txkernel.remote",
        *LAUNCH_ARGS,
        *(extra_argv or []),
    ]
    spec["metadata"]["kernel_provisioner"] = {
        "provisioner_name": provisioner,
        "config": dict(provisioner_config or {}),
    }
    return spec


def _parse_address(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise LaunchError(f"--response-address must be HOST:PORT, not {text!r}")
    return host, int(port)


def send_connection_info(address: str, payload: bytes, timeout: float = 30.0) -> None:
    """Write ``payload`` to the gateway's response address and close."""
    with socket.create_connection(_parse_address(address), timeout=timeout) as sock:
        sock.sendall(payload)


class Listener:
    """The communication port: the gateway's signal and shutdown requests
    (one JSON object per connection).  Runs on a daemon thread of its own."""

    def __init__(self, sock: socket.socket, pid: int) -> None:
        self.sock = sock
        self.pid = pid
        self.thread = threading.Thread(
            target=self._serve, name="txkernel-gateway-listener", daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def start(self) -> None:
        self.sock.listen(4)
        self.thread.start()

    def _serve(self) -> None:
        with self.sock:
            while True:
                try:
                    conn, _ = self.sock.accept()
                except OSError:
                    return
                with conn:
                    conn.settimeout(10)
                    data = b""
                    try:
                        while chunk := conn.recv(4096):
                            data += chunk
                    except OSError:
                        continue
                if not self.handle(data):
                    return

    def handle(self, data: bytes) -> bool:
        """Act on one request; returns False once asked to stop listening."""
        try:
            request = json.loads(data) if data.strip() else {}
        except ValueError:
            sys.stderr.write(
                f"txkernel.remote: ignored a request that is not JSON: {data!r}\n"
            )
            return True
        if not isinstance(request, dict):
            return True
        signum = request.get("signum")
        if isinstance(signum, int) and signum > 0:
            os.kill(self.pid, signum)
        return not request.get("shutdown")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m txkernel.remote",
        description="Start a txkernel kernel for Jupyter Enterprise Gateway or"
        " gateway_provisioners (their remote-kernel launch protocol).",
    )
    # In a kernel pod (see docs/kubernetes.rst) the gateway passes these in
    # the environment instead: KERNEL_ID, RESPONSE_ADDRESS, PUBLIC_KEY,
    # PORT_RANGE.
    for option, variable, what in (
        ("--kernel-id", "KERNEL_ID", "{kernel_id}"),
        ("--response-address", "RESPONSE_ADDRESS", "{response_address}"),
        ("--public-key", "PUBLIC_KEY", "{public_key}"),
    ):
        parser.add_argument(
            option,
            default=os.environ.get(variable),
            required=not os.environ.get(variable),
            help=f"the gateway's {what} (default: ${variable})",
        )
    parser.add_argument(
        "--port-range",
        default=os.environ.get("PORT_RANGE", "0..0"),
        help="the gateway's {port_range} (LOWER..UPPER; default: $PORT_RANGE)",
    )
    parser.add_argument(
        "--transport",
        default="tcp",
        choices=("tcp", "ipc"),
        help="ipc: the kernel's sockets are files in a private directory, for a"
        " client on this host (Enterprise Gateway and gateway_provisioners"
        " replace the address and need tcp); the communication port stays TCP"
        " on --ip",
    )
    parser.add_argument(
        "--ip",
        default="0.0.0.0",
        help="address to bind the kernel's ports on",  # noqa: S104
    )
    parser.add_argument(
        "--connection-dir",
        help="where to write the connection file (default: Jupyter's runtime dir)",
    )
    parser.add_argument(
        "--kernel",
        default="txkernel.python:PythonKernel",
        help="kernel class, package.module:Class",
    )
    # Passed by the gateways' stock kernelspecs; only the values that mean
    # "nothing to do" are accepted.
    parser.add_argument(
        "--spark-context-initialization-mode", default="none", choices=("none",)
    )
    parser.add_argument("--transport-encryption", default="", choices=("", "none"))
    parser.add_argument("--cluster-type", default="")
    return parser


def launch(
    args: argparse.Namespace,
) -> tuple[str, ConnectionInfo, str | None, Listener]:
    """Steps 1 to 3: write the connection file, answer the gateway, listen.

    Returns the connection file's path, the connection info, the private
    directory made for ipc sockets (None for tcp) and the started listener.
    """
    from .connection import new_connection_file_path
    from .ipc import choose_socket_paths

    ports = parse_port_range(args.port_range)
    ip = args.ip
    info = ConnectionInfo(
        ip=ip, transport=args.transport, key=str(uuid.uuid4()), kernel_name="txkernel"
    )
    ipc_directory = None
    if args.transport == "ipc":
        # A fresh 0700 directory in the runtime directory; the kernel
        # removes its socket files when it closes, main() the directory.
        info, ipc_directory = choose_socket_paths(info)
        longest = max(len(os.fsencode(socket_path(info, ch))) for ch in CHANNELS)
        if longest > MAX_IPC_PATH:
            remove_socket_files(info, ipc_directory)
            raise LaunchError(
                f"ipc socket paths under {ipc_directory} would be {longest} bytes,"
                f" more than the {MAX_IPC_PATH} a socket address holds: set"
                " JUPYTER_RUNTIME_DIR to a shorter directory"
            )
    else:
        kernel_ports = choose_ports(ip, ports, 5)
        info = info.with_ports(
            dict(
                zip(
                    ("shell", "iopub", "stdin", "hb", "control"),
                    kernel_ports,
                    strict=True,
                )
            )
        )
    path = ""
    try:
        path = write_connection_file(
            info, new_connection_file_path(args.connection_dir)
        )
        listener = Listener(_bound_socket(ip, ports), os.getpid())
        reply = dict(info.to_dict())
        reply.update(
            pid=os.getpid(),
            pgid=os.getpgid(0),
            comm_port=listener.port,
            kernel_id=args.kernel_id,
        )
        send_connection_info(
            args.response_address, encrypt_connection_info(reply, args.public_key)
        )
    except BaseException:
        # Nothing reached the gateway: leave nothing behind.
        if path:
            os.unlink(path)
        if ipc_directory is not None:
            remove_socket_files(info, ipc_directory)
        raise
    listener.start()
    return path, info, ipc_directory, listener


def main(argv: list[str] | None = None) -> int:
    """Run the launcher; returns the exit status."""
    from . import __main__ as kernel_main

    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    try:
        path, info, ipc_directory, _listener = launch(args)
    except (LaunchError, OSError) as e:
        sys.stderr.write(f"txkernel.remote: {e}\n")
        return 1
    # A gateway asks for interrupts with {"signum": 2}; make sure SIGINT is
    # not ignored (a process started in the background inherits SIG_IGN).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    serve_args = kernel_main._parser().parse_args(["-f", path, "--kernel", args.kernel])
    try:
        return kernel_main.serve(serve_args)
    finally:
        try:
            os.unlink(path)
        except OSError:
            pass
        if ipc_directory is not None:
            remove_socket_files(info, ipc_directory)


if __name__ == "__main__":
    sys.exit(main())
