"""The Sphinx guide in docs/ builds without a warning (``-W``), so it cannot rot."""

from __future__ import annotations

import os
import sys

from twisted.internet import reactor
from twisted.trial.unittest import SkipTest, TestCase

from .helpers import REPO_ROOT, ProcessOutput


class DocsTests(TestCase):
    timeout = 120

    async def test_the_guide_builds_without_warnings(self) -> None:
        try:
            import sphinx  # noqa: F401
        except ImportError:
            raise SkipTest("sphinx is not installed (it is in the test extra)") from None
        out = os.path.abspath(self.mktemp())
        proto = ProcessOutput()
        reactor.spawnProcess(
            proto,
            sys.executable,
            [sys.executable, "-m", "sphinx", "-b", "html", "-W", "-q", "-E", "docs", out],
            env=dict(os.environ, PYTHONPATH=REPO_ROOT),
            path=REPO_ROOT,
        )
        self.assertEqual(await proto.ended, 0, proto.output)
        self.assertEqual(proto.output, "")
        with open(os.path.join(out, "client.html"), encoding="utf-8") as f:
            client = f.read()
        # The API reference comes from the docstrings.
        self.assertIn("wait_for_ready", client)
        self.assertIn("KernelDied", client)
        for page in ("threads", "embedding", "kernels"):
            self.assertTrue(os.path.exists(os.path.join(out, page + ".html")), page)
