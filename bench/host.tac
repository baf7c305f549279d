"""The host application the benchmark measures: ``twistd -n -y bench/host.tac``.

The same kernel service ``twistd -n txkernel -f FILE`` builds (txkernel.tap's
Options and makeService), beside a twisted.web site in the same process and
on the same reactor, as a Twisted application hosting a kernel would have.
The reactor runs on twistd's main thread; cells run on the kernel's worker
thread.

bench/kernels.py launches it through a kernelspec with two environment
variables: TXKERNEL_BENCH_CONNECTION_FILE (the connection file jupyter_client
wrote) and TXKERNEL_BENCH_HTTP_PORT_FILE (where the site's port number is
written once it listens on 127.0.0.1).
"""

import os

from twisted.application import service
from twisted.internet import reactor
from twisted.web import resource, server

from txkernel import tap


class Hello(resource.Resource):
    """A leaf resource answering every GET with a few bytes."""

    isLeaf = True

    def render_GET(self, request):
        return b"ok\n"


class Site(service.Service):
    """Listens on a free port of 127.0.0.1 and writes the port to a file."""

    def __init__(self, port_file):
        self.port_file = port_file
        self.listening = None

    def startService(self):
        service.Service.startService(self)
        self.listening = reactor.listenTCP(
            0, server.Site(Hello()), interface="127.0.0.1"
        )
        staged = self.port_file + ".tmp"
        with open(staged, "w") as f:
            f.write(str(self.listening.getHost().port))
        os.replace(staged, self.port_file)

    def stopService(self):
        service.Service.stopService(self)
        return self.listening.stopListening()


options = tap.Options()
options.parseOptions(["-f", os.environ["TXKERNEL_BENCH_CONNECTION_FILE"]])
application = service.Application("txkernel-bench-host")
tap.makeService(options).setServiceParent(application)
Site(os.environ["TXKERNEL_BENCH_HTTP_PORT_FILE"]).setServiceParent(application)
