# A Twisted application that prints on its own (a TCP server announcing each
# connection) and hosts a Python kernel: tests.test_host_output runs it with
# `twistd -ny` to check that the host's prints stay in the twistd log.
from twisted.application import service
from twisted.internet import protocol, reactor

from txkernel.python import PythonKernel
from txkernel.service import KernelService


class Announce(protocol.Protocol):
    def connectionMade(self):
        print("host: a client connected")
        self.transport.loseConnection()


class Announcer(service.Service):
    def startService(self):
        service.Service.startService(self)
        factory = protocol.Factory.forProtocol(Announce)
        self.port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        print("host listening on port", self.port.getHost().port)

    def stopService(self):
        service.Service.stopService(self)
        return self.port.stopListening()


application = service.Application("printing host")
KernelService(PythonKernel()).setServiceParent(application)
Announcer().setServiceParent(application)
