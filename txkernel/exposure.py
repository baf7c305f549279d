"""Warnings for a kernel that others than its user could reach.

A kernel runs any code its peers send, so two settings deserve a loud
warning when the sockets are bound: an address beyond loopback (ZeroMQ
traffic is plain text, and anyone who can reach the ports and has the key
can run code) and an empty key (no message is signed: anyone who can reach
the ports can run code).  Plain functions, called on the thread that binds
(the reactor).
"""

from __future__ import annotations

import ipaddress

from twisted.logger import Logger

from .connection import ConnectionInfo

log = Logger()


def is_loopback(ip: str) -> bool:
    """Whether ``ip`` (an address or ``localhost``) only reaches this machine."""
    if ip == "localhost":
        return True
    try:
        return ipaddress.ip_address(ip).is_loopback
    except ValueError:
        return False


def warn_about_exposure(info: ConnectionInfo) -> None:
    """Log a warning for each way ``info`` exposes the kernel beyond its user."""
    if info.transport == "tcp" and not is_loopback(info.ip) and info.curve_secretkey:
        log.warn(
            "txkernel: WARNING: binding {ip}, beyond loopback. The traffic is "
            "encrypted (CurveZMQ), but anyone who can reach these ports and has "
            "the public key and the connection key can run code as this user; "
            "see SECURITY.rst.",
            ip=info.ip,
        )
    elif info.transport == "tcp" and not is_loopback(info.ip):
        log.warn(
            "txkernel: WARNING: binding {ip}, beyond loopback. Anyone who can "
            "reach these ports and has the key can run code as this user, and "
            "the traffic (code, output, the signatures) is plain text. "
            "Use an SSH tunnel or a private network; see SECURITY.rst.",
            ip=info.ip,
        )
    if not info.key:
        log.warn(
            "txkernel: WARNING: the connection key is empty: messages are not "
            "signed, and anyone who can reach the sockets can run code as this user."
        )
