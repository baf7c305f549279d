"""Socket paths for the ipc transport: choose private ones, remove them after.

With ``transport: ipc`` a channel's endpoint is ``ipc://{ip}-{port}``: ``ip``
is a path prefix and ``port`` a number that makes each channel's path
distinct.  A kernel told to use ipc without a connection file (so ``ip`` is
still an address such as ``127.0.0.1`` and no port is chosen) gets a fresh
directory of its own, mode 0700, in the Jupyter runtime directory; any port
left at 0 is given the smallest number whose path is free.  :func:`remove_socket_files` deletes the
files (and that directory) once the sockets are closed.  Plain file-system
calls, made on the thread that binds (the reactor).
"""

from __future__ import annotations

import ipaddress
import os
import stat
import tempfile

from .connection import CHANNELS, ConnectionInfo, runtime_dir


def _is_address(ip: str) -> bool:
    if ip in ("localhost", "*"):
        return True
    try:
        ipaddress.ip_address(ip)
    except ValueError:
        return False
    return True


def socket_path(info: ConnectionInfo, channel: str) -> str:
    """The file ``channel``'s ipc endpoint names."""
    return f"{info.ip}-{info.port(channel)}"


def choose_socket_paths(info: ConnectionInfo) -> tuple[ConnectionInfo, str | None]:
    """``info`` with a path prefix and distinct ports for every ipc channel.

    Returns the new info and the private directory made for it (None when
    ``info`` named its own path prefix).
    """
    directory = None
    chosen = any(info.port(ch) for ch in CHANNELS)
    # Numbers a connection file chose name paths a frontend will connect to:
    # keep its prefix whatever it looks like.
    if _is_address(info.ip) and not chosen:
        directory = tempfile.mkdtemp(prefix="txkernel-ipc-", dir=runtime_dir())
        info = ConnectionInfo(
            **{**info.to_dict(), "ip": os.path.join(directory, "kernel")}
        )
    taken = {info.port(ch) for ch in CHANNELS if info.port(ch)}
    ports = {}
    candidate = 1
    for channel in CHANNELS:
        if info.port(channel):
            continue
        while candidate in taken or os.path.exists(f"{info.ip}-{candidate}"):
            candidate += 1
        ports[channel] = candidate
        taken.add(candidate)
    return info.with_ports(ports), directory


def remove_socket_files(info: ConnectionInfo, directory: str | None) -> None:
    """Delete the socket files of ``info`` and the private ``directory``, if any."""
    for channel in CHANNELS:
        path = socket_path(info, channel)
        try:
            if stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass
    if directory is not None:
        try:
            os.rmdir(directory)
        except OSError:
            pass
