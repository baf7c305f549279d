"""CurveZMQ for a kernel's five sockets: key files, the socket options, keygen.

With a server keypair, the kernel's shell, control, stdin, IOPub and
heartbeat sockets are CurveZMQ servers: traffic is encrypted, and only a
peer that knows the server's *public* key completes the handshake.  A client
connects with that public key and a keypair of its own (a fresh one when it
has none).  Without a ZAP handler libzmq accepts any client keypair, so what
decides who may run code stays the connection key (HMAC); Curve adds
encryption and the server's authentication.

A key file holds one Z85 key (40 characters) on a line; ``#`` lines are
comments.  ``python -m txkernel curve-keygen NAME`` writes ``NAME.key_secret``
(mode 0600) and ``NAME.key`` (mode 0644, the public key to hand to clients).
A secret key file is enough for the kernel: the public key is derived from it.

Plain data and file I/O; usable from any thread.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass

import zmq
from zmq.utils import z85

__all__ = [
    "CurveClient",
    "CurveError",
    "CurveServer",
    "generate_key_files",
    "read_key_file",
]

_Z85_LENGTH = 40


class CurveError(ValueError):
    """A key or key file is unusable, or this libzmq has no CurveZMQ."""


def require_curve() -> None:
    """Raise :class:`CurveError` unless libzmq was built with CurveZMQ."""
    if not zmq.has("curve"):
        raise CurveError("this libzmq has no CurveZMQ support (zmq.has('curve') is False)")


def _check_key(key: bytes | str, what: str) -> bytes:
    raw = key.encode("ascii", "replace") if isinstance(key, str) else bytes(key)
    raw = raw.strip()
    if len(raw) != _Z85_LENGTH:
        raise CurveError(f"{what}: a Z85 key has {_Z85_LENGTH} characters, not {len(raw)}")
    try:
        z85.decode(raw)
    except Exception:  # z85.decode raises KeyError or struct.error on bad text
        raise CurveError(f"{what}: not a Z85 key") from None
    return raw


def read_key_file(path: str) -> bytes:
    """The Z85 key in the file at ``path``; :class:`CurveError` when there is none."""
    try:
        with open(path, encoding="ascii", errors="replace") as f:
            lines = [line.strip() for line in f]
    except OSError as e:
        raise CurveError(f"key file {path}: {e.strerror}") from None
    keys = [line for line in lines if line and not line.startswith("#")]
    if len(keys) != 1:
        raise CurveError(f"key file {path}: expected one Z85 key line, found {len(keys)}")
    return _check_key(keys[0], f"key file {path}")


@dataclass(frozen=True)
class CurveServer:
    """The kernel's side: its secret key (Z85)."""

    secret_key: bytes

    def __post_init__(self) -> None:
        require_curve()
        object.__setattr__(self, "secret_key", _check_key(self.secret_key, "server secret key"))

    @classmethod
    def from_file(cls, path: str) -> CurveServer:
        """Read the secret key file at ``path``."""
        return cls(read_key_file(path))

    @property
    def public_key(self) -> bytes:
        """The public key clients need (Z85)."""
        return zmq.curve_public(self.secret_key)

    def socket_options(self) -> list[tuple[int, int | bytes]]:
        """The options that make a socket a CurveZMQ server (set before binding)."""
        return [
            (zmq.CURVE_SERVER, 1),
            (zmq.CURVE_SECRETKEY, self.secret_key),
            (zmq.CURVE_PUBLICKEY, self.public_key),
        ]


@dataclass(frozen=True)
class CurveClient:
    """A client's side: the server's public key and the client's own keypair
    (a fresh one when not given)."""

    server_key: bytes
    public_key: bytes = b""
    secret_key: bytes = b""

    def __post_init__(self) -> None:
        require_curve()
        object.__setattr__(self, "server_key", _check_key(self.server_key, "server public key"))
        if not self.public_key and not self.secret_key:
            public, secret = zmq.curve_keypair()
            object.__setattr__(self, "public_key", public)
            object.__setattr__(self, "secret_key", secret)
            return
        secret = _check_key(self.secret_key, "client secret key")
        public = _check_key(self.public_key, "client public key") if self.public_key else b""
        derived = zmq.curve_public(secret)
        if public and public != derived:
            raise CurveError("the client public key does not match its secret key")
        object.__setattr__(self, "secret_key", secret)
        object.__setattr__(self, "public_key", derived)

    @classmethod
    def from_files(cls, server_key_file: str, secret_key_file: str | None = None) -> CurveClient:
        """The server's public key file, and optionally the client's secret key file."""
        secret = read_key_file(secret_key_file) if secret_key_file else b""
        return cls(read_key_file(server_key_file), secret_key=secret)

    def socket_options(self) -> list[tuple[int, int | bytes]]:
        """The options that make a socket a CurveZMQ client (set before connecting)."""
        return [
            (zmq.CURVE_SERVERKEY, self.server_key),
            (zmq.CURVE_PUBLICKEY, self.public_key),
            (zmq.CURVE_SECRETKEY, self.secret_key),
        ]


def _write(path: str, text: str, mode: int) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        os.fchmod(f.fileno(), mode)
        f.write(text)


def generate_key_files(base: str) -> tuple[str, str]:
    """Write a new keypair: ``base.key_secret`` (0600) and ``base.key`` (0644).

    Returns their paths; refuses (:class:`FileExistsError`) to overwrite either.
    """
    require_curve()
    public, secret = zmq.curve_keypair()
    public_path, secret_path = base + ".key", base + ".key_secret"
    for path in (public_path, secret_path):
        if os.path.exists(path):
            raise FileExistsError(f"{path} exists: not overwriting a key")
    _write(
        secret_path,
        "# txkernel CurveZMQ secret key: keep it private\n" + secret.decode("ascii") + "\n",
        0o600,
    )
    _write(public_path, "# txkernel CurveZMQ public key\n" + public.decode("ascii") + "\n", 0o644)
    return public_path, secret_path


def keygen_main(argv: list[str]) -> int:
    """``python -m txkernel curve-keygen NAME``; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m txkernel curve-keygen",
        description="Write a CurveZMQ keypair: NAME.key_secret (0600) and NAME.key (public).",
    )
    parser.add_argument("name", help="path of the key files, without extension")
    args = parser.parse_args(argv)
    try:
        public_path, secret_path = generate_key_files(args.name)
    except (CurveError, OSError) as e:
        sys.stderr.write(f"txkernel: {e}\n")
        return 1
    sys.stdout.write(f"secret key: {secret_path}\npublic key: {public_path}\n")
    return 0
