"""txkernel: the Jupyter kernel transport for Twisted.

Importing this package is cheap and installs no reactor: the modules that
touch the reactor or txZMQ are imported only by the code that serves a kernel.
"""

__version__ = "0.1.0"
