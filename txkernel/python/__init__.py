"""The built-in Python kernel (``txkernel.python:PythonKernel``)."""

from .kernel import PythonKernel

__all__ = ["PythonKernel"]
