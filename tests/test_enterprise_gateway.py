"""txkernel through Jupyter Enterprise Gateway itself.

Enterprise Gateway 3.3 (its own virtualenv, see ``tests/gateway.py``) starts
txkernel from the ``eg-distributed`` kernelspec that ``python -m txkernel
install --remote`` writes: its ``DistributedProcessProxy`` runs ``python -m
txkernel.remote`` directly on this host, and over ssh (paramiko) to an sshd
on 127.0.0.1 that the test starts.  Through the gateway's REST and websocket
API the kernel runs a cell (reply, output, idle), is interrupted (the proxy
sends ``{"signum": 2}`` to the launcher's communication port), restarted
and shut down, and no kernel process is left.
"""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from .gateway import exercise_remote_kernel, start_gateway
from .sshd import require_sshd, start_sshd


class EnterpriseGatewayTests(TestCase):
    # Building the gateway's virtualenv (only in CI, only once) is bounded
    # separately, at 10 minutes.
    timeout = 900

    async def test_distributed_process_proxy_on_this_host(self) -> None:
        """For a host of its own the proxy starts the launcher without ssh."""
        server = await start_gateway(
            self,
            {"txkernel_eg": "eg-distributed"},
            options={"remote_hosts": ["localhost"]},
        )
        await exercise_remote_kernel(self, server)

    async def test_distributed_process_proxy_over_ssh(self) -> None:
        """Over ssh, as to any other host: paramiko logs in to an sshd on
        127.0.0.1 with the key of the home directory the test made.  The
        proxy would skip ssh for an address of this machine, so the
        gateway's configuration tells it that no address is local."""
        require_sshd(self)
        home, port, sshd = await start_sshd(self)
        server = await start_gateway(
            self,
            {"txkernel_eg_ssh": "eg-distributed"},
            options={"remote_hosts": ["127.0.0.1"]},
            environ={"HOME": home, "EG_SSH_PORT": str(port), "EG_REMOTE_USER": "root"},
            config=(
                "from enterprise_gateway.services.processproxies.processproxy"
                " import BaseProcessProxyABC\n"
                "BaseProcessProxyABC.ip_is_local = staticmethod(lambda ip: False)\n"
            ),
        )
        await exercise_remote_kernel(self, server)
        # Each launch (the first and the restart) logged in with the key.
        self.assertGreaterEqual(
            sshd.output.count("Accepted publickey for root"), 2, sshd.output
        )
