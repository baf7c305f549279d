"""An sshd on 127.0.0.1 for one test: the ssh host of the remote-kernel tests.

:func:`start_sshd` runs Debian's ``/usr/sbin/sshd`` in the foreground with a
host key, an authorized key and a home directory (``.ssh/id_ed25519`` and
``known_hosts``) made for the test, so that both OpenSSH's client and
paramiko (Enterprise Gateway's) log in as root without asking anything.
:func:`require_sshd` skips a test where sshd is not installed (and fails it
in CI, where ``.ci/run`` installs it).  Runs on the reactor thread; sshd is
ended in the test's cleanup.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from typing import Any

from twisted.internet import reactor
from twisted.trial.unittest import SkipTest

from .helpers import ProcessOutput
from .jupyter_server import bounded, observe

SSHD = "/usr/sbin/sshd"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def require_sshd(test: Any) -> None:
    """Skip ``test`` without sshd (fail it in CI, where it must run)."""
    if not os.path.exists(SSHD):
        if os.environ.get("CI") == "true":
            test.fail(f"{SSHD} is missing: the ssh test must run in CI")
        raise SkipTest(f"{SSHD} is not installed (apt-get install openssh-server)")


async def start_sshd(test: Any) -> tuple[str, int, ProcessOutput]:
    """An sshd on 127.0.0.1 for ``test`` (ended in cleanup) that lets in the
    key of a new home directory; fires with that home, the port and sshd's
    output."""
    root = os.path.abspath(test.mktemp())
    home = os.path.join(root, "home")
    dot_ssh = os.path.join(home, ".ssh")
    os.makedirs(dot_ssh, mode=0o700)
    host_key = os.path.join(root, "host_key")
    user_key = os.path.join(dot_ssh, "id_ed25519")
    for path in (host_key, user_key):
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", path],
            check=True,
            timeout=30,
        )
    authorized = os.path.join(root, "authorized_keys")
    shutil.copy(user_key + ".pub", authorized)
    port = free_port()
    with open(host_key + ".pub") as f:
        kind, key = f.read().split()[:2]
    with open(os.path.join(dot_ssh, "known_hosts"), "w") as f:
        f.write(f"[127.0.0.1]:{port} {kind} {key}\n")
    config = os.path.join(root, "sshd_config")
    with open(config, "w") as f:
        f.write(
            f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\n"
            f"AuthorizedKeysFile {authorized}\nPidFile {root}/sshd.pid\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
            "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        )
    # sshd's privilege separation directory (the package's service makes it).
    os.makedirs("/run/sshd", mode=0o755, exist_ok=True)
    output = ProcessOutput()
    process = reactor.spawnProcess(output, SSHD, [SSHD, "-D", "-e", "-f", config])

    async def stop() -> None:
        if not output.ended.called:
            process.signalProcess("TERM")
            await bounded(observe(output.ended), 30, "sshd to exit")

    test.addCleanup(stop)
    await bounded(output.wait_for(r"Server listening on 127\.0\.0\.1"), 30, "sshd")
    return home, port, output
