"""A host application that uses matplotlib itself before serving a kernel (for the twistd tests)."""

import matplotlib

matplotlib.use("agg")

import matplotlib.pyplot as plt  # noqa: E402

from txkernel.python import PythonKernel  # noqa: E402

#: The host's own figure, made before any cell ran.
host_figure = plt.figure()
plt.plot([1, 2, 3])


class HostKernel(PythonKernel):
    """The built-in Python kernel, in a process whose host chose its matplotlib backend."""
