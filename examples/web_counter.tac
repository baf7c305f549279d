# A small twisted.web service with a live Jupyter shell into its own objects.
#
#     twistd -ny examples/web_counter.tac
#
# then, in another terminal, the line it logs:
#
#     jupyter console --existing /…/kernel-txkernel-….json
#
# Cells see the running application as `app` (and the web resource as
# `page`); what they change, the next HTTP request sees:
#
#     In [1]: app.message = "Hello from a cell"
#     $ curl http://127.0.0.1:8080/
#     Hello from a cell (request 3)
#
# WEB_PORT chooses the port (default 8080; 0 picks a free one).
import os

from twisted.application import service
from twisted.internet import reactor
from twisted.logger import Logger
from twisted.web import resource, server

from txkernel.python import PythonKernel
from txkernel.service import KernelService

log = Logger()


class Counter:
    """The application's state: what the page says and how often it was asked."""

    def __init__(self):
        self.message = "Hello from Twisted"
        self.requests = 0


class CounterPage(resource.Resource):
    isLeaf = True

    def __init__(self, app):
        super().__init__()
        self.app = app

    def render_GET(self, request):
        self.app.requests += 1
        request.setHeader(b"content-type", b"text/plain; charset=utf-8")
        return f"{self.app.message} (request {self.app.requests})\n".encode()


class WebService(service.Service):
    """Serves ``site`` on 127.0.0.1 and logs the address it listens on."""

    def __init__(self, site, port):
        self.site = site
        self.port_number = port
        self.port = None

    def startService(self):
        service.Service.startService(self)
        self.port = reactor.listenTCP(self.port_number, self.site, interface="127.0.0.1")
        log.info("web: listening on http://127.0.0.1:{port}/", port=self.port.getHost().port)

    def stopService(self):
        service.Service.stopService(self)
        return self.port.stopListening()


app = Counter()
page = CounterPage(app)
application = service.Application("web counter")
WebService(server.Site(page), int(os.environ.get("WEB_PORT", "8080"))).setServiceParent(application)

kernel = KernelService(PythonKernel(namespace={"app": app, "page": page}))
kernel.setServiceParent(application)
# The connection file is known now; the kernel writes it when twistd starts it.
log.info("kernel: jupyter console --existing {file}", file=kernel.connection_file)
