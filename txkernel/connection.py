"""Connection files: read them, make new ones, write them with mode 0600.

A connection file tells a frontend (and a kernel launched by Jupyter) where the
five kernel sockets are and how messages are signed.  Plain data and file I/O:
any thread may use this module.
"""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

CHANNELS = ("shell", "control", "stdin", "iopub", "hb")
TRANSPORTS = ("tcp", "ipc")
SIGNATURE_SCHEMES = ("hmac-md5", "hmac-sha256", "hmac-sha512")


class ConnectionFileError(Exception):
    """A connection file or option cannot be used; ``str()`` is one line."""


@dataclass(frozen=True)
class ConnectionInfo:
    """Where a kernel's sockets are and how its messages are signed.

    A port of 0 means "not chosen yet": the kernel binds a free one and the
    real number is filled in with :meth:`with_ports`.

    ``curve_publickey`` and ``curve_secretkey`` (Z85, empty when unused) are
    the kernel's CurveZMQ keypair, in the fields jupyter_client 8.10 and
    ipykernel 7.4 use (see :mod:`txkernel.curve`).
    """

    ip: str = "127.0.0.1"
    transport: str = "tcp"
    shell_port: int = 0
    control_port: int = 0
    stdin_port: int = 0
    iopub_port: int = 0
    hb_port: int = 0
    key: str = field(default_factory=lambda: secrets.token_hex(32))
    signature_scheme: str = "hmac-sha256"
    kernel_name: str = ""
    curve_publickey: str = ""
    curve_secretkey: str = ""

    def port(self, channel: str) -> int:
        """The port (or ipc suffix) of one channel."""
        return int(getattr(self, channel + "_port"))

    def endpoint(self, channel: str) -> str:
        """The ZeroMQ address of ``channel``; port 0 gives a bind wildcard."""
        port = self.port(channel)
        if self.transport == "ipc":
            return f"ipc://{self.ip}-{port}"
        return f"tcp://{self.ip}:{port if port else '*'}"

    def with_ports(self, ports: Mapping[str, int]) -> ConnectionInfo:
        """A copy with the given ``{channel: port}`` filled in."""
        return replace(self, **{ch + "_port": p for ch, p in ports.items()})

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of a connection file (no Curve fields when unused)."""
        data = asdict(self)
        for name in ("curve_publickey", "curve_secretkey"):
            if not data[name]:
                del data[name]
        return data


def _fail(path: str, reason: str) -> ConnectionFileError:
    return ConnectionFileError(f"connection file {path}: {reason}")


def parse_connection_info(
    data: Any, path: str = "<data>", allow_empty_key: bool = False
) -> ConnectionInfo:
    """Validate a decoded connection file and return its :class:`ConnectionInfo`.

    Raises :class:`ConnectionFileError` naming the first problem found.  An
    empty ``key`` (unsigned messages: anyone who reaches the ports runs code)
    is one, unless ``allow_empty_key``.
    """
    if not isinstance(data, dict):
        raise _fail(path, "expected a JSON object")
    transport = data.get("transport", "tcp")
    if transport not in TRANSPORTS:
        raise _fail(path, f"unsupported transport {transport!r} (use tcp or ipc)")
    ip = data.get("ip", "127.0.0.1")
    if not isinstance(ip, str) or not ip:
        raise _fail(path, "'ip' must be a non-empty string")
    ports = {}
    for channel in CHANNELS:
        name = channel + "_port"
        if name not in data:
            raise _fail(path, f"missing field {name!r}")
        try:
            port = int(data[name])
        except (TypeError, ValueError):
            raise _fail(
                path, f"{name!r} is not a port number: {data[name]!r}"
            ) from None
        if not 0 <= port <= 65535:
            raise _fail(path, f"{name!r} out of range: {port}")
        ports[name] = port
    key = data.get("key")
    if isinstance(key, bytes):  # jupyter_client's get_connection_info() gives bytes
        key = key.decode("utf-8", "replace")
    if not isinstance(key, str):
        raise _fail(
            path, "missing field 'key'" if key is None else "'key' must be a string"
        )
    if not key and not allow_empty_key:
        raise _fail(
            path,
            "'key' is empty, so messages would not be signed and anyone who can "
            "reach the ports could run code (--allow-empty-key accepts this)",
        )
    scheme = data.get("signature_scheme", "hmac-sha256")
    if scheme not in SIGNATURE_SCHEMES:
        raise _fail(path, f"unsupported signature_scheme {scheme!r}")
    kernel_name = data.get("kernel_name", "")
    curve = {}
    if "curve_publickey" in data or "curve_secretkey" in data:
        for name in ("curve_publickey", "curve_secretkey"):
            value = data.get(name)
            if isinstance(value, bytes):
                value = value.decode("ascii", "replace")
            if not isinstance(value, str) or len(value) != 40:
                raise _fail(path, f"{name!r} must be a 40-character Z85 key (give both or neither)")
            curve[name] = value
    return ConnectionInfo(
        ip=ip,
        transport=transport,
        key=key,
        signature_scheme=scheme,
        kernel_name=kernel_name if isinstance(kernel_name, str) else "",
        **curve,
        **ports,
    )


def read_connection_file(path: str, allow_empty_key: bool = False) -> ConnectionInfo:
    """Read and validate the connection file at ``path``.

    Raises :class:`ConnectionFileError` (one line) when the file is missing,
    unreadable, not JSON, lacks a field, or has an empty key (unless
    ``allow_empty_key``).
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise _fail(path, "no such file") from None
    except OSError as e:
        raise _fail(path, e.strerror or str(e)) from None
    try:
        data = json.loads(text)
    except ValueError as e:
        raise _fail(path, f"not valid JSON ({e})") from None
    return parse_connection_info(data, path, allow_empty_key)


def runtime_dir() -> str:
    """The Jupyter runtime directory (created if needed)."""
    from jupyter_core.paths import jupyter_runtime_dir

    path = jupyter_runtime_dir()
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def new_connection_file_path(directory: str | None = None) -> str:
    """A fresh ``kernel-<random>.json`` path in ``directory`` (default: runtime dir)."""
    directory = directory or runtime_dir()
    return os.path.join(directory, f"kernel-txkernel-{secrets.token_hex(8)}.json")


def write_connection_file(info: ConnectionInfo, path: str) -> str:
    """Write ``info`` to ``path`` atomically with mode 0600; returns ``path``."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".kernel-", suffix=".json", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(info.to_dict(), f, indent=2)
            f.write("\n")
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path
