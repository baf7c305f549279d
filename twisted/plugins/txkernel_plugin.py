"""twistd plugin: ``twistd -n txkernel`` serves a Jupyter kernel.

Kept import-light on purpose: twistd and trial import every plugin file, and
importing txzmq here would install the default reactor before ``--reactor``
is honoured.
"""

from twisted.application.service import ServiceMaker

txkernel = ServiceMaker(
    "txkernel",
    "txkernel.tap",
    "Serve a Jupyter kernel (the built-in Python kernel by default).",
    "txkernel",
)
