"""jupyter_kernel_test's conformance suite against the installed txkernel kernelspec.

Not collected by trial directly (it starts kernels in setUpClass, which trial
does not run); ``tests.test_python_launched`` runs it with ``python -m
unittest`` in a child process, with ``JUPYTER_PATH`` pointing at a kernelspec
installed for the test and its name in ``TXKERNEL_TEST_KERNEL``.
"""

from __future__ import annotations

import os
import unittest

import jupyter_kernel_test

KERNEL_NAME = os.environ.get("TXKERNEL_TEST_KERNEL", "txkernel")


class TxkernelConformance(jupyter_kernel_test.KernelTests):
    kernel_name = KERNEL_NAME
    language_name = "python"
    file_extension = ".py"

    code_hello_world = "print('hello, world')"
    code_stderr = "import sys; print('test', file=sys.stderr)"
    completion_samples = [
        {"text": "zi", "matches": {"zip"}},
        {"text": "import os.pa", "matches": {"path"}},
    ]
    complete_code_samples = [
        "1",
        "print('hello, world')",
        "def f(x):\n  return x*2\n\n\n",
    ]
    incomplete_code_samples = ["print('''hello", "def f(x):\n  x*2"]
    invalid_code_samples = ["import = 7q"]
    code_page_something = "zip?"
    code_generate_error = "raise ValueError('conformance')"
    code_execute_result = [
        {"code": "1+2+3", "result": "6"},
        {"code": "[n*n for n in range(1, 4)]", "result": "[1, 4, 9]"},
    ]
    code_display_data = [
        {
            "code": "from txkernel.python.display import HTML\ndisplay(HTML('<b>test</b>'))",
            "mime": "text/html",
        },
        {
            "code": "from txkernel.python.display import Markdown\ndisplay(Markdown('*m*'))",
            "mime": "text/markdown",
        },
    ]
    code_history_pattern = "1?2*"
    supported_history_operations = ("tail", "range", "search")
    code_inspect_sample = "zip"
    code_clear_output = "clear_output()"


class TxkernelIopubWelcome(jupyter_kernel_test.IopubWelcomeTests):
    kernel_name = KERNEL_NAME
    support_iopub_welcome = True


if __name__ == "__main__":
    unittest.main()
